"""When does GAN-made data help? Test CCC against the share of train songs, per augmentation arm.

    python bench/augmentation_curve.py --demo --quick --output_dir runs/augmentation-curve    # CPU, about an hour
    python bench/augmentation_curve.py --demo --full --output_dir runs/augmentation-curve     # settings for a GPU
    python bench/augmentation_curve.py --smoke --data labels.csv --label_scale=-1-1 --output_dir /tmp/curve

Every choice, and why:

- Fractions. The train songs are shuffled once (--subset_seed) and fraction f takes the first
  round(f * N) of them, so the subsets are nested: a smaller fraction is part of every larger one,
  and the curve measures more data, not other data.
- Arms, for each fraction and seed:
    real      f's real songs, no augmentation
    classic   real + SpecAugment masks + mixup of windows and labels (alpha 0.2)
    gan_0.5   real + 0.5 synthetic windows per real song of f
    gan_1     real + 1 synthetic window per real song of f
  The GAN arms add nothing else, so their difference to `real` is the synthetic data's alone.
- What sees which songs. Per fraction, before any arm: a regressor trained on f's songs only (the
  `real` recipe with its own seed) and a GAN trained on f's songs only (train_gan's --train_songs).
  The regressor's embedding is what the GAN's FD is tracked on (the best-FD checkpoint writes the
  synthetic windows), and, when the settings turn them on, it steers the consistency loss and the
  consistency filter. So at fraction f nothing sees a train song outside f, and nothing trains on
  or is selected by a validation or test song (the GAN's quality report reads test windows only to
  report the regressor's own accuracy).
- Equal optimiser steps in every cell (--max_steps, batch size, learning rate and schedule all
  fixed): extra data cannot win by extra compute, and a small fraction is not under-trained.
- The model after the last step is scored; no best-checkpoint selection, which would let the
  validation songs steer each arm differently. Validation CCC is recorded beside test, never used.
- Seeds: seed s fixes the initial weights, the data order and which synthetic windows join, the
  same in every arm, so arms are paired by seed. All cells share the same validation and the same
  real-only test songs.
- Statistics, per fraction and arm against `real`: the mean paired difference over seeds with a
  paired t-test (scipy.stats.ttest_rel): is the gain more than seed-to-seed noise? And a 95%
  bootstrap interval (scipy.stats.bootstrap, BCa) of the seed-averaged difference, resampling the
  TEST SONGS with both arms' predictions kept together: with 3 seeds a bootstrap over seeds has
  only 10 distinct resamples, while the test songs are what another test set would change. A cell
  counts as "helps" or "hurts" only when both agree (p < 0.05 and the interval excludes 0).
- Output in --output_dir: results.jsonl (one row per cell, appended as it finishes; a rerun skips
  finished cells, and an interrupted GAN resumes from its checkpoint), stages.jsonl (regressor and
  GAN timings), curve.md (the table), curve.png (the figure), curve.json (the numbers), and per
  fraction f<pct>/songs.txt, f<pct>/regressor/, f<pct>/gan/ (the GAN's own reports).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sentio.args import DataArguments  # noqa: E402  (after the path set-up)
from sentio.cli import parse_dataclasses, parser_for, run_cli  # noqa: E402
from sentio.errors import ArgumentError, DataError  # noqa: E402

logger = logging.getLogger("augmentation_curve")
ARMS = ("real", "classic", "gan_0.5", "gan_1")
REGRESSOR_SEED = 10_000  # the per-fraction regressor's seed: none of the arms' seeds
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Settings:
    """Everything a cell's number depends on; saved in settings.json, which a rerun must match."""

    fractions: tuple[float, ...]
    seeds: int
    max_steps: int  # optimiser steps of every regressor, whatever the fraction and arm
    batch_size: int
    learning_rate: float
    mixup_alpha: float
    gan_steps: int  # GAN steps per fraction (the same at every fraction)
    gan_batch_size: int
    gan_height: int
    gan_width: int
    gan_channels: int
    aux_weight: float
    consistency_weight: float
    filter_consistency: float | None
    track_times: int  # FD measurements per GAN run (the best one writes the synthetic windows)
    track_samples: int
    quality_samples: int
    compact: bool  # the backbone's compact config from scratch even without --demo (smoke)


