"""From what the user points at (DEAM or EmoMusic folder, label CSV, manifest, --demo) to a validated manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import ArgumentError, MissingFileError
from .csv_table import read_csv_file, read_label_csv
from .deam import DEAM_SCALE, DeamReader
from .dynamic import DynamicTable, read_long_dynamic
from .duplicates import MATCH_MODES, DuplicateReport, apply_groups, merge_copies
from .fingerprint import SOURCE_RATE, fingerprint_rate, require_chromaprint
from .manifest import (
    REQUIRED_COLUMNS,
    ManifestError,
    ManifestReport,
    SplitSpec,
    build_manifest,
    check_rows,
    finish_manifest,
    read_curves,
    read_manifest,
    with_curves,
    write_manifest,
)
from .protocols import BenchmarkProtocol, get_protocol
from .readers import READERS, open_reader

logger = logging.getLogger(__name__)
DEMO_MARKER = "demo.json"  # sentio.demo.corpus.MARKER (not imported: data/ does not import the demo package)


@dataclass
class DataSourceSpec:
    """Where the clips and labels come from and how they are split (the data flags of every script)."""

    data: str | None = field(
        default=None,
        metadata={"help": "A DEAM, EmoMusic or PMEmo folder, a label CSV (path, valence, arousal), or a manifest.csv from "
                  "prepare.py; several datasets at once: --data DEAM_DIR EMOMUSIC_DIR (the same music in two is "
                  "found by its audio and becomes one song group: one split, one label).", "nargs": "+"},
    )
    demo: bool = field(default=False, metadata={"help": "Use the built-in demo corpus (generated once under data/demo); "
                                                  "with --data, the demo corpus is one more source."})
    demo_dir: str = field(default="data/demo", metadata={"help": "Where the demo corpus is generated."})
    demo_num_clips: int = field(default=300, metadata={"help": "Size of the demo corpus."})
    demo_seed: int = field(default=0, metadata={"help": "Seed of the demo corpus."})
    demo_variant: int = field(
        default=0, metadata={"help": "0: the demo corpus; 1: a domain-shifted one (other timbres and tempo range, "
                             "raters with a bias), for cross-dataset benchmarks."})
    label_scale: str | None = field(
        default=None, metadata={"help": "Scale of the CSV's labels: 1-9, -1-1 or 0-1 (DEAM and the demo are 1-9)."}
    )
    path_column: str = field(default="path", metadata={"help": "CSV column with the audio path (relative to the CSV)."})
    valence_column: str = field(default="valence", metadata={"help": "CSV column with valence."})
    arousal_column: str = field(default="arousal", metadata={"help": "CSV column with arousal."})
    valence_std_column: str | None = field(
        default=None,
        metadata={"help": "CSV column with the raters' standard deviation of valence, on the labels' scale (default: none)."},
    )
    arousal_std_column: str | None = field(
        default=None,
        metadata={"help": "CSV column with the raters' standard deviation of arousal, on the labels' scale (default: none)."},
    )
    id_column: str | None = field(default=None, metadata={"help": "CSV column with a song id (default: the path)."})
    split_column: str = field(default="split", metadata={"help": "CSV column with train/validation/test, if present."})
    split_files: str | None = field(
        default=None,
        metadata={"help": "Id lists: a folder with *train*.txt, *val*.txt, *test*.txt, or train=A,validation=B,test=C."},
    )
    dynamic_labels: str | None = field(
        default=None,
        metadata={"help": "CSV of dynamic (2 Hz) labels with columns song_id or path (relative to the CSV), time (s), "
                  "valence, arousal; replaces a DEAM/EmoMusic folder's own dynamic annotations."},
    )
    dynamic_label_scale: str = field(default="-1-1", metadata={"help": "Scale of --dynamic_labels' values: -1-1, 1-9 or 0-1."})
    deam_swapped_subsets: str = field(
        default="auto",
        metadata={"help": "DEAM subsets whose static valence/arousal columns are exchanged: auto (those the "
                  "folder's dynamic annotations contradict; nothing without them), none, or e.g. 2013."},
    )
    protocol: str | None = field(
        default=None,
        metadata={"help": "A benchmark protocol that fixes split, labels, windows and headline metric: marble-emo "
                  "(EmoMusic), mediaeval-2015 (DEAM) or music2emo (DEAM, EmoMusic, PMEmo); see README, Benchmarks."})
    keep_published_leakage: bool = field(
        default=False,
        metadata={"help": "--protocol music2emo: keep the published lists as they are, test songs of one dataset in "
                  "another's train/validation list included (to reproduce the paper; the report counts them)."})
    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hugging Face dataset: a Hub id (from the local cache when offline) or a "
                                "folder written by save_to_disk."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hugging Face dataset's config."})
    audio_column_name: str = field(
        default="audio", metadata={"help": "--dataset_name: the column with the audio (an Audio column or file paths)."})
    valence_column_name: str = field(default="valence", metadata={"help": "--dataset_name: the valence column."})
    arousal_column_name: str = field(default="arousal", metadata={"help": "--dataset_name: the arousal column."})
    split_seed: int = field(default=42, metadata={"help": "Seed of the song-level split."})
    split_fractions: str = field(default="0.8,0.1,0.1", metadata={"help": "Train,validation,test fractions."})
    strict: bool = field(default=False, metadata={"help": "Fail on the first bad row instead of skipping and reporting it."})
    match_audio: str = field(
        default="auto",
        metadata={"help": "Find copies of the same music by their audio (Chromaprint): auto (with several --data "
                  "sources; needs Chromaprint), yes (also within one source), no (trust song ids and known id maps "
                  "only, e.g. DEAM ids <= 1000 = EmoMusic).", "choices": list(MATCH_MODES)},
    )

    def __post_init__(self) -> None:
        if isinstance(self.data, (list, tuple)):  # --data A [B ...]: one source stays a plain string
            self.data = self.data[0] if len(self.data) == 1 else list(self.data)
        if self.match_audio not in MATCH_MODES:
            raise ArgumentError(f"--match_audio must be one of {', '.join(MATCH_MODES)}, got {self.match_audio!r}")

    def data_sources(self) -> list[str]:
        """The --data sources given (none for --demo alone)."""
        if not self.data:
            return []
        return [self.data] if isinstance(self.data, str) else list(self.data)

    def fractions(self) -> tuple[float, float, float]:
        """The train, validation, test fractions of --split_fractions."""
        try:
            parts = tuple(float(x) for x in self.split_fractions.split(","))
        except ValueError:
            parts = ()
        if len(parts) != 3:
            raise ArgumentError(f"--split_fractions must be three numbers like 0.8,0.1,0.1, got {self.split_fractions!r}")
        return parts  # type: ignore[return-value]


@dataclass
class Source:
    """A source as read: its rows, their label scale, a description, checks for the report, and its 2 Hz annotations."""

    table: pd.DataFrame
    label_scale: str
    description: str
    checks: dict = field(default_factory=dict)
    dynamic: DynamicTable | None = None
    dataset: str = ""  # the reader's name: deam, emomusic, pmemo, csv, demo, hf


def _is_manifest(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    return set(REQUIRED_COLUMNS) <= set(read_csv_file(path, nrows=0).columns)


def source_kind(spec: DataSourceSpec) -> tuple[str, str]:
    """(dataset name, description) of what the flags point at, without reading it (a protocol checks it first)."""
    if spec.demo:
        return "demo", f"demo corpus at {spec.demo_dir}"
    if spec.dataset_name:
        return "hf", f"Hugging Face dataset {spec.dataset_name}"
    path = Path(spec.data or "")
    if spec.data and path.is_dir():
        reader = next((r for r in READERS if r.detects(path)), None)
        if reader is not None:
            return reader.name, f"{reader.title} folder {path}"
    return "csv", f"CSV {path}"


def load_source(spec: DataSourceSpec) -> Source:
    """The raw source: its table, label scale, description, checks and dynamic annotations.
    Raises one line (a SentioError) for a source that cannot be read."""
    if spec.demo:
        from ..demo.corpus import ensure_demo

        root = ensure_demo(spec.demo_dir, num_clips=spec.demo_num_clips, seed=spec.demo_seed, variant=spec.demo_variant)
        reader = DeamReader(root)
        return Source(reader.read_static(), DEAM_SCALE, f"demo corpus at {root}", dynamic=reader.dynamic,
                      dataset="demo")
    if spec.dataset_name:
        from .hf_dataset import read_hf_dataset

        table, description = read_hf_dataset(spec)
        return Source(table, spec.label_scale or "", description, dataset="hf")
    if not spec.data:
        raise ManifestError("no data given: pass --data DEAM_DIR|EMOMUSIC_DIR|PMEMO_DIR|CSV, --dataset_name or --demo")
    if len(spec.data_sources()) > 1:
        raise ManifestError("several --data sources are read one by one: see prepare_manifest")
    path = Path(spec.data)
    if path.is_dir():
        if (path / DEMO_MARKER).is_file():  # a demo corpus given as --data: DEAM's layout, its own dataset name
            reader = DeamReader(path)
            return Source(reader.read_static(), DEAM_SCALE, f"demo corpus at {path}", dynamic=reader.dynamic,
                          dataset="demo")
        reader = open_reader(path)
        table, checks = reader.read(spec)
        return Source(table, reader.label_scale, f"{reader.title} folder {path}", checks, reader.dynamic,
                      dataset=reader.name)
    if not path.is_file():
        raise ManifestError(f"{path}: no such file or folder; pass --data DEAM_DIR|EMOMUSIC_DIR|PMEMO_DIR|CSV|manifest.csv")
    if not spec.label_scale:
        raise ManifestError(f"{path}: say the scale of the CSV's labels with --label_scale 1-9|-1-1|0-1")
    table = read_label_csv(path, spec.path_column, spec.valence_column, spec.arousal_column, spec.id_column,
                           spec.split_column, spec.valence_std_column, spec.arousal_std_column)
    return Source(table, spec.label_scale, f"CSV {path}", dataset="csv")


def check_manifest_protocol(manifest: pd.DataFrame, name: str, path: Path) -> None:
    """A manifest used with --protocol must have been prepared with that protocol (its `protocol` column)."""
    recorded = set(manifest["protocol"].fillna("").astype(str)) if "protocol" in manifest else {""}
    if recorded != {name}:
        have = ", ".join(sorted(r for r in recorded if r)) or "no protocol"
        raise ArgumentError(f"{path}: prepared with {have}, not --protocol {name}; prepare the dataset again with "
                            f"--protocol {name} (or pass the dataset folder)")


def _local_name(dataset: str, taken: set[str]) -> str:
    """The dataset's name as a song-id prefix, numbered when two sources are of one kind (csv, csv-2)."""
    name, k = dataset, 1
    while name in taken:
        k += 1
        name = f"{dataset}-{k}"
    taken.add(name)
    return name


