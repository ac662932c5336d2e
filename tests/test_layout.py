"""The package's layout keeps its layers: no import cycle between modules (neither at import time
nor through the imports inside functions), data/ features/ demo/ below the model and its users,
models/ below inference/ and training/; and importing a module of the package (what the scripts
do) loads no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SRC = REPO / "src"
PACKAGE = SRC / "sentio"
# layer -> packages it must not import from (module-level or inside functions)
FORBIDDEN = {
    "data": {"models", "training", "inference", "evaluation", "gan", "distill"},
    "features": {"models", "training", "inference", "evaluation", "gan", "distill", "demo"},
    "demo": {"models", "training", "inference", "evaluation", "gan", "distill"},
    "models": {"inference", "training", "evaluation", "gan", "distill"},
}
SCRIPTS = ["train.py", "predict.py", "evaluate.py", "prepare.py", "distill.py", "train_gan.py", "app.py",
           "download_model.py"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, type_checking: bool = True) -> list[tuple[str, bool]]:
    """(imported sentio module, at module level?) for every import in the file, a `from X import y`
    counting y when it is a module of the package; without `type_checking`, the imports under
    `if TYPE_CHECKING:` (annotations only: they never run) are left out."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    typing_only = set() if type_checking else {
        id(child) for stmt in ast.walk(tree) if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for child in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]
        for target in targets:
            if target.split(".")[0] == "sentio":
                found.append((target, id(node) in top or _in_top_level_block(tree, node)))
    return found


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _in_top_level_block(tree: ast.Module, node: ast.AST) -> bool:
    """An import inside a module-level `if`/`try` (not TYPE_CHECKING) runs at import time too."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.If, ast.Try)) and not (
                isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)):
            if any(child is node for child in ast.walk(stmt)) and not any(
                    isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(c is node for c in ast.walk(f))
                    for f in ast.walk(stmt)):
                return True
    return False


def module_graph(inside_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports when it is imported (its own imports at module
    level, and each package's __init__ on the way to a module); with `inside_functions`, also those
    its functions import when they run (a deferred import is still a dependency)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        edges = set()
        for target, at_top in imports(path, type_checking=not inside_functions):
            if (at_top or inside_functions) and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each import cycle of `graph` met by a depth-first walk, as `a -> b -> a`."""
    state: dict[str, int] = {}
    found = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                found.append(" -> ".join(stack[stack.index(nxt):] + [nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_at_module_level():
    assert cycles(module_graph()) == []


def test_no_import_cycle_through_imports_inside_functions():
    """A function-level import only defers loading a module: two modules that need each other are
    still one tangle (e.g. loading -> registration -> hf_pipeline -> predictor -> loading)."""
    assert cycles(module_graph(inside_functions=True)) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downward(layer):
    offending = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for target, _ in imports(path):  # function-level imports count too
            parts = target.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                offending.append(f"{path.relative_to(SRC)}: {target}")
    assert offending == []


def test_the_graph_sees_relative_and_function_level_imports():
    """The walker is not blind: known edges of the package show up."""
    found = dict.fromkeys(t for t, _ in imports(PACKAGE / "inference" / "loading.py"))
    assert "sentio.features.extractor" in found and "sentio.models.auto" in found
    assert ("sentio.models.auto", False) in imports(PACKAGE / "inference" / "loading.py")
    assert "sentio.data.manifest" in module_graph()["sentio.data.sources"]
    # a function-level edge joins the deeper graph; an import under TYPE_CHECKING (never run) does not
    assert "sentio.inference.hf_pipeline" in module_graph(inside_functions=True)["sentio.registration"]
    assert "sentio.features.numpy_features" not in module_graph(inside_functions=True)["sentio.inference.stream"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return set(out.stdout.split())


@pytest.mark.slow
def test_a_module_of_the_package_loads_no_torch():
    loaded = _loaded_after("import sentio.data.labels")
    assert "torch" not in loaded and "transformers" not in loaded


@pytest.mark.slow
def test_scripts_top_level_imports_load_no_model_code():
    """What each script imports before parsing its flags: no torch model code and no registration
    (train.py and friends load torch for transformers' TrainingArguments, not for Sentio's models)."""
    code = []
    for script in SCRIPTS:
        tree = ast.parse((REPO / script).read_text())
        code += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                 and (getattr(node, "module", None) or "").startswith("sentio")]
    loaded = _loaded_after("\n".join(code))
    assert not {"sentio.models", "sentio.inference.hf_pipeline", "transformers.pipelines"} & loaded
    assert not any(name.startswith("transformers.models.audio_spectrogram_transformer") for name in loaded)


@pytest.mark.slow
def test_predict_and_app_top_level_imports_load_no_torch():
    for script in ("predict.py", "app.py", "download_model.py"):
        tree = ast.parse((REPO / script).read_text())
        code = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
        assert "torch" not in _loaded_after(code), script


@pytest.mark.slow
@pytest.mark.parametrize("script", ["predict.py", "app.py", "download_model.py"])
def test_help_of_the_light_scripts_loads_no_torch(script):
    """Their --help answers in well under a second: rendering it (a help text that names the
    backbones reads the model registry) must not import torch either."""
    code = (f"import runpy, sys\nsys.argv = [{script!r}, '--help']\n"
            f"try:\n    runpy.run_path({script!r}, run_name='__main__')\nexcept SystemExit:\n    pass")
    loaded = _loaded_after(code)
    assert "torch" not in loaded and "pandas" not in loaded, script


@pytest.mark.slow
def test_legacy_feature_kinds_load_without_the_model_package(tmp_path):
    """A run saved by an older version names its features after the backbone (`ast`); an exported
    .onnx run is loaded without ever importing sentio.models, and must still read it."""
    (tmp_path / "preprocessor_config.json").write_text(
        '{"feature_extractor_type": "SentioFeatureExtractor", "feature_kind": "ast"}')
    code = (f"from sentio.inference.loading import load_extractor\n"
            f"print(load_extractor({str(tmp_path)!r}).feature_kind)")
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nassert 'sentio.models' not in sys.modules"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "fbank"
