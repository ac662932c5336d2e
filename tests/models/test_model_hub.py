"""Loading: save/reload round trips, backbone checkpoints, Sentio runs, scratch, offline errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import (
    ASTConfig,
    ASTForAudioClassification,
    AutoModel,
    HubertConfig,
    HubertModel,
    ViTConfig,
    ViTModel,
    Wav2Vec2Config,
    Wav2Vec2ForPreTraining,
)

from sentio.models import CheckpointError, build_model
from sentio.models import hub as hub_module

HEAD_FIELDS = ("head_hidden_size",)


def _plain(tiny: dict, name: str) -> dict:
    return {k: v for k, v in tiny[name].items() if k not in HEAD_FIELDS}


def _plain_checkpoint(tiny: dict, name: str, folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """Save a transformers backbone checkpoint (with its own head) -> (folder, its encoder weights)."""
    if name == "ast":
        model = ASTForAudioClassification(ASTConfig(**_plain(tiny, name), num_labels=5))
        encoder = model.audio_spectrogram_transformer
    elif name == "vit":
        model = encoder = ViTModel(ViTConfig(**_plain(tiny, name)))  # with a pooler our model drops
    elif name == "mert":  # a plain HuBERT checkpoint (MERT's own format: tests/models/test_mert.py)
        model = encoder = HubertModel(HubertConfig(**_plain(tiny, name)))
    else:
        model = Wav2Vec2ForPreTraining(Wav2Vec2Config(**_plain(tiny, name)))
        encoder = model.wav2vec2
    model.save_pretrained(folder)
    weights = {k: v.clone() for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    return folder, weights


def _inputs_with_mask(name: str, make_inputs) -> tuple[torch.Tensor, torch.Tensor]:
    x = make_inputs(name, batch=2)
    mask = torch.ones(x.shape[0], x.shape[-1] if name == "vit" else x.shape[1])
    mask[1, mask.shape[1] // 2 :] = 0
    return x, mask


def test_save_and_automodel_round_trip(backbone, build_tiny, make_inputs, tmp_path):
    model = build_tiny(backbone, pooling="mean", loss="ccc")
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(model)
    config = reloaded.config
    assert (config.pooling, config.loss, config.init_checkpoint) == ("mean", "ccc", "scratch")
    x, mask = _inputs_with_mask(backbone, make_inputs)
    with torch.no_grad():
        expected = model(x, attention_mask=mask).predictions
        torch.testing.assert_close(reloaded(x, attention_mask=mask).predictions, expected, atol=0, rtol=0)
    saved = model.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in reloaded.state_dict().items())


def test_plain_backbone_checkpoint_gives_its_encoder_and_a_fresh_head(backbone, tiny, tmp_path):
    if backbone == "clap":
        pytest.skip("a CLAP checkpoint is a whole ClapModel: tests/models/test_clap.py writes and loads one")
    folder, weights = _plain_checkpoint(tiny, backbone, tmp_path / "plain")
    model = build_model(backbone, checkpoint=str(folder))
    encoder = getattr(model, model.base_model_prefix).state_dict()
    assert set(encoder) == set(weights)
    assert all(torch.equal(encoder[k], v) for k, v in weights.items())
    assert model.config.init_checkpoint == str(folder)
    assert model.config.hidden_size == 32 and model.config.id2label == {0: "valence", 1: "arousal"}
    assert model.config.pooling == {"ast": "cls_dist", "vit": "cls", "wav2vec2": "mean", "mert": "mean"}[backbone]
    assert model.head.out_proj.weight.shape == (2, model.config.head_hidden_size)


def test_previous_sentio_run_loads_whole(build_tiny, make_inputs, tmp_path):
    run = build_tiny("ast", pooling="mean")
    run.save_pretrained(tmp_path / "run")
    again = build_model("ast", checkpoint=str(tmp_path / "run")).eval()
    assert again.config.pooling == "mean"  # the run's head settings win over the registry defaults
    assert again.config.init_checkpoint == str(tmp_path / "run")
    assert all(torch.equal(v, run.state_dict()[k]) for k, v in again.state_dict().items())
    changed = build_model("ast", checkpoint=str(tmp_path / "run"), head_kwargs={"pooling": "max"})
    assert changed.config.pooling == "max"


def test_from_scratch_records_scratch_and_has_random_weights(tiny, tmp_path):
    folder, weights = _plain_checkpoint(tiny, "ast", tmp_path / "plain")
    model = build_model("ast", checkpoint=str(folder), from_scratch=True)
    assert model.config.init_checkpoint == "scratch" and model.config.hidden_size == 32
    encoder = model.audio_spectrogram_transformer.state_dict()
    assert not torch.equal(encoder["layers.0.attention.q_proj.weight"], weights["layers.0.attention.q_proj.weight"])
    default = build_model("ast", from_scratch=True, config_overrides={"num_hidden_layers": 1})
    assert default.config.hidden_size == 768 and default.config.max_length == 1024
    assert default.config.init_checkpoint == "scratch"


def test_wrong_checkpoints_fail_with_one_line(tiny, build_tiny, tmp_path):
    folder, _ = _plain_checkpoint(tiny, "ast", tmp_path / "plain")
    build_tiny("vit").save_pretrained(tmp_path / "vit-run")
    (tmp_path / "empty").mkdir()
    cases = [
        (dict(backbone_name="vit", checkpoint=str(folder)), "needs a 'vit'"),
        (dict(backbone_name="ast", checkpoint=str(tmp_path / "vit-run")), "--model vit"),
        (dict(backbone_name="ast", checkpoint=str(tmp_path / "missing")), "does not exist"),
        (dict(backbone_name="ast", checkpoint=str(tmp_path / "empty")), "no config.json"),
        (dict(backbone_name="ast", checkpoint=str(folder), config_overrides={"max_length": 128}), "other shapes"),
        (dict(backbone_name="ast", checkpoint=str(folder), config_overrides={"num_hidden_layers": 3}), "lacks"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(CheckpointError, match=expected) as err:
            build_model(**kwargs)
        assert "\n" not in str(err.value)


def test_unreachable_hub_fails_fast(monkeypatch):
    # Without network the probe fails at once (DNS) or after 2 x 4 s; with network the Hub answers 401/404.
    monkeypatch.setattr(hub_module.constants, "is_offline_mode", lambda: False)
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="download_model.py sentio-test/does-not-exist") as err:
        build_model("ast", checkpoint="sentio-test/does-not-exist")
    assert time.monotonic() - start < 15
    assert "\n" not in str(err.value)


_OFFLINE_SCRIPT = """
import json, time
start = time.monotonic()
from sentio.models import CheckpointError, build_model
imported = time.monotonic()
try:
    build_model("ast", checkpoint="sentio-test/does-not-exist")