# Called with the rows (song_id, path) about to be matched by their audio, before any split: a caller
# that computes features anyway runs its feature pass here with fingerprints=True, so each clip is
# decoded once for both (sentio.features.cache), and returns the rate that pass decoded at (None
# when it ran none); the matching then finds every fingerprint cached at that rate.
DecodePass = Callable[[pd.DataFrame], "int | None"]


def _run_decode_pass(decode_pass: DecodePass | None, rows: pd.DataFrame, mode: str) -> int:
    """Run the caller's feature pass, if any; the source rate the matching reads fingerprints at."""
    rate = None
    if decode_pass is not None and mode != "no":
        rate = decode_pass(rows[["song_id", "path"]].reset_index(drop=True))
    return SOURCE_RATE if rate is None else fingerprint_rate(rate)


def _several_sources(spec: DataSourceSpec, progress: bool, decode_pass: DecodePass | None = None,
                     protocol: BenchmarkProtocol | None = None,
                     ) -> tuple[pd.DataFrame, ManifestReport, dict, DuplicateReport | None]:
    """Several --data sources, each read by its own reader onto [-1, 1], song ids made unique as
    `dataset:id`, copies of the same music grouped (by audio unless --match_audio no) with one
    label, and splits assigned per group (by `protocol` where given). Returns the manifest (before
    curves and before copies are merged), the report, the curves and the groups (None when the
    copies stay apart: --keep_published_leakage)."""
    given = spec.data_sources()
    _check_several(spec, given, protocol)
    report = ManifestReport(source="several datasets: " + "; ".join((["demo corpus"] if spec.demo else []) + given),
                            label_scale="each source's own")
    rows, local_ids, curves, per_source, taken = [], [], {}, [], set()
    # --demo with --data: the demo corpus is one more source. Every layout problem before any audio work.
    sources = ([load_source(replace(spec, data=None))] if spec.demo else []) + \
        [load_source(replace(spec, demo=False, data=path)) for path in given]
    for source in sources:
        name = _local_name(source.dataset, taken)
        before = len(report.skipped)
        kept = check_rows(source.table, source.label_scale, report, spec.strict, source.dataset, progress)
        report.rows_total += len(source.table)
        for row in kept:
            local_ids.append(row["song_id"])
            row["song_id"] = row["group"] = f"{name}:{row['song_id']}"
        summary = {"source": source.description, "dataset": source.dataset, "id_prefix": f"{name}:",
                   "label_scale": source.label_scale, "rows_total": len(source.table), "rows_kept": len(kept),
                   "rows_skipped": len(report.skipped) - before, **source.checks}
        if source.dynamic is not None and kept:
            local = pd.DataFrame(kept).assign(song_id=local_ids[len(local_ids) - len(kept):])
            found, dynamic_report = source.dynamic.curves(local, strict=spec.strict)
            curves.update({f"{name}:{song}": curve for song, curve in found.items()})
            summary["dynamic"] = dynamic_report.to_dict()
        per_source.append(summary)
        rows += kept
    if not rows:
        raise ManifestError(f"{report.source}: no usable rows ({len(report.skipped)} skipped; see the reasons with --strict)")
    rate = _run_decode_pass(decode_pass, pd.DataFrame(rows), spec.match_audio)
    manifest, duplicates = apply_groups(pd.DataFrame(rows), spec.match_audio, _cache_dir(spec), local_ids, progress,
                                        source_rate=rate)
    split = SplitSpec(seed=spec.split_seed, fractions=spec.fractions(), files=spec.split_files)
    groups: DuplicateReport | None = duplicates
    if protocol is not None:
        manifest, groups = _protocol_over_groups(manifest, pd.DataFrame(rows), duplicates, protocol, spec, report)
        split = SplitSpec(use_column=True)
    manifest, report = finish_manifest(manifest, split, report, spec.strict)
    report.sources = per_source
    report.duplicates = duplicates.to_dict()
    return manifest, report, curves, groups


