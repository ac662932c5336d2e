"""The same music twice (in two datasets, or twice in one), found by its audio, made one song group.

How two clips are compared: their raw Chromaprint fingerprints (sentio.data.fingerprint) are
aligned and the share of differing bits counted (the bit error rate, BER). Measured on 12 s
synthetic music clips: a re-encoded copy (44.1 kHz stereo MP3 vs 22.05 kHz mono MP3 at another
gain) gives 0.005-0.010, different music ~0.45 (unrelated bits differ half the time; music's
structure brings it a little lower). BIT_ERROR_THRESHOLD = 0.2 sits far from both: twenty times
the re-encoding level, so a low-bit-rate copy still matches, and well under the different-music
level even after taking the best of the alignments tried (tests check both sides).

Which pairs are compared: comparing every pair is O(n^2) full comparisons; instead every clip's
exact 32-bit values go into an index (sorted arrays, not a dict of lists: memory is a few bytes per
value). Same music shares most values (at BER 0.01 a value survives intact with p = 0.99^32 = 0.72)
at a consistent position difference; unrelated clips share one by chance about once in 10^4 pairs
(~300 values each over 2^32). A pair becomes a candidate when MIN_VOTES shared values agree on one
alignment, and only candidates get the full comparison at their voted alignments. Values shared by
more than COMMON_VALUE_SONGS clips (silence, a steady tone) say nothing and are left out of the
index. Known id maps (DEAM ids <= 1000 are EmoMusic's songs) add their pairs as candidates too, but
the audio decides: a mapped pair whose audio differs is reported, not merged.

Labels of a group (see reconcile): every copy trains on the mean of the copies' labels, after each
reader has fixed its own known errors (DEAM's exchanged 2013 columns). Why the mean: each copy's
label is the mean of an independent panel of raters judging the same clip, so their average is the
better estimate of the song's emotion, and no dataset is privileged without evidence (rater counts
per song, which would justify weights, are not in the releases). Copies apart by more than
LABEL_DISAGREEMENT on either axis are listed in data_report.json, since that usually means a
mislabelled column rather than rater noise.

Dynamic (2 Hz) labels of a group follow the same rule (see reconcile_curves): at each half-second,
the mean of the copies' values there, each copy's times first moved by its audio offset from the
copy that trains (a later excerpt of the same recording labels later music). Then the group trains
as ONE row (merge_copies): its first song id in the manifest's order of ids, with the agreed label,
spreads and curve; the other copies leave the manifest (they are listed in data_report.json), so a
song found in two datasets weighs in training what any other song does.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .dynamic import FRAME_SECONDS as LABEL_FRAME_SECONDS
from .dynamic import Curve
from .fingerprint import FRAME_SECONDS, SOURCE_RATE, Fingerprints, chromaprint_problem, corpus_fingerprints

logger = logging.getLogger(__name__)

BIT_ERROR_THRESHOLD = 0.2
MIN_OVERLAP_SECONDS = 5.0  # an alignment must overlap this much (or half the shorter clip) to count
MIN_VOTES = 2
COMMON_VALUE_SONGS = 50
# On [-1, 1]: 0.25 is one point on the 1..9 scale, about twice the typical difference between two
# panels' means of ~10 raters whose spread is ~1.5 points.
LABEL_DISAGREEMENT = 0.25
MATCH_MODES = ("auto", "yes", "no")


@dataclass
class Match:
    """Clips a and b (indices) compared at their best alignment: b's value i is a's value i + offset."""

    a: int
    b: int
    bit_error: float
    offset: int
    overlap: int
    found_by: str  # "fingerprint index", "id map", or "id map (audio not checked)"


def bit_error(a: np.ndarray, b: np.ndarray, offset: int) -> tuple[float, int]:
    """Share of differing bits of a[i + offset] vs b[i] over their overlap, and the overlap (values)."""
    start, stop = max(0, -offset), min(len(b), len(a) - offset)
    if stop <= start:
        return 1.0, 0
    x = np.bitwise_xor(np.asarray(a[start + offset:stop + offset], np.uint32), np.asarray(b[start:stop], np.uint32))
    return float(np.bitwise_count(x).sum()) / (32.0 * (stop - start)), stop - start


def best_alignment(a: np.ndarray, b: np.ndarray, offsets: Iterable[int]) -> tuple[float, int, int]:
    """(bit error, offset, overlap) of the best of `offsets` (each tried +-1), among those that overlap enough."""
    need = max(1, min(int(MIN_OVERLAP_SECONDS / FRAME_SECONDS), min(len(a), len(b)) // 2))
    best = (1.0, 0, 0)
    for centre in offsets:
        for offset in (centre - 1, centre, centre + 1):
            error, overlap = bit_error(a, b, offset)
            if overlap >= need and error < best[0]:
                best = (error, offset, overlap)
    return best


def candidate_pairs(fingerprints: Fingerprints) -> dict[tuple[int, int], list[int]]:
    """Pairs (a < b) that share at least MIN_VOTES fingerprint values at one alignment -> their
    alignments, most votes first."""
    lengths = np.diff(fingerprints.offsets)
    if lengths.sum() == 0:
        return {}
    values = np.asarray(fingerprints.values, np.uint32)
    clip = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(values)) - np.repeat(fingerprints.offsets[:-1], lengths)
    order = np.lexsort((position, clip, values))
    values, clip, position = values[order], clip[order], position[order]
    # one entry per (value, clip): its first position
    first = np.ones(len(values), bool)
    first[1:] = (values[1:] != values[:-1]) | (clip[1:] != clip[:-1])
    values, clip, position = values[first], clip[first], position[first]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    votes: Counter = Counter()
    for start, size in zip(starts[(sizes >= 2) & (sizes <= COMMON_VALUE_SONGS)],
                           sizes[(sizes >= 2) & (sizes <= COMMON_VALUE_SONGS)]):
        members = list(zip(clip[start:start + size].tolist(), position[start:start + size].tolist()))
        for i, (a, pa) in enumerate(members):
            for b, pb in members[i + 1:]:
                votes[(a, b, pa - pb)] += 1
    by_pair: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for (a, b, offset), n in votes.items():
        by_pair[(a, b)].append((n, offset))
    return {pair: [o for _, o in sorted(found, reverse=True)[:3]]
            for pair, found in by_pair.items() if max(n for n, _ in found) >= MIN_VOTES}


def find_matches(fingerprints: Fingerprints, hinted: Sequence[tuple[int, int]] = (),
                 threshold: float = BIT_ERROR_THRESHOLD) -> tuple[list[Match], list[Match]]:
    """Matching clip pairs (BER <= threshold), and the hinted pairs whose audio did not match."""
    candidates = candidate_pairs(fingerprints)
    hinted_set = {tuple(sorted(p)) for p in hinted}
    matches, rejected = [], []
    for pair in sorted(set(candidates) | hinted_set):
        a, b = pair
        offsets = candidates.get(pair) or [0]
        error, offset, overlap = best_alignment(fingerprints.get(a), fingerprints.get(b), offsets)
        how = "fingerprint index" if pair in candidates else "id map"
        match = Match(a, b, round(error, 4), offset, overlap, how)
        if error <= threshold:
            matches.append(match)
        elif pair in hinted_set:
            rejected.append(match)
    return matches, rejected


def connected_groups(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups (size >= 2) of the items linked by pairs, each sorted, by their first item."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(count):
        members[root(i)].append(i)
    return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


# ----------------------------------------------------------------------------- known id maps
def _deam_emomusic(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """DEAM's ids <= 1000 (its 2013 subset) are EmoMusic's songs under the same id."""
    (da, ia), (db, ib) = sorted([a, b])
    return (da, db) == ("deam", "emomusic") and ia == ib and ia.isdigit() and int(ia) <= 1000


# Each: (dataset, local id) x (dataset, local id) -> same music by the datasets' own documentation.
KNOWN_ID_MAPS: list[Callable[[tuple[str, str], tuple[str, str]], bool]] = [_deam_emomusic]


def known_pairs(datasets: Sequence[str], local_ids: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs that a known id map says are the same music (only across datasets listed there)."""
    by_id: dict[str, list[int]] = defaultdict(list)
    for i, local in enumerate(local_ids):
        by_id[local].append(i)
    pairs = []
    for rows in by_id.values():
        for k, a in enumerate(rows):
            for b in rows[k + 1:]:
                if any(rule((datasets[a], local_ids[a]), (datasets[b], local_ids[b])) for rule in KNOWN_ID_MAPS):
                    pairs.append((a, b))
    return pairs