PRESETS = {
    # Seconds, on any corpus: the code path end to end, numbers meaningless.
    "smoke": Settings(fractions=(0.5, 1.0), seeds=2, max_steps=2, batch_size=4, learning_rate=1e-3, mixup_alpha=0.2,
                      gan_steps=4, gan_batch_size=4, gan_height=16, gan_width=16, gan_channels=4, aux_weight=1.0,
                      consistency_weight=1.0, filter_consistency=0.9, track_times=2, track_samples=4,
                      quality_samples=16, compact=True),
    # About an hour on 2 CPU cores with the demo corpus (compact AST, one torch thread).
    "quick": Settings(fractions=(0.1, 0.25, 0.5, 1.0), seeds=3, max_steps=150, batch_size=8, learning_rate=3e-4,
                      mixup_alpha=0.2, gan_steps=300, gan_batch_size=32, gan_height=64, gan_width=64, gan_channels=16,
                      aux_weight=0.0, consistency_weight=1.0, filter_consistency=None, track_times=4,
                      track_samples=128, quality_samples=256, compact=False),
    # For a GPU: the GAN at the full feature resolution, trained far longer; more seeds and steps.
    "full": Settings(fractions=(0.1, 0.25, 0.5, 1.0), seeds=5, max_steps=1500, batch_size=16, learning_rate=1e-4,
                     mixup_alpha=0.2, gan_steps=20_000, gan_batch_size=32, gan_height=128, gan_width=256,
                     gan_channels=32, aux_weight=0.0, consistency_weight=1.0, filter_consistency=None,
                     track_times=20, track_samples=512, quality_samples=500, compact=False),
}


@dataclass
class CurveArguments:
    """The study's own flags (the data flags are train.py's)."""

    output_dir: str = field(default="runs/augmentation-curve", metadata={"help": "Where results, table and figure go."})
    smoke: bool = field(default=False, metadata={"help": "Tiny settings that run in seconds: a code check only."})
    quick: bool = field(default=False, metadata={"help": "CPU settings: about an hour on the demo corpus (default)."})
    full: bool = field(default=False, metadata={"help": "GPU settings: full-resolution GAN, longer training, 5 seeds."})
    model: str = field(default="ast", metadata={"help": "Backbone: ast or vit (spectrogram features)."})
    checkpoint: str | None = field(default=None, metadata={"help": "Local model folder (default: as train.py)."})
    fractions: str | None = field(default=None, metadata={"help": "Override the preset's fractions, e.g. 0.1,0.5,1."})
    seeds: int | None = field(default=None, metadata={"help": "Override the preset's number of seeds (at least 2)."})
    max_steps: int | None = field(default=None, metadata={"help": "Override the preset's regressor steps."})
    gan_steps: int | None = field(default=None, metadata={"help": "Override the preset's GAN steps."})
    subset_seed: int = field(default=0, metadata={"help": "Seed of the one shuffle that orders the train songs."})
    bootstrap: int = field(default=2000, metadata={"help": "Bootstrap resamples of the test songs."})
    num_threads: int = field(default=1, metadata={
        "help": "torch CPU threads; 1 is measured fastest for these small models on busy shared cores."})


def resolve_settings(args: CurveArguments) -> Settings:
    """The preset named by --smoke/--quick/--full (quick by default) with the overrides applied."""
    named = [name for name in PRESETS if getattr(args, name)]
    if len(named) > 1:
        raise ArgumentError(f"choose one of --smoke, --quick, --full (got {', '.join('--' + n for n in named)})")
    settings = PRESETS[named[0] if named else "quick"]
    if args.fractions:
        try:
            fractions = tuple(sorted(float(f) for f in args.fractions.split(",")))
        except ValueError:
            raise ArgumentError(f"--fractions must be numbers like 0.1,0.5,1, got {args.fractions!r}") from None
        settings = replace(settings, fractions=fractions)
    overrides = {k: getattr(args, k) for k in ("seeds", "max_steps", "gan_steps") if getattr(args, k) is not None}
    settings = replace(settings, **overrides)
    if not all(0 < f <= 1 for f in settings.fractions):
        raise ArgumentError(f"--fractions must lie in (0, 1], got {list(settings.fractions)}")
    if settings.seeds < 2 or settings.max_steps < 1 or settings.gan_steps < 1:
        raise ArgumentError("--seeds must be >= 2 (arms are compared by seed) and the step counts >= 1")
    return settings