def _check_several(spec: DataSourceSpec, given: list[str], protocol: BenchmarkProtocol | None) -> None:
    """What makes a run over several sources impossible, said before any audio work."""
    if protocol is not None:  # every source's kind, before any audio work
        if not protocol.several_datasets:
            raise ArgumentError(f"--protocol {protocol.name} reads one {', '.join(protocol.datasets)} dataset per run; "
                                "give one --data source (--protocol music2emo takes DEAM, EmoMusic and PMEmo together)")
        for path in given:
            protocol.check_dataset(*source_kind(replace(spec, demo=False, data=path)))
        if spec.demo:
            protocol.check_dataset(*source_kind(replace(spec, data=None)))
    if spec.dynamic_labels:
        raise ArgumentError("--dynamic_labels goes with one --data source; several sources bring their own "
                            "dynamic annotations")
    if spec.match_audio != "no":
        require_chromaprint(f"a run over several datasets (--data {' '.join(given)}{' and --demo' if spec.demo else ''})")
    for path in given:
        if Path(path).is_file() and _is_manifest(Path(path)):
            raise ArgumentError(f"{path}: a manifest.csv cannot be one of several --data sources; pass the datasets it came from")


def _protocol_over_groups(manifest: pd.DataFrame, as_read: pd.DataFrame, duplicates: DuplicateReport,
                          protocol: BenchmarkProtocol, spec: DataSourceSpec,
                          report: ManifestReport) -> tuple[pd.DataFrame, DuplicateReport | None]:
    """A several-dataset protocol's splits over the grouped rows (its skipped rows go to the report).
    With --keep_published_leakage the copies stay apart, as published: each keeps its own list's split
    and its own label (the paper's condition); no groups are merged."""
    keep = bool(getattr(spec, "keep_published_leakage", False))
    if keep:
        manifest = manifest.assign(group=manifest["song_id"], valence=as_read["valence"].to_numpy(),
                                   arousal=as_read["arousal"].to_numpy())
        for column in ("valence_std", "arousal_std"):
            if column in as_read:
                manifest[column] = as_read[column].to_numpy()
    assignment = protocol.assign(manifest, "", spec)
    table = assignment.table
    reasons = table["skip_reason"].fillna("").astype(str)
    for _, row in table[reasons != ""].iterrows():
        report.skip(row, row["skip_reason"], spec.strict)
    report.protocol = {**protocol.describe(), **assignment.report}
    return table[reasons == ""].drop(columns="skip_reason").reset_index(drop=True), None if keep else duplicates