# ----------------------------------------------------------------------------- groups of a manifest
@dataclass
class Member:
    dataset: str
    song_id: str
    path: str
    valence: float  # the copy's own label (after its reader's fixes), on [-1, 1]
    arousal: float


@dataclass
class LabelDecision:
    rule: str
    valence: float
    arousal: float
    max_difference: float  # largest gap between two copies on either axis
    disagree: bool  # max_difference > LABEL_DISAGREEMENT


@dataclass
class CurveDecision:
    """How a group's 2 Hz curves became one (see reconcile_curves)."""

    rule: str
    copies_with_curves: list[str]
    shift_seconds: dict[str, float]  # copy -> seconds added to its times (its audio offset from the trained copy)
    frames: int  # half-seconds of the agreed curve
    frames_from_several_copies: int
    max_difference: float  # largest gap between two copies at one half-second, either axis
    disagree: bool  # max_difference > LABEL_DISAGREEMENT


@dataclass
class DuplicateGroup:
    group: str
    members: list[Member]
    matches: list[dict]  # {"a": song_id, "b": song_id, "bit_error", "offset_seconds", "found_by"}
    label: LabelDecision
    trained_as: str = ""  # the one manifest row the group trains as (merge_copies)
    merged: list[str] = field(default_factory=list)  # the copies folded into it (left the manifest)
    curve: CurveDecision | None = None  # with dynamic labels


