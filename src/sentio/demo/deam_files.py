"""The demo corpus's annotation files, written exactly in DEAM's layout and formats (as unpacked on
Kaggle: CRLF static CSVs with their quirks, 2 Hz dynamic CSVs), plus its truth files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import deam
from ..metrics import DIMENSIONS
from .plan import DYNAMIC_RATE, DYNAMIC_START_S, CorpusPlan


# The file names are the reader's (sentio.data.deam), so the demo is always a corpus it reads.
AUDIO_SUBDIR = Path("DEAM_audio", deam.AUDIO_DIR_NAME)
ANNOTATION_SUBDIR = Path("DEAM_Annotations", "annotations", "annotations averaged per song", "song_level")
CSV_1_2000, CSV_2000_2058 = deam.STATIC_FILES
HEADER_1_2000 = "song_id, valence_mean, valence_std, arousal_mean, arousal_std"
HEADER_2000_2058 = (  # sic: the real file has a stray space in "valence_ max_mean"
    "song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
    "valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, "
    "arousal_min_mean, arousal_min_std"
)
DYNAMIC_SUBDIR = Path("DEAM_Annotations", "annotations", "annotations averaged per song",
                      "dynamic (per second annotations)")
DYNAMIC_FILES = dict(zip(DIMENSIONS, deam.DYNAMIC_FILES))  # {"valence": "valence.csv", "arousal": ...}
TRUTH_DYNAMIC = "truth_dynamic.csv"


def _fmt(x: float, decimals: int, whole_as_int: bool) -> str:
    """Shortest decimal form, as the real files: `3` (1_2000 file) or `3.0` (2000_2058 file)."""
    s = repr(round(float(x), decimals))
    return s[:-2] if whole_as_int and s.endswith(".0") else s


def _write_csv(path: Path, header: str, rows: list[list[str]]) -> None:
    lines = [header] + [",".join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))  # CRLF, as DEAM's files


def _label_columns(ratings: np.ndarray, whole_as_int: bool) -> list[str]:
    """Mean (1 decimal) and sample std (2 decimals) of one dimension's ratings."""
    return [_fmt(ratings.mean(), 1, whole_as_int), _fmt(ratings.std(ddof=1), 2, whole_as_int)]


def _label_times(frames: int) -> np.ndarray:
    return DYNAMIC_START_S + np.arange(frames) / DYNAMIC_RATE


def write_static(out: Path, plan: CorpusPlan) -> None:
    """The two static annotation CSVs, bytes and quirks as DEAM's."""
    ann = out / ANNOTATION_SUBDIR
    ann.mkdir(parents=True)
    rows_a, rows_b = [], []
    for i, sid in enumerate(plan.ids):
        r, e = plan.ratings[i], plan.extremes[i]
        if sid <= 2000:
            rows_a.append([str(sid)] + _label_columns(r[0], True) + _label_columns(r[1], True))
        else:
            rows_b.append([str(sid)] + [s for d in (0, 1) for x in (r[d], e[d, 0], e[d, 1])
                                        for s in _label_columns(x, False)])
    _write_csv(ann / CSV_1_2000, HEADER_1_2000, rows_a)
    _write_csv(ann / CSV_2000_2058, HEADER_2000_2058, rows_b)


def write_dynamic(out: Path, plan: CorpusPlan) -> None:
    """valence.csv and arousal.csv as DEAM's dynamic files (one row per song, cells after the
    song's end empty, LF endings as pandas writes them), and truth_dynamic.csv in long format."""
    folder = out / DYNAMIC_SUBDIR
    folder.mkdir(parents=True)
    width = max(len(f) for f in plan.dynamic)
    header = ",".join(["song_id"] + [f"sample_{round(1000 * t)}ms" for t in _label_times(width)])
    for d, name in enumerate(DYNAMIC_FILES.values()):
        lines = [header] + [",".join([str(sid)] + [_fmt(x, 3, False) for x in f[:, d]] + [""] * (width - len(f)))
                            for sid, f in zip(plan.ids, plan.dynamic)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="ascii")
    lines = ["song_id,time,valence,arousal"]
    for sid, f in zip(plan.ids, plan.dynamic_truth):
        f = np.round(f, 4) + 0.0  # + 0.0: no "-0.0000"
        lines += [f"{sid},{t:.1f},{v:.4f},{a:.4f}" for t, (v, a) in zip(_label_times(len(f)), f)]
    (out / TRUTH_DYNAMIC).write_text("\n".join(lines) + "\n", encoding="ascii")


def _truth_cell(x) -> str:
    """Floats with 4 decimals, NaN (no change) empty."""
    if not isinstance(x, float):
        return str(x)
    return "" if np.isnan(x) else f"{x:.4f}"


def write_truth(out: Path, plan: CorpusPlan, cues: list[dict]) -> None:
    """truth.csv: the static truth, the cues (time-averages over the clip, see clip_cues), the
    format, the song's divisiveness and true rater sd, and the time of its clear change if any."""
    cols = ["song_id", "valence", "arousal", "tempo_bpm", "mode", "mode_index", "register",
            "dissonance", "note_density", "tilt", "loudness_dbfs", "sample_rate", "channels", "duration",
            "divisiveness", "rater_sd_valence", "rater_sd_arousal", "change_time"]
    lines = [",".join(cols)]
    for i, c in enumerate(cues):
        vals = {"valence": plan.truth[i, 0], "arousal": plan.truth[i, 1], **c,
                "divisiveness": plan.divisiveness[i], "rater_sd_valence": plan.rater_sd[i, 0],
                "rater_sd_arousal": plan.rater_sd[i, 1], "change_time": plan.change_at[i]}
        lines.append(",".join(_truth_cell(vals[k]) for k in cols))
    (out / "truth.csv").write_text("\n".join(lines) + "\n", encoding="ascii")