def _one_source_grouped(source: Source, split: SplitSpec, spec: DataSourceSpec, progress: bool,
                        decode_pass: DecodePass | None = None) -> tuple[pd.DataFrame, ManifestReport, DuplicateReport]:
    """One source whose copies of the same music (found by audio) become groups before the split."""
    report = ManifestReport(source=source.description, label_scale=source.label_scale, rows_total=len(source.table))
    kept = check_rows(source.table, source.label_scale, report, spec.strict, source.dataset, progress)
    if not kept:
        raise ManifestError(f"{source.description}: no usable rows ({len(report.skipped)} skipped; see the reasons with --strict)")
    rate = _run_decode_pass(decode_pass, pd.DataFrame(kept), "yes")
    manifest, duplicates = apply_groups(pd.DataFrame(kept), "yes", _cache_dir(spec), progress=progress, source_rate=rate)
    manifest, report = finish_manifest(manifest, split, report, spec.strict)
    report.duplicates = duplicates.to_dict()
    return manifest, report, duplicates


def _cache_dir(spec: DataSourceSpec) -> str:
    """Where fingerprints are cached: beside the features (DataArguments.cache_dir)."""
    return getattr(spec, "cache_dir", None) or "data/cache"


def prepare_manifest(spec: DataSourceSpec, output_dir: str | Path | None = None, progress: bool = True,
                     decode_pass: DecodePass | None = None) -> tuple[pd.DataFrame, ManifestReport]:
    """Build (or reuse, for a manifest.csv) the manifest and attach each song's dynamic curve where
    the source has one; write manifest.csv, data_report.json and curves.csv into output_dir.
    `decode_pass` (see DecodePass): run on the rows before songs are matched by their audio, when
    they are (several sources, or --match_audio yes)."""
    several = len(spec.data_sources()) + bool(spec.demo) > 1
    given = Path(spec.data) if spec.data and not spec.demo and not several else None
    dynamic, curves = None, {}
    protocol = _checked_protocol(spec)
    groups: DuplicateReport | None = None  # copies found: merged into one row each once the curves are read
    finish_protocol = None
    if several:
        manifest, report, curves, groups = _several_sources(spec, progress, decode_pass, protocol)
        if protocol is not None:
            finish_protocol, protocol_report = protocol, report.protocol
    elif given is not None and given.is_file() and _is_manifest(given):
        manifest, curves = read_manifest(given), read_curves(given)
        report = ManifestReport.of_manifest(f"manifest {given}", manifest)
        if protocol is not None:
            check_manifest_protocol(manifest, protocol.name, given)
            report.protocol = {**protocol.describe(), **protocol.finish(manifest)}
    else:
        if protocol is not None and (spec.demo or spec.dataset_name or Path(spec.data or "").exists()):
            protocol.check_dataset(*source_kind(spec))  # before reading (the demo would be generated first)
        source = load_source(spec)
        table, protocol_report = source.table, {}
        if protocol is not None:
            protocol.check_dataset(source.dataset, source.description)
            assignment = protocol.assign(table, source.dataset, spec)
            table, protocol_report = assignment.table, assignment.report
        split = SplitSpec(seed=spec.split_seed, fractions=spec.fractions(), files=spec.split_files)
        if spec.match_audio == "yes":  # copies within one source: grouped before the split
            require_chromaprint("--match_audio yes")
            manifest, report, groups = _one_source_grouped(replace(source, table=table), split, spec, progress,
                                                           decode_pass)
        else:
            manifest, report = build_manifest(table, source.label_scale, split, strict=spec.strict,
                                              source=source.description, progress=progress, dataset=source.dataset)
        report.checks = source.checks
        report.dataset = source.dataset
        if protocol is not None:
            finish_protocol = protocol
            protocol_report = {**protocol.describe(), **protocol_report}
        dynamic = source.dynamic
    if spec.dynamic_labels:
        dynamic = read_long_dynamic(spec.dynamic_labels, spec.dynamic_label_scale)
    if dynamic is not None:
        curves, report.dynamic = dynamic.curves(manifest, strict=spec.strict)
    if groups is not None:  # each group trains as one row, with one label and one curve
        manifest, curves = _merge_groups(manifest, groups, curves, report)
    if finish_protocol is not None:  # on the rows that train and test (z-score statistics)
        report.protocol = {**protocol_report, **finish_protocol.finish(manifest)}
        manifest["protocol"] = finish_protocol.name
    manifest = with_curves(manifest, curves)
    _warn_skipped(report)
    if output_dir is not None:
        write_manifest(manifest, report, output_dir, curves)
    return manifest, report