LABEL_RULE = ("mean of the copies' labels (after each reader's own fixes), spreads as the root mean "
              "square of the copies' spreads; the group trains as one row (`trained_as`) with it")
CURVE_RULE = ("at each half-second the mean of the copies' values there, each copy's times first moved by its "
              "audio offset from the trained copy (to the 0.5 s grid); a half-second one copy labels keeps its value")


@dataclass
class DuplicateReport:
    """What data_report.json says under `duplicates`."""

    matched_by: str
    bit_error_threshold: float
    label_rule: str
    label_disagreement_threshold: float
    curve_rule: str = CURVE_RULE
    groups: list[DuplicateGroup] = field(default_factory=list)
    id_map_pairs_rejected_by_audio: list[dict] = field(default_factory=list)
    clips_without_fingerprint: list[dict] = field(default_factory=list)
    fingerprint_cache: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["groups_found"] = len(self.groups)
        out["songs_in_groups"] = sum(len(g.members) for g in self.groups)
        out["groups_whose_labels_disagree"] = sum(g.label.disagree for g in self.groups)
        out["copies_merged"] = sum(len(g.merged) for g in self.groups)
        out["groups_whose_curves_disagree"] = sum(bool(g.curve and g.curve.disagree) for g in self.groups)
        return out


def match_manifest_songs(manifest: pd.DataFrame, mode: str, cache_dir: str, local_ids: Sequence[str] | None = None,
                         progress: bool = True, source_rate: int = SOURCE_RATE,
                         ) -> tuple[list[list[int]], list[Match], list[Match], Fingerprints | None]:
    """Groups of manifest rows that are the same music: by their audio (mode yes, or auto when
    Chromaprint is installed; fingerprints from the clips decoded at `source_rate`), or by known id
    maps only (mode no). Also the matches that made them, the id-map pairs the audio rejected, and
    the fingerprints (None with mode no)."""
    datasets = manifest["dataset"].astype(str).tolist()
    local_ids = list(local_ids) if local_ids is not None else manifest["song_id"].astype(str).tolist()
    hinted = known_pairs(datasets, local_ids)
    if mode == "no":
        matches = [Match(a, b, float("nan"), 0, 0, "id map (audio not checked)") for a, b in hinted]
        return connected_groups(len(manifest), [(m.a, m.b) for m in matches]), matches, [], None
    fingerprints = corpus_fingerprints(manifest["path"].astype(str).tolist(), cache_dir, progress=progress,
                                       source_rate=source_rate)
    matches, rejected = find_matches(fingerprints, hinted)
    return connected_groups(len(manifest), [(m.a, m.b) for m in matches]), matches, rejected, fingerprints


def reconcile(members: list[Member]) -> LabelDecision:
    """One label for a group: the mean of its copies' (see the module docstring for why)."""
    values = np.array([[m.valence, m.arousal] for m in members], np.float64)
    gap = float((values.max(axis=0) - values.min(axis=0)).max())
    mean = values.mean(axis=0)
    return LabelDecision("mean of copies", round(float(mean[0]), 6), round(float(mean[1]), 6), round(gap, 6),
                         gap > LABEL_DISAGREEMENT)


