"""Sentio in transformers' own API: `AutoConfig`/`AutoModel`/`AutoFeatureExtractor.from_pretrained(run)`
and `pipeline("music-emotion", model=run)`.

`register()` does it, once per process; the loaders register the model classes
(`models.auto.register_models`) before they need them (loading a run, reading a previous run as a
checkpoint). It imports torch and transformers' model code (seconds),
so importing a module of the package never does it: a script's `--help` stays fast and
`import sentio.data.labels` loads no torch.

`import sentio` on its own still registers, without costing the scripts anything. Python runs
sentio/__init__.py both for `import sentio` and for `import sentio.cli`; what tells them apart is
the import that comes next: a submodule of sentio (`import sentio.cli`, `from sentio import cli`)
or anything else (the user's next line, typically `from transformers import pipeline`). So the
package arms `_RegisterAfterNextImport` and returns at once; if the next import is not sentio's,
`register()` runs as soon as that import has finished (not during it, which could meet a module
half-imported). When transformers' Auto classes are already imported at `import sentio`, it
registers at once: the process has paid for torch already.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

_AUTO_CLASSES = "transformers.models.auto"


def register() -> None:
    """Register Sentio's configs, models and feature extractor with transformers' Auto classes and
    the `music-emotion` pipeline task; idempotent."""
    from .inference.hf_pipeline import register_pipeline
    from .models.auto import register_models

    register_models()
    register_pipeline()


class _RegisterAfter:  # an importlib Loader (duck-typed: importlib.abc would cost every import of sentio)
    """The loader of the import that followed `import sentio`, which registers once it has run."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self.loader.exec_module(module)
        finally:  # the module keeps its own loader
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader
        register()

    def __getattr__(self, name: str) -> Any:  # get_code, is_package, get_resource_reader, ...
        return getattr(self.loader, name)


class _RegisterAfterNextImport:  # an importlib MetaPathFinder
    """Sees the first import after sentio/__init__.py ran, once (see the module docstring)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        _disarm()
        if fullname.split(".")[0] == __package__:
            return None  # `import sentio.x`: the loaders register when they need to
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisterAfter(spec.loader)
                return spec
        return None  # not found: Python raises ModuleNotFoundError as usual


_finder = _RegisterAfterNextImport()


def _disarm() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def register_on_import() -> None:
    """What `import sentio` does (see the module docstring)."""
    if _AUTO_CLASSES in sys.modules:
        register()
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