def check_settings_file(out: Path, settings: Settings, data_args: DataArguments, args: CurveArguments) -> None:
    """Results of other settings must not mix into one table: the first run writes settings.json."""
    mine = {"settings": json.loads(json.dumps(asdict(settings))), "data": json.loads(json.dumps(asdict(data_args))),
            "model": args.model, "checkpoint": args.checkpoint, "subset_seed": args.subset_seed}
    path = out / "settings.json"
    if path.is_file():
        theirs = json.loads(path.read_text())
        differ = sorted(k for k in mine if mine[k] != theirs.get(k))
        if differ:
            raise ArgumentError(f"{out} holds a study with other {differ[0]} settings; use another --output_dir")
    else:
        path.write_text(json.dumps(mine, indent=2) + "\n")


# ---- the pieces -------------------------------------------------------------------------------
@dataclass
class Corpus:
    """The study's fixed inputs: model plan, features, the shuffled train songs, validation and test."""

    plan: Any
    extractor: Any
    features: Any
    train_songs: list[str]  # shuffled once; fraction f is a prefix

    def songs(self, fraction: float) -> list[str]:
        return self.train_songs[: max(2, round(fraction * len(self.train_songs)))]

    def subset(self, songs: list[str]) -> Any:
        """The features without the train windows of songs outside `songs` (validation and test stay)."""
        from sentio.gan.data import keep_train_songs

        return keep_train_songs(self.features, songs)

    def full_windows(self, songs: list[str]) -> int:
        """Full-length train windows of `songs` (what the GAN learns from)."""
        full = self.extractor.params.feature_shape[self.extractor.time_axis]
        meta = self.subset(songs).select_columns(["split", "length"]).with_format("arrow")[:]
        return sum(s == "train" and n >= full for s, n in zip(meta["split"].to_pylist(), meta["length"].to_pylist()))


def load_corpus(data_args: DataArguments, args: CurveArguments, settings: Settings, out: Path) -> Corpus:
    from sentio.args import ModelArguments
    from sentio.features.cache import build_feature_dataset
    from sentio.data.sources import prepare_manifest
    from sentio.models.plan import model_plan

    plan = model_plan(ModelArguments(model=args.model, checkpoint=args.checkpoint), data_args.demo or settings.compact)
    if not plan.backbone.is_spectrogram:
        raise ArgumentError(f"--model {plan.backbone.name} reads {plan.backbone.feature_kind} features: the GAN arms "
                            "need a spectrogram backbone")
    extractor = plan.feature_extractor(plan.architecture())
    manifest, _ = prepare_manifest(data_args, out, progress=False)
    features, _ = build_feature_dataset(manifest, extractor, data_args.cache_dir,
                                        num_proc=data_args.preprocessing_num_workers)
    songs = sorted(set(manifest.loc[manifest["split"] == "train", "song_id"].astype(str)))
    shuffled = [songs[i] for i in np.random.default_rng(args.subset_seed).permutation(len(songs))]
    return Corpus(plan, extractor, features, shuffled)


