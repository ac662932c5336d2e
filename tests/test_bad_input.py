"""Bad input across the seven command-line scripts: one line naming the thing and what to do, exit
status 2, no traceback, and nothing already written is lost.

Each case runs the real script's __main__ in this process (no interpreter start-up per case)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sentio.features.extractor import SentioFeatureExtractor
from sentio.models import build_model
from sentio.models.registry import BACKBONES
from tests.conftest import write_audio
from tests.helpers import run_script
from tests.tiny import TINY


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny trained-looking run, audio, and damaged copies of the run."""
    root = tmp_path_factory.mktemp("bad")
    run = root / "runs" / "ast-demo"
    build_model("ast", from_scratch=True, config_overrides=TINY["ast"]).save_pretrained(run)
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(run)
    audio = root / "audio"
    rows = ["song_id,path,valence,arousal,split,subset,duration,sample_rate,channels"]
    for i, split in enumerate(["train", "train", "test"]):
        path = write_audio(audio / f"{i}.wav", seconds=1.0, sr=16000, seed=i)
        rows.append(f"{i},{path},0.1,-0.2,{split},,1.0,16000,1")
    (run / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "empty_folder").mkdir()
    (root / "a_file").write_text("not a folder\n")
    (root / "full.csv").symlink_to("/dev/full")  # every write fails: no space left on device

    def variant(name: str, change) -> Path:
        folder = root / name
        shutil.copytree(run, folder)
        change(folder)
        return folder

    return {
        "root": root, "run": run, "audio": audio / "0.wav", "full_disk": root / "full.csv",
        "no_weights": variant("no_weights", lambda f: (f / "model.safetensors").unlink()),
        "corrupt_weights": variant("corrupt_weights", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64)),
        "foreign_config": variant("foreign_config", lambda f: (f / "config.json").write_text(
            json.dumps({"model_type": "bert", "hidden_size": 32}))),
        "empty_preprocessor": variant("empty_preprocessor", lambda f: (f / "preprocessor_config.json").write_bytes(b"")),
        "bad_columns": variant("bad_columns", lambda f: (f / "manifest.csv").write_text("song_id,path\n1,x.wav\n")),
        "bad_labels": variant("bad_labels", lambda f: (f / "manifest.csv").write_text(
            (f / "manifest.csv").read_text().replace("0.1,-0.2,test", "1.7,-0.2,test"))),
        "onnx_only": variant("onnx_only", lambda f: ((f / "model.safetensors").unlink(),
                                                     (f / "student.onnx").write_bytes(b"onnx"))),
    }


# A backbone whose encoder has no activation checkpointing (asked of the registry, not named).
NO_CHECKPOINTING = next(b.name for b in BACKBONES.values() if not b.model_class.supports_gradient_checkpointing)