def apply_groups(manifest: pd.DataFrame, mode: str, cache_dir: str, local_ids: Sequence[str] | None = None,
                 progress: bool = True, source_rate: int = SOURCE_RATE) -> tuple[pd.DataFrame, DuplicateReport]:
    """The manifest with copies of the same music sharing a `group` (named by their first song id)
    and one agreed label (and spread), and the report of every group (songs matched by fingerprints
    of their decode at `source_rate`: the rate of the feature pass that cached them)."""
    manifest = manifest.reset_index(drop=True).copy()
    groups, matches, rejected, fingerprints = match_manifest_songs(manifest, mode, cache_dir, local_ids, progress,
                                                                   source_rate)
    ids = manifest["song_id"].astype(str).tolist()
    report = DuplicateReport(
        matched_by="known id maps only (--match_audio no): audio not checked" if mode == "no"
        else "Chromaprint fingerprints, bit error rate at the best alignment",
        bit_error_threshold=BIT_ERROR_THRESHOLD, label_rule=LABEL_RULE,
        label_disagreement_threshold=LABEL_DISAGREEMENT,
        fingerprint_cache=fingerprints.cache_dir if fingerprints else "")
    if fingerprints is not None:
        report.clips_without_fingerprint = [{"song_id": ids[i], "reason": r} for i, r in fingerprints.errors.items()]
        report.id_map_pairs_rejected_by_audio = [
            {"a": ids[m.a], "b": ids[m.b], "bit_error": m.bit_error} for m in rejected]
    by_row = defaultdict(list)
    for m in matches:
        by_row[m.a].append(m)
    for rows in groups:
        name = min(ids[i] for i in rows)
        members = [Member(str(manifest.at[i, "dataset"]), ids[i], str(manifest.at[i, "path"]),
                          float(manifest.at[i, "valence"]), float(manifest.at[i, "arousal"])) for i in rows]
        decision = reconcile(members)
        found = [{"a": ids[m.a], "b": ids[m.b], "bit_error": m.bit_error,
                  "offset_seconds": round(m.offset * FRAME_SECONDS, 2), "found_by": m.found_by}
                 for i in rows for m in by_row[i]]
        manifest.loc[rows, "group"] = name
        manifest.loc[rows, "valence"] = decision.valence
        manifest.loc[rows, "arousal"] = decision.arousal
        for column in ("valence_std", "arousal_std"):
            spread = manifest.loc[rows, column].astype(float)
            if spread.notna().any():
                manifest.loc[rows, column] = float(np.sqrt(np.nanmean(spread.to_numpy() ** 2)))
        report.groups.append(DuplicateGroup(name, members, found, decision))
        if decision.disagree:
            logger.warning("song group %s: copies' labels differ by %.3f (> %.2f on [-1, 1]); trained on their mean "
                           "(details in data_report.json)", name, decision.max_difference, LABEL_DISAGREEMENT)
    return manifest, report


def copy_shifts(group: DuplicateGroup, anchor: str) -> dict[str, float]:
    """Seconds to add to each copy's times to put them on `anchor`'s timeline: its audio offsets,
    followed from match to match (a found match says b's time t is a's time t + offset_seconds)."""
    shift = {anchor: 0.0}
    pending = [m for m in group.matches if np.isfinite(float(m.get("offset_seconds", 0.0)))]
    while pending:
        left = []
        for m in pending:
            if m["a"] in shift and m["b"] not in shift:
                shift[m["b"]] = shift[m["a"]] + float(m["offset_seconds"])
            elif m["b"] in shift and m["a"] not in shift:
                shift[m["a"]] = shift[m["b"]] - float(m["offset_seconds"])
            elif not (m["a"] in shift and m["b"] in shift):
                left.append(m)
        if len(left) == len(pending):
            break
        pending = left
    for member in group.members:
        shift.setdefault(member.song_id, 0.0)
    # the labels' own grid: a frame moves by whole half-seconds
    return {k: round(v / LABEL_FRAME_SECONDS) * LABEL_FRAME_SECONDS for k, v in shift.items()}


def reconcile_curves(curves: dict[str, Curve], shifts: dict[str, float]) -> tuple[Curve, CurveDecision]:
    """One curve from the copies' (song id -> curve): at each half-second (after each copy's shift),
    the mean of the copies' values there; the largest gap between two copies is reported."""
    by_step: dict[int, list[np.ndarray]] = defaultdict(list)
    for song, curve in curves.items():
        steps = np.round((np.asarray(curve.times, np.float64) + shifts.get(song, 0.0)) / LABEL_FRAME_SECONDS)
        for step, value in zip(steps.astype(np.int64).tolist(), np.asarray(curve.values, np.float64)):
            if np.isfinite(value).all():
                by_step[step].append(value)
    steps = sorted(by_step)
    values = np.array([np.mean(by_step[k], axis=0) for k in steps], np.float32).reshape(-1, 2)
    gaps = [float((np.max(by_step[k], axis=0) - np.min(by_step[k], axis=0)).max()) for k in steps if len(by_step[k]) > 1]
    gap = max(gaps, default=0.0)
    decision = CurveDecision(CURVE_RULE, sorted(curves), {k: shifts.get(k, 0.0) for k in sorted(curves)}, len(steps),
                             len(gaps), round(gap, 6), gap > LABEL_DISAGREEMENT)
    return Curve(np.asarray(steps, np.float64) * LABEL_FRAME_SECONDS, values), decision