def train_cell(corpus: Corpus, settings: Settings, fraction: float, songs: list[str], arm: str, seed: int,
               gan_dir: Path) -> dict[str, Any]:
    """One regressor of one arm: exactly settings.max_steps steps, scored on validation and test songs."""
    from transformers import set_seed

    from sentio.args import ModelArguments
    from sentio.gan.report import song_predictions, train_steps
    from sentio.gan.synthetic import with_synthetic
    from sentio.metrics import regression_metrics
    from sentio.training.augment import Mixup
    from sentio.training.setup import training_datasets

    t0 = time.perf_counter()
    extractor = corpus.extractor
    model_args = ModelArguments(model=corpus.plan.backbone.name, spec_augment=arm == "classic")
    train, validation, test = training_datasets(corpus.subset(songs), extractor, model_args)
    synthetic_rows = 0
    if arm == "classic":
        train = Mixup(train, extractor.feature_name, alpha=settings.mixup_alpha)
    elif arm.startswith("gan_"):
        train, info = with_synthetic(train, gan_dir, float(arm.split("_")[1]), extractor, seed=seed)
        synthetic_rows = info["synthetic_rows"]
    set_seed(seed)  # the same initial weights in every arm of this seed
    model = train_steps(corpus.plan.build(), train, extractor, settings.max_steps, seed, settings.learning_rate,
                        settings.batch_size)
    pred, true, test_songs = song_predictions(model, test, extractor)
    val = regression_metrics(*song_predictions(model, validation, extractor)[:2])
    metrics = regression_metrics(pred, true)
    return {"fraction": fraction, "arm": arm, "seed": seed, "steps": settings.max_steps, "train_songs": len(songs),
            "train_items": len(train), "synthetic_rows": synthetic_rows,
            "test_ccc_mean": metrics["ccc_mean"], "test_ccc_valence": metrics["ccc_valence"],
            "test_ccc_arousal": metrics["ccc_arousal"], "val_ccc_mean": val["ccc_mean"],
            "seconds": round(time.perf_counter() - t0, 1), "test_songs": test_songs,
            "test_labels": true.round(6).tolist(), "test_predictions": pred.round(6).tolist()}


def fraction_regressor(corpus: Corpus, settings: Settings, songs: list[str], folder: Path) -> Path:
    """A regressor of f's songs only (the `real` recipe, its own seed), saved as a run folder; it
    measures (and, when on, steers) the fraction's GAN. Written under a temporary name and renamed."""
    from transformers import set_seed

    from sentio.args import ModelArguments
    from sentio.gan.report import train_steps
    from sentio.training.setup import training_datasets

    final = folder / "regressor"
    if (final / "config.json").is_file():
        return final
    train = training_datasets(corpus.subset(songs), corpus.extractor,
                              ModelArguments(model=corpus.plan.backbone.name, spec_augment=False))[0]
    set_seed(REGRESSOR_SEED)
    model = train_steps(corpus.plan.build(), train, corpus.extractor, settings.max_steps, REGRESSOR_SEED,
                        settings.learning_rate, settings.batch_size)
    tmp = folder / "regressor.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    corpus.extractor.save_pretrained(tmp)
    tmp.rename(final)
    return final


