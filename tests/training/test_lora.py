"""LoRA (--lora) and --unfreeze_top_layers: which weights train, the merged run that loads without
peft, the shareable adapter, strict resumes, and one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sentio.errors import ArgumentError
from sentio.models.registry import BACKBONES
from tests.helpers import PREDICT, run_python, run_script, tiny_checkpoint
from tests.tiny import TINY, tiny_inputs

NAMES = sorted(BACKBONES)


def tiny_model(name: str, **head):
    backbone = BACKBONES[name]
    return backbone.model_class(backbone.fresh_config({**TINY[name], **head})).eval()


def forward(model, name: str, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(**{BACKBONES[name].input_name: x}).predictions


@pytest.mark.parametrize("name", NAMES)
def test_lora_adapts_the_backbones_own_projections_and_merges_into_a_plain_model(name):
    from peft.tuners.tuners_utils import BaseTunerLayer

    from sentio.training.freeze import count_parameters
    from sentio.training.lora import LoraSettings, apply_lora, has_adapters, merge_adapters, plain_state_dict

    torch.manual_seed(0)
    backbone = BACKBONES[name]
    model = tiny_model(name, layer="weighted")
    fresh_keys = set(model.state_dict())
    apply_lora(model, backbone.lora_targets, LoraSettings(r=4, alpha=8, dropout=0.0))
    adapted = [n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    # every named projection of every encoder layer, and nothing outside the encoder (the head has an out_proj too)
    layers = model.config.num_hidden_layers
    assert len(adapted) == layers * len(backbone.lora_targets)
    assert all(n.startswith(model.base_model_prefix + ".") and n.rsplit(".", 1)[-1] in backbone.lora_targets
               for n in adapted)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in trainable if "lora_" in n or n.startswith(("head.", "layer_weights"))}
    assert any(n.startswith("head.") for n in trainable) and "layer_weights" in trainable
    assert count_parameters(model)[0] == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert set(plain_state_dict(model)) == fresh_keys  # what a checkpoint's model.safetensors holds

    with torch.no_grad():  # a trained adapter is not zero
        for key, param in model.named_parameters():
            if "lora_B" in key:
                param.normal_(0.0, 0.05)
    x = tiny_inputs(name, batch=2)
    adapted_out = forward(model, name, x)
    assert merge_adapters(model) == len(adapted)
    assert not has_adapters(model) and set(model.state_dict()) == fresh_keys
    torch.testing.assert_close(forward(model, name, x), adapted_out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_unfreeze_top_layers_trains_those_layers_and_the_head(name):
    from sentio.training.freeze import unfreeze_top_layers

    backbone = BACKBONES[name]
    model = tiny_model(name)
    unfreeze_top_layers(model, backbone, 1)
    top = f"{backbone.encoder_layers}.{model.config.num_hidden_layers - 1}."
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and trainable == {n for n, _ in model.named_parameters() if n.startswith((top, "head.", "layer_weights"))}
    with pytest.raises(ArgumentError, match="--unfreeze_top_layers 3: .* has 2 layers"):
        unfreeze_top_layers(model, backbone, 3)


def test_a_target_module_the_encoder_lacks_is_refused_with_its_real_names():
    from sentio.training.lora import LoraSettings, target_modules

    backbone = BACKBONES[NAMES[0]]
    config = backbone.fresh_config(TINY[backbone.name])
    assert target_modules(backbone, LoraSettings(), config) == backbone.lora_targets
    with pytest.raises(ArgumentError, match="has no linear layer named query"):
        target_modules(backbone, LoraSettings(target_modules=("query",)), config)


def _blocked_peft(folder: Path) -> dict:
    """An environment where `import peft` fails, as on a machine without it."""
    # sys.modules["peft"] = None: `import peft` fails and importlib finds no peft, as when it is absent
    folder.mkdir(parents=True)
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['peft'] = None\n")
    import os

    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def test_bad_lora_flags_are_one_line(tmp_path, monkeypatch, capsys):
    # train.py's __main__ in this process (the same exit status and stderr, no interpreter start per case)
    base = ["--model", "ast", "--demo", "--output_dir", str(tmp_path / "r")]
    cases = [
        (["--lora", "--probe"], "train.py: error: --probe and --lora cannot be combined"),
        (["--lora", "--lora_target_modules", "query,value"], "train.py: error: --lora_target_modules: the ast encoder "
                                                             "has no linear layer named query, value"),
        (["--save_adapter"], "train.py: error: --save_adapter and --lora_target_modules need --lora"),
        (["--unfreeze_top_layers", "9"], "train.py: error: --unfreeze_top_layers 9: the ast encoder has 4 layers"),
    ]
    for flags, message in cases:
        code, err = run_script(monkeypatch, "train.py", *base, *flags), capsys.readouterr().err
        assert code == 2, (flags, err[-2000:])
        assert err.strip().splitlines()[-1].startswith(message), err[-500:]
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` fails, as on a machine without it
    code, err = run_script(monkeypatch, "train.py", *base, "--lora"), capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == "train.py: error: --lora needs the peft package: pip install peft==0.21.2"
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_lora_run_is_one_plain_folder_loaded_without_peft_with_a_shareable_adapter_and_a_strict_resume(
        tiny_corpus, tmp_path):
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    common = ["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
              "--demo_seed", "5", "--checkpoint", str(tiny), "--per_device_train_batch_size", "4",
              "--learning_rate", "5e-3", "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
              "--disable_tqdm", "true", "--lora", "--lora_r", "4", "--uncertainty", "--epochs", "2",
              "--load_best_model_at_end", "false", "--save_total_limit", "3"]
    out = tmp_path / "run"
    result = run_python([*common, "--save_adapter", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "parameters train" in result.stderr

    # One plain from_pretrained folder: no adapter weights, no adapter_config.json beside config.json
    # (transformers would apply it a second time), the adapter in its own folder.
    weights = load_file(out / "model.safetensors")
    assert not any("lora_" in k or "base_layer" in k for k in weights)
    assert not (out / "adapter_config.json").exists()
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "adapter" / "adapter_model.safetensors").is_file()
    results = json.loads((out / "all_results.json").read_text())
    trainable = results["trainable_parameters"]
    assert 0 < trainable < sum(v.numel() for v in weights.values())
    assert f"{trainable:,} of " in (out / "README.md").read_text()

    # predict and the Auto classes load it where peft cannot be imported
    clip = next((tiny_corpus / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))
    blocked = _blocked_peft(tmp_path / "nopeft")
    no_peft = run_python(["-c", "import peft"], env=blocked)
    assert no_peft.returncode != 0 and "ModuleNotFoundError" in no_peft.stderr
    loaded = run_python(["-c", PREDICT, str(out), str(clip)], env=blocked)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    predicted = run_python(["predict.py", "--model_dir", str(out), str(clip), "--output", str(tmp_path / "p.csv")], env=blocked)
    assert predicted.returncode == 0, predicted.stderr[-2000:]

    # the adapter (with its head) over the base checkpoint gives the run's predictions, through peft itself
    from peft import PeftModel
    from transformers import AutoModel

    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.models import build_model
    from sentio.registration import register

    register()  # AutoModel then knows Sentio's models

    extractor = SentioFeatureExtractor.from_pretrained(out)
    x = extractor(str(clip), return_tensors="pt")["input_values"]
    merged = AutoModel.from_pretrained(out).eval()
    base = build_model("ast", checkpoint=str(tiny), head_kwargs={"uncertainty": True})
    shared = PeftModel.from_pretrained(base, out / "adapter").eval()
    with torch.no_grad():
        expected = merged(input_values=x).predictions
        torch.testing.assert_close(shared(input_values=x).predictions, expected, rtol=1e-4, atol=1e-5)
    assert np.allclose(json.loads(loaded.stdout), expected.mean(0).numpy(), atol=1e-5)

    # resume from the first epoch's checkpoint (base weights + adapter, reloaded strictly): the same
    # final weights as the uninterrupted run
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert (checkpoints[0] / "adapter" / "adapter_model.safetensors").is_file()
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(checkpoints[0], resumed / checkpoints[0].name)
    shutil.copy(out / "manifest.csv", resumed / "manifest.csv")
    again = run_python([*common, "--output_dir", str(resumed), "--resume_from_checkpoint", "last"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(strict)" in again.stderr
    final = load_file(resumed / "model.safetensors")
    assert final.keys() == weights.keys()
    for key, value in weights.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-6, msg=key)

    # the same checkpoint without --lora is refused in one line
    plain = [a for a in common if a not in ("--lora",)]
    plain = [a for i, a in enumerate(plain) if not (a == "4" and plain[i - 1] == "--lora_r") and a != "--lora_r"]
    refused = run_python([*plain, "--output_dir", str(resumed), "--resume_from_checkpoint", str(resumed / checkpoints[0].name)])
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "saved with LoRA adapters" in refused.stderr.strip().splitlines()[-1]