except CheckpointError as exc:
    failed = (str(exc), time.monotonic() - imported)
cached = build_model("ast", checkpoint="sentio-test/tiny-ast")  # a fake cache entry made by the test
result = {"message": failed[0], "fail_s": failed[1], "import_s": imported - start}
print(json.dumps({**result, "cached": cached.config.init_checkpoint}))
"""


@pytest.mark.slow
def test_offline_mode_uses_cache_and_fails_in_one_line(tiny, tmp_path):
    # A Hub-cache layout for sentio-test/tiny-ast under HF_HOME=tmp_path.
    snapshot = tmp_path / "hub" / "models--sentio-test--tiny-ast" / "snapshots" / ("0" * 40)
    _plain_checkpoint(tiny, "ast", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    start = time.monotonic()
    command = [sys.executable, "-c", _OFFLINE_SCRIPT]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "HF_HUB_OFFLINE" in result["message"] and "--from_scratch" in result["message"]
    assert "\n" not in result["message"]
    assert result["cached"] == "sentio-test/tiny-ast"
    # The failure itself is immediate; the process time is mostly importing torch/transformers
    # (3-8 s on a busy 2-core machine). 20 s still catches huggingface_hub's ~23 s retry loop.
    assert result["fail_s"] < 1.0
    assert elapsed - result["import_s"] < 5 and elapsed < 20, f"{elapsed:.1f} s, imports {result['import_s']:.1f} s"


def test_weight_file_names_are_transformers_own():
    """The one list of weight files (checking a folder imports nothing) names what transformers writes."""
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

    from sentio.choices import WEIGHT_FILES

    assert WEIGHT_FILES == (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