def fraction_gan(corpus: Corpus, settings: Settings, songs: list[str], folder: Path, regressor: Path,
                 num_threads: int) -> Path:
    """The GAN of f's songs only, with its synthetic split (2 windows per real song, so the arms'
    draws differ by seed); resumes from its checkpoint after an interruption."""
    from sentio.gan.args import GanArguments
    from sentio.gan.study import train_gan_on

    gan_dir = folder / "gan"
    if (gan_dir / "gan_report.json").is_file():  # written last
        return gan_dir
    per_epoch = max(1, corpus.full_windows(songs) // settings.gan_batch_size)
    epochs = math.ceil(settings.gan_steps / per_epoch)
    steer = settings.consistency_weight > 0 or settings.filter_consistency is not None
    args = GanArguments(output_dir=str(gan_dir), model=corpus.plan.backbone.name, max_steps=settings.gan_steps,
                        num_synthetic=2 * len(songs), batch_size=settings.gan_batch_size,
                        gan_height=settings.gan_height, gan_width=settings.gan_width,
                        gan_channels=settings.gan_channels, aux_weight=settings.aux_weight,
                        consistency_weight=settings.consistency_weight,
                        guide_regressor=str(regressor) if steer else None,
                        filter_consistency=settings.filter_consistency, regressor=str(regressor),
                        track_every=max(1, epochs // settings.track_times), track_samples=settings.track_samples,
                        quality_samples=settings.quality_samples, num_audio=1, num_grid=4, num_threads=num_threads,
                        progress=False)
    train_gan_on(corpus.features, corpus.plan, corpus.extractor, args, train_songs=songs)
    return gan_dir


# ---- statistics, table, figure ------------------------------------------------------------------
def _ccc_mean(pred: np.ndarray, true: np.ndarray) -> float:
    from sentio.metrics import concordance_cc

    return float(np.mean([concordance_cc(pred[:, d], true[:, d]) for d in range(2)]))


def _bootstrap_ci(statistic: Any, n: int, resamples: int, seed: int) -> tuple[float, float]:
    """95% BCa interval of statistic(song indices) over bootstrap resamples of the n test songs."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # a degenerate set (a handful of songs) gives NaN, reported as n/a
        warnings.simplefilter("ignore")
        result = stats.bootstrap((np.arange(n),), statistic, vectorized=False, n_resamples=resamples,
                                 confidence_level=CONFIDENCE, method="BCa", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass
class Cell:
    """One fraction x arm over its seeds."""

    fraction: float
    arm: str
    train_songs: int
    seeds: int
    ccc: float  # mean over seeds of the test CCC (mean of valence and arousal)
    ccc_sd: float
    valence: float
    arousal: float
    ccc_ci: tuple[float, float]  # bootstrap over test songs of the seed-averaged CCC
    delta: float | None = None  # paired difference to `real`, mean over seeds
    delta_sd: float | None = None
    p: float | None = None  # paired t-test over seeds
    delta_ci: tuple[float, float] | None = None  # bootstrap over test songs

    @property
    def verdict(self) -> str:
        if self.delta is None or self.p is None or self.delta_ci is None:
            return ""
        if not (math.isfinite(self.p) and all(map(math.isfinite, self.delta_ci))):
            return "n/a"
        if self.p < 0.05 and self.delta_ci[0] > 0:
            return "helps"
        if self.p < 0.05 and self.delta_ci[1] < 0:
            return "hurts"
        return "no measurable difference"


def summarise(rows: list[dict], settings: Settings, resamples: int) -> list[Cell]:
    """Cells of every fraction and arm that has all its seeds, with paired statistics against `real`."""
    from scipy import stats

    by = {(r["fraction"], r["arm"], r["seed"]): r for r in rows}
    seeds = range(settings.seeds)
    cells = []
    for fraction in settings.fractions:
        real = [by.get((fraction, "real", s)) for s in seeds]
        for arm in ARMS:
            mine = [by.get((fraction, arm, s)) for s in seeds]
            if any(r is None for r in mine):
                continue
            true = np.asarray(mine[0]["test_labels"])
            preds = [np.asarray(r["test_predictions"]) for r in mine]
            ccc = np.array([r["test_ccc_mean"] for r in mine])
            cell = Cell(fraction, arm, mine[0]["train_songs"], len(mine), float(ccc.mean()), float(ccc.std(ddof=1)),
                        float(np.mean([r["test_ccc_valence"] for r in mine])),
                        float(np.mean([r["test_ccc_arousal"] for r in mine])),
                        _bootstrap_ci(lambda i: np.mean([_ccc_mean(p[i], true[i]) for p in preds]), len(true),
                                      resamples, seed=0))
            if arm != "real" and all(r is not None for r in real):
                base = np.array([r["test_ccc_mean"] for r in real])
                base_preds = [np.asarray(r["test_predictions"]) for r in real]
                diff = ccc - base
                cell.delta, cell.delta_sd = float(diff.mean()), float(diff.std(ddof=1))
                cell.p = float(stats.ttest_rel(ccc, base).pvalue) if diff.std() > 0 else float("nan")
                cell.delta_ci = _bootstrap_ci(
                    lambda i: np.mean([_ccc_mean(p[i], true[i]) - _ccc_mean(q[i], true[i])
                                       for p, q in zip(preds, base_preds)]), len(true), resamples, seed=0)
            cells.append(cell)
    return cells


def table(cells: list[Cell], settings: Settings, test_songs: int) -> str:
    lines = [
        f"Test CCC (song level, labels on [-1, 1], {test_songs} real test songs) after exactly {settings.max_steps} "
        f"steps of batch {settings.batch_size} at lr {settings.learning_rate:g}; {settings.seeds} seeds, paired "
        f"against `real`. p: paired t-test over seeds; CI: 95% BCa bootstrap over test songs.", "",
        "| train songs | arm | CCC mean ± sd | valence | arousal | Δ vs real ± sd | p | 95% CI of Δ | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        delta = "—" if c.delta is None else f"{c.delta:+.3f} ± {c.delta_sd:.3f}"
        p = "—" if c.p is None else ("n/a" if not math.isfinite(c.p) else f"{c.p:.2f}")
        ci = "—" if c.delta_ci is None else (f"[{c.delta_ci[0]:+.3f}, {c.delta_ci[1]:+.3f}]"
                                             if all(map(math.isfinite, c.delta_ci)) else "n/a")
        lines.append(f"| {c.train_songs} ({c.fraction:.0%}) | {c.arm} | {c.ccc:.3f} ± {c.ccc_sd:.3f} | "
                     f"{c.valence:.3f} | {c.arousal:.3f} | {delta} | {p} | {ci} | {c.verdict} |")
    return "\n".join(lines) + "\n"


def figure(cells: list[Cell], path: Path) -> Path:
    """Left: test CCC vs train songs, one line per arm, bootstrap bands; right: the paired difference to real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for arm in ARMS:
        mine = sorted((c for c in cells if c.arm == arm), key=lambda c: c.train_songs)
        if not mine:
            continue
        x = [c.train_songs for c in mine]
        line, = left.plot(x, [c.ccc for c in mine], marker="o", label=arm)
        left.fill_between(x, [c.ccc_ci[0] for c in mine], [c.ccc_ci[1] for c in mine], alpha=0.15,
                          color=line.get_color())
        if arm != "real" and all(c.delta_ci is not None for c in mine):
            right.plot(x, [c.delta for c in mine], marker="o", color=line.get_color(), label=arm)
            right.fill_between(x, [c.delta_ci[0] for c in mine], [c.delta_ci[1] for c in mine], alpha=0.15,
                               color=line.get_color())
    right.axhline(0, color="black", lw=0.8, ls="--")
    ticks = sorted({(c.train_songs, c.fraction) for c in cells})
    for ax, title in ((left, "test CCC (mean of seeds, 95% CI over test songs)"),
                      (right, "paired difference to real (95% CI over test songs)")):
        ax.set_xscale("log")
        ax.set_xticks([n for n, _ in ticks], [f"{n}\n{f:.0%}" for n, f in ticks])
        ax.minorticks_off()
        ax.set_xlabel("real train songs")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    left.set_ylabel("CCC")
    right.set_ylabel("Δ CCC")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- the study --------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    # A line cut short by a kill mid-append is dropped: that cell simply runs again.
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s: skipping an incomplete line", path)
    return rows


def _append(path: Path, row: dict) -> None:
    """One JSON line, flushed; after a line cut short by a kill it starts a new line."""
    cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if cut else "") + json.dumps(row) + "\n")
        fh.flush()