def merge_copies(manifest: pd.DataFrame, report: DuplicateReport,
                 curves: dict[str, Curve]) -> tuple[pd.DataFrame, dict[str, Curve]]:
    """Every group as ONE manifest row (its first song id, in the manifest's order of ids, that is
    still in the manifest), with the group's agreed label (set by apply_groups) and agreed curve; the
    other copies leave the manifest and `curves`. Each group's `trained_as` and `curve` say what was done."""
    present = set(manifest["song_id"].astype(str))
    drop: set[str] = set()
    curves = dict(curves)
    for group in report.groups:
        here = sorted(m.song_id for m in group.members if m.song_id in present)
        if not here:
            continue  # every copy left out (e.g. not in any split list)
        group.trained_as, group.merged = here[0], here[1:]
        copies = {s: curves[s] for s in (m.song_id for m in group.members) if s in curves}
        if copies:
            curve, group.curve = reconcile_curves(copies, copy_shifts(group, group.trained_as))
            for song in copies:
                curves.pop(song)
            curves[group.trained_as] = curve
        drop.update(here[1:])
    kept = manifest[~manifest["song_id"].astype(str).isin(drop)].reset_index(drop=True)
    return kept, curves


def matching_available() -> bool:
    return chromaprint_problem() is None


# ----------------------------------------------------------------------------- another dataset, a trained run
SEEN_SPLITS = ("train", "validation")  # fitted on, and used to pick the checkpoint and calibrate


@dataclass
class SeenInTraining:
    """Songs of another dataset that a run saw in training (eval_report.json's `left_out_seen_in_training`)."""

    matched_by: str
    run_songs_checked: int
    songs_checked: int
    left_out: list[dict] = field(default_factory=list)  # song_id, path, run_song_id, run_split, bit_error

    def to_dict(self) -> dict:
        return {**asdict(self), "count": len(self.left_out)}


def _local_id(song_id: str, dataset: str) -> str:
    """A song's id in its own dataset: `deam:2` -> `2` in a multi-dataset manifest."""
    prefix = f"{dataset}:"
    return song_id[len(prefix):] if dataset and song_id.startswith(prefix) else song_id


def songs_seen_in_training(run_manifest: pd.DataFrame, other: pd.DataFrame, mode: str, cache_dir: str,
                           progress: bool = True) -> SeenInTraining:
    """Which rows of `other` are copies of a song the run trained on (its train and validation
    splits): by audio (mode yes, or auto with Chromaprint installed), else by the same file or a
    known id map (mode no, or auto without Chromaprint: then the report says the audio was not checked)."""
    seen = run_manifest[run_manifest["split"].isin(SEEN_SPLITS)].reset_index(drop=True)
    other = other.reset_index(drop=True)
    both = pd.concat([seen, other], ignore_index=True)
    datasets = both["dataset"].fillna("").astype(str).tolist() if "dataset" in both else [""] * len(both)
    local = [_local_id(s, d) for s, d in zip(both["song_id"].astype(str), datasets)]
    n = len(seen)
    hinted = [(a, b) for a, b in known_pairs(datasets, local) if a < n <= b]
    ids, paths = both["song_id"].astype(str).tolist(), both["path"].astype(str).tolist()
    by_path: dict[str, int] = {}
    for i in range(n):
        by_path.setdefault(paths[i], i)
    found: dict[int, tuple[int, float]] = {}
    if mode == "yes" or (mode == "auto" and matching_available()):
        matched_by = "Chromaprint fingerprints, bit error rate at the best alignment"
        fingerprints = corpus_fingerprints(paths, cache_dir, progress=progress)
        matches, _ = find_matches(fingerprints, hinted)
        for m in matches:
            if m.a < n <= m.b and (m.b not in found or m.bit_error < found[m.b][1]):
                found[m.b] = (m.a, m.bit_error)
    else:
        matched_by = ("same audio file or a known id map (audio not checked: "
                      + ("--match_audio no)" if mode == "no" else f"{chromaprint_problem()})"))
        for a, b in hinted:
            found.setdefault(b, (a, float("nan")))
    for b in range(n, len(both)):  # the very same file is always a copy
        if b not in found and paths[b] in by_path:
            found[b] = (by_path[paths[b]], 0.0)
    left_out = [{"song_id": ids[b], "path": paths[b], "run_song_id": ids[a], "run_split": str(seen.at[a, "split"]),
                 "bit_error": error} for b, (a, error) in sorted(found.items())]
    return SeenInTraining(matched_by, n, len(other), left_out)