def _checked_protocol(spec: DataSourceSpec) -> BenchmarkProtocol | None:
    """--protocol's protocol (None without one), its flags checked against the others."""
    protocol = get_protocol(spec.protocol) if spec.protocol else None
    if spec.keep_published_leakage and (protocol is None or not protocol.leakage_option):
        raise ArgumentError("--keep_published_leakage belongs to --protocol music2emo (it keeps its published lists "
                            "as they are); drop it or add --protocol music2emo")
    if protocol is not None and spec.split_files:
        raise ArgumentError(f"--protocol {protocol.name} fixes the split itself; drop --split_files")
    return protocol


def _merge_groups(manifest: pd.DataFrame, groups: DuplicateReport, curves: dict,
                  report: ManifestReport) -> tuple[pd.DataFrame, dict]:
    """Each group of copies as one row (merge_copies), the report's counts following."""
    manifest, curves = merge_copies(manifest, groups, curves)
    report.duplicates = groups.to_dict()
    report.splits = {name: int((manifest["split"] == name).sum()) for name in report.splits}
    report.rows_kept = len(manifest)
    return manifest, curves


def _warn_skipped(report: ManifestReport) -> None:
    if report.rows_skipped:
        logger.warning("skipped %d of %d rows (reasons in data_report.json): %s", report.rows_skipped,
                       report.rows_total, report.skipped_by_reason)
    if report.dynamic is not None and report.dynamic.frames_skipped:
        logger.warning("skipped %d dynamic label frames (reasons in data_report.json): %s",
                       report.dynamic.frames_skipped, report.dynamic.frames_skipped_by_reason)


def load_manifest(model_dir: str, data_args: DataSourceSpec, output_dir: str) -> tuple[pd.DataFrame, str, Path]:
    """The run's own manifest.csv (same splits as training) unless --data/--demo names another source;
    also a description and the folder holding the manifest (and its curves.csv)."""
    if data_args.data or data_args.demo or data_args.dataset_name:
        manifest, report = prepare_manifest(data_args, output_dir)
        return manifest, report.source, Path(output_dir)
    path = Path(model_dir) / "manifest.csv"
    if not path.is_file():
        raise MissingFileError(f"{model_dir}: no manifest.csv in the run; pass --data DEAM_DIR|CSV or --demo")
    return read_manifest(path), f"manifest {path}", Path(model_dir)