def run_study(data_args: DataArguments, args: CurveArguments, settings: Settings, out: Path) -> list[dict]:
    """Every missing cell, fraction by fraction; returns all result rows."""
    corpus = load_corpus(data_args, args, settings, out)
    results, stages = out / "results.jsonl", out / "stages.jsonl"
    rows = _read_jsonl(results)
    done = {(r["fraction"], r["arm"], r["seed"]) for r in rows}
    if done:
        logger.info("%d finished cells found in %s: skipped", len(done), results)
    for fraction in settings.fractions:
        songs = corpus.songs(fraction)
        folder = out / f"f{round(fraction * 100):03d}"
        folder.mkdir(exist_ok=True)
        (folder / "songs.txt").write_text("\n".join(songs) + "\n")
        todo = [(seed, arm) for seed in range(settings.seeds) for arm in ARMS if (fraction, arm, seed) not in done]
        if not todo:
            continue
        t0 = time.perf_counter()
        regressor = fraction_regressor(corpus, settings, songs, folder)
        t1 = time.perf_counter()
        gan_dir = fraction_gan(corpus, settings, songs, folder, regressor, args.num_threads)
        _append(stages, {"fraction": fraction, "regressor_seconds": round(t1 - t0, 1),
                         "gan_seconds": round(time.perf_counter() - t1, 1)})
        for seed, arm in todo:
            row = train_cell(corpus, settings, fraction, songs, arm, seed, gan_dir)
            logger.info("f %.2f %-8s seed %d: test CCC %.4f (%.0f s)", fraction, arm, seed, row["test_ccc_mean"],
                        row["seconds"])
            _append(results, row)
            rows.append(row)
    return rows