# (id, script, arguments with {placeholders} from the world fixture, expected part of the one line)
CASES = [
    # predict.py
    ("mistyped run folder", "predict.py", ["--model_dir", "{root}/runs/ast-demoo", "{audio}"],
     "model folder {root}/runs/ast-demoo does not exist (did you mean {root}/runs/ast-demo?)"),
    ("folder that is not a run", "predict.py", ["--model_dir", "{root}/empty_folder", "{audio}"], "has no config.json"),
    ("run without weights", "predict.py", ["--model_dir", "{no_weights}", "{audio}"], "has no model weights"),
    ("corrupt model.safetensors", "predict.py", ["--model_dir", "{corrupt_weights}", "{audio}"],
     "cannot load the model weights"),
    ("config.json of another library", "predict.py", ["--model_dir", "{foreign_config}", "{audio}"],
     "has a 'bert' model, not a Sentio model's config"),
    ("0-byte preprocessor_config.json", "predict.py", ["--model_dir", "{empty_preprocessor}", "{audio}"], "is empty"),
    ("cuda on a CPU-only torch", "predict.py", ["--model_dir", "{run}", "--device", "cuda", "{audio}"],
     "--device cuda: this torch has no usable CUDA GPU; use --device cpu"),
    ("output of unknown type", "predict.py", ["--model_dir", "{run}", "--output", "x.txt", "{audio}"],
     "--output must end in .csv or .json"),
    ("folder with no audio", "predict.py", ["--model_dir", "{run}", "{root}/empty_folder"], "no audio files to predict"),
    ("batch size 0", "predict.py", ["--model_dir", "{run}", "--batch_size", "0", "{audio}"], "--batch_size must be >= 1"),
    ("negative file timeout", "predict.py", ["--model_dir", "{run}", "--file_timeout", "-1", "{audio}"],
     "--file_timeout must be >= 0 seconds"),
    ("full output disk", "predict.py", ["--model_dir", "{run}", "--output", "{full_disk}", "{audio}"],
     "No space left on device"),
    # evaluate.py
    ("evaluate a folder that is not a run", "evaluate.py", ["--model_dir", "{root}/empty_folder"], "has no config.json"),
    ("negative bootstrap", "evaluate.py", ["--model_dir", "{run}", "--bootstrap", "-1"], "--bootstrap must be >= 0"),
    ("evaluate batch size 0", "evaluate.py", ["--model_dir", "{run}", "--batch_size", "0"], "--batch_size must be >= 1"),
    ("unknown split", "evaluate.py", ["--model_dir", "{run}", "--split", "dev"], "invalid choice: 'dev'"),
    ("manifest with wrong columns", "evaluate.py", ["--model_dir", "{bad_columns}"], "manifest.csv"),
    ("manifest label out of range", "evaluate.py", ["--model_dir", "{bad_labels}"], "valence 1.7 outside [-1, 1]"),
    ("empty split", "evaluate.py", ["--model_dir", "{run}", "--split", "validation"], "the 'validation' split has no songs"),
    # train.py
    ("zero epochs", "train.py", ["--demo", "--epochs", "0"], "--epochs must be positive"),
    ("NaN learning rate", "train.py", ["--demo", "--learning_rate", "nan"], "--learning_rate must be positive"),
    ("negative mixup", "train.py", ["--demo", "--mixup_alpha", "-1"], "--mixup_alpha must be >= 0"),
    ("NaN dropout", "train.py", ["--demo", "--final_dropout", "nan"], "--final_dropout must be in [0, 1)"),
    ("unknown pooling", "train.py", ["--demo", "--pooling", "avg"], "invalid choice: 'avg'"),
    ("unknown loss", "train.py", ["--demo", "--loss", "l1"], "invalid choice: 'l1'"),
    ("unknown layer", "train.py", ["--demo", "--layer", "middle"], "--layer must be last, weighted or a hidden-state index"),
    ("unknown model", "train.py", ["--demo", "--model", "bert"], "unknown model 'bert'"),
    ("seconds for a frame-windowed model", "train.py", ["--demo", "--window_seconds", "5"],
     "--window_seconds: ast windows are set in frames by the model (use --max_length)"),
    ("frames for a seconds-windowed model", "train.py", ["--demo", "--model", "vit", "--max_length", "100"],
     "--max_length: vit windows are set in seconds (use --window_seconds)"),
    ("GAN data for a waveform model", "train.py", ["--demo", "--model", "wav2vec2", "--synthetic", "{root}"],
     "GAN windows exist only for spectrogram backbones"),
    ("GAN data in probe mode", "train.py", ["--demo", "--probe", "--synthetic", "{root}"],
     "--synthetic cannot be combined with --probe"),
    ("output folder that is a file", "train.py", ["--demo", "--output_dir", "{root}/a_file"],
     "--output_dir {root}/a_file is a file, not a folder"),
    ("missing data", "train.py", ["--data", "{root}/nowhere", "--output_dir", "{root}/out"], "no such file or folder"),
    ("bad split fractions", "train.py", ["--demo", "--split_fractions", "0.5,0.5"], "--split_fractions"),
    ("negative synthetic ratio", "train.py", ["--demo", "--synthetic", "{root}", "--synthetic_ratio", "-1"],
     "--synthetic_ratio must be >= 0"),
    ("GAN data for a dynamic target", "train.py", ["--demo", "--target", "dynamic", "--synthetic", "{root}"],
     "--synthetic cannot be combined with --target dynamic/both"),
    ("search of a partly frozen model", "train.py", ["--demo", "--hp_search", "2", "--unfreeze_top_layers", "1"],
     "--hp_search searches head and training settings"),
    ("search resuming a checkpoint", "train.py", ["--demo", "--hp_search", "2", "--resume_from_checkpoint", "{root}"],
     "--hp_search resumes on its own"),
    ("search space without a search", "train.py", ["--demo", "--hp_space", "{root}/space.json"],
     "--hp_space needs --hp_search N"),
    ("spread weight without uncertainty", "train.py", ["--demo", "--disagreement_weight", "1"],
     "--disagreement_weight needs --uncertainty"),
    ("two trained parts", "train.py", ["--demo", "--probe", "--unfreeze_top_layers", "2"],
     "--probe and --unfreeze_top_layers cannot be combined"),
    ("zero patience", "train.py", ["--demo", "--early_stopping_patience", "0"], "--early_stopping_patience must be >= 1"),
    ("no feature workers", "train.py", ["--demo", "--preprocessing_num_workers", "0"],
     "--preprocessing_num_workers must be >= 1"),
    ("checkpointing an encoder without it", "train.py", ["--demo", "--model", NO_CHECKPOINTING, "--gradient_checkpointing"],
     f"the {NO_CHECKPOINTING} encoder does not support it"),
    # prepare.py
    ("prepare features of an unknown model", "prepare.py", ["--demo", "--output_dir", "{root}/p", "--features", "bert"],
     "unknown model 'bert'"),
    ("train-split statistics for mel images", "prepare.py", ["--demo", "--output_dir", "{root}/p", "--features", "vit",
                                                             "--dataset_stats"], "apply to fbank features only"),
    # distill.py
    ("ONNX export as teacher", "distill.py", ["--teacher", "{onnx_only}", "--output_dir", "{root}/s"],
     "not a loadable ONNX model"),
    ("alpha out of range", "distill.py", ["--teacher", "{run}", "--alpha", "1.5"], "--alpha must be in [0, 1]"),
    ("unknown student", "distill.py", ["--teacher", "{run}", "--student", "resnet"], "invalid choice: 'resnet'"),
    ("zero student width", "distill.py", ["--teacher", "{run}", "--width_mult", "0"], "--width_mult must be in (0, 4]"),
    # train_gan.py
    ("GAN of a waveform model", "train_gan.py", ["--demo", "--model", "wav2vec2", "--output_dir", "{root}/g"],
     "reads waveform features, not spectrograms"),
    ("unknown DiffAugment policy", "train_gan.py", ["--demo", "--diff_augment", "blur"], "unknown policy 'blur'"),
    ("no synthetic windows", "train_gan.py", ["--demo", "--num_synthetic", "0"], "--num_synthetic >= 1"),
    ("negative auxiliary weight", "train_gan.py", ["--demo", "--aux_weight", "-1"],
     "--aux_weight and --consistency_weight must be >= 0"),
    ("consistency without a guide", "train_gan.py", ["--demo", "--consistency_weight", "1"], "need --guide_regressor RUN"),
    ("too few tracking samples", "train_gan.py", ["--demo", "--track_samples", "2"], "--track_samples >= 4"),
    ("GAN regressor that is not a run", "train_gan.py", ["--demo", "--regressor", "{root}/empty_folder",
                                                         "--output_dir", "{root}/g"], "has no config.json"),
    # download_model.py
    ("download while offline", "download_model.py", ["ast", "--output_dir", "{root}/m"], "HF_HUB_OFFLINE is set"),
    ("zero retries", "download_model.py", ["ast", "--output_dir", "{root}/m", "--retries", "0"], "--retries must be >= 1"),
    # app.py (the flags only: a page is never started)
    ("upload size without a unit", "app.py", ["--model_dir", "{run}", "--max_file_size", "lots"],
     "--max_file_size must be a size like 50mb or 1gb"),
    ("zero keep time", "app.py", ["--model_dir", "{run}", "--keep_files", "0"], "--keep_files must be a positive number"),
]


@pytest.mark.parametrize("case, script, args, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(world, monkeypatch, capsys, case, script, args, expected):
    places = {k: str(v) for k, v in world.items()}
    before = {p: p.read_bytes() for p in world["run"].iterdir() if p.is_file()}
    if "--demo" in args:  # should a case get as far as the data, it must not write into the repository
        args = [*args, "--demo_dir", "{root}/demo", "--cache_dir", "{root}/cache"]
    code = run_script(monkeypatch, script, *[a.format(**places) for a in args])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    assert last.startswith(f"{script}: error: "), last
    assert expected.format(**places) in last, last
    assert {p: p.read_bytes() for p in world["run"].iterdir() if p.is_file()} == before  # nothing lost