def gan_numbers(out: Path, settings: Settings) -> list[dict]:
    """Per fraction: the GAN's regressor-embedding FD/precision/recall and label consistency,
    beside real vs real (from each fraction's gan_quality.json)."""
    numbers = []
    for fraction in settings.fractions:
        path = out / f"f{round(fraction * 100):03d}" / "gan" / "gan_quality.json"
        if not path.is_file():
            continue
        q = json.loads(path.read_text())
        reg, lc = q["regressor"], q["label_consistency"]
        numbers.append({"fraction": fraction, "fd": reg["synthetic"]["fd"], "fd_real": reg["real_vs_real"]["fd"],
                        "precision": reg["synthetic"]["precision"], "recall": reg["synthetic"]["recall"],
                        "ccc_valence": lc["synthetic"]["ccc_valence"], "ccc_arousal": lc["synthetic"]["ccc_arousal"],
                        "sampled_from": q.get("sampled_from", "")})
    return numbers


def corpus_note(data_args: DataArguments) -> str:
    """Which data the numbers are from (the demo corpus's generator version, which changes its music)."""
    if not data_args.demo:
        return f"Data: {data_args.data}."
    marker = Path(data_args.demo_dir) / "demo.json"
    version = json.loads(marker.read_text()).get("version") if marker.is_file() else "unknown"
    return f"Data: the demo corpus, version {version} ({data_args.demo_num_clips} clips, seed {data_args.demo_seed})."


def main() -> int:
    parser = parser_for((DataArguments, CurveArguments), prog="augmentation_curve.py",
                        description="Test CCC against the share of train songs: real, classic and GAN augmentation.")
    data_args, args = parse_dataclasses(parser)
    settings = resolve_settings(args)
    import torch

    from sentio.cli import ensure_writable_dir

    started = time.perf_counter()
    torch.set_num_threads(args.num_threads)
    out = ensure_writable_dir(args.output_dir)
    check_settings_file(out, settings, data_args, args)
    rows = run_study(data_args, args, settings, out)
    if not rows:
        raise DataError("no cell finished")
    cells = summarise(rows, settings, args.bootstrap)
    test_songs = len(rows[0]["test_songs"])
    gan = gan_numbers(out, settings)
    markdown = f"# When does GAN-made data help?\n\n{corpus_note(data_args)}\n\n" + table(cells, settings, test_songs)
    if gan:
        steered = settings.consistency_weight > 0 or settings.filter_consistency is not None
        markdown += ("\nThe GAN of each fraction, read by that fraction's regressor" +
                     (" (the one that also steered it, so these numbers are optimistic)" if steered else "") +
                     ": FD on its embedding beside real vs real (two song halves of the fraction's windows; "
                     "each fraction has its own embedding, so FDs compare within a row only), precision, recall, "
                     "and label consistency (CCC on synthetic windows against their labels):\n\n"
                     "| train songs | FD (real vs real) | precision | recall | consistency valence | arousal |\n"
                     "|---|---|---|---|---|---|\n")
        for g in gan:
            markdown += (f"| {g['fraction']:.0%} | {g['fd']:.1f} ({g['fd_real']:.1f}) | {g['precision']:.2f} | "
                         f"{g['recall']:.2f} | {g['ccc_valence']:.2f} | {g['ccc_arousal']:.2f} |\n")
    (out / "curve.md").write_text(markdown)
    figure(cells, out / "curve.png")
    compute = sum(r["seconds"] for r in rows) + sum(s["regressor_seconds"] + s["gan_seconds"]
                                                    for s in _read_jsonl(out / "stages.jsonl"))
    wall = time.perf_counter() - started
    (out / "curve.json").write_text(json.dumps({"settings": asdict(settings), "cells": [
        {**asdict(c), "verdict": c.verdict} for c in cells], "gan": gan, "wall_seconds_this_run": round(wall, 1),
        "compute_seconds_all_runs": round(compute, 1)}, indent=2) + "\n")
    print(markdown)
    print(f"wall time {wall / 60:.1f} min this run; {compute / 60:.1f} min of cells, regressors and GANs over all "
          f"runs -> {out / 'curve.md'}, {out / 'curve.png'}")
    return 0


if __name__ == "__main__":
    run_cli(main, Path(sys.argv[0]).name)
