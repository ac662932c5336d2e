"""From what the user points at (DEAM folder, label CSV, manifest, --demo) to a validated manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..args import DataArguments
from .csv_table import read_label_csv
from .deam import DEAM_SCALE, DeamReader, resolve_swapped_subsets
from .manifest import MANIFEST_COLUMNS, ManifestError, SplitSpec, build_manifest, read_manifest, write_manifest

logger = logging.getLogger(__name__)


def _is_manifest(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    header = pd.read_csv(path, nrows=0).columns
    return set(MANIFEST_COLUMNS) <= {c.strip() for c in header}


def load_source(args: DataArguments) -> tuple[pd.DataFrame, str, str, dict]:
    """The raw source table, its label scale, a description and source checks for the report.
    Raises ManifestError with one line."""
    if args.demo:
        from .demo import ensure_demo

        root = ensure_demo(args.demo_dir, num_clips=args.demo_num_clips, seed=args.demo_seed)
        return DeamReader(root).read_static(), DEAM_SCALE, f"demo corpus at {root}", {}
    if not args.data:
        raise ManifestError("no data given: pass --data DEAM_DIR|CSV or --demo")
    path = Path(args.data)
    if path.is_dir():
        reader = DeamReader(path)
        table, check = resolve_swapped_subsets(reader, reader.read_static(), args.deam_swapped_subsets)
        if check["swapped_subsets"]:
            logger.warning("DEAM subset(s) %s: static valence and arousal exchanged (--deam_swapped_subsets %s; "
                           "details in data_report.json)", ", ".join(check["swapped_subsets"]), check["mode"])
        return table, DEAM_SCALE, f"DEAM folder {path}", {"deam_label_check": check}
    if not path.is_file():
        raise ManifestError(f"{path}: no such file or folder")
    if not args.label_scale:
        raise ManifestError(f"{path}: say the scale of the CSV's labels with --label_scale 1-9|-1-1|0-1")
    table = read_label_csv(path, args.path_column, args.valence_column, args.arousal_column, args.id_column, args.split_column)
    return table, args.label_scale, f"CSV {path}", {}


def prepare_manifest(args: DataArguments, output_dir: str | Path | None = None, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Build (or reuse, for a manifest.csv) the manifest; write it and its report into output_dir."""
    if args.data and not args.demo and Path(args.data).is_file() and _is_manifest(Path(args.data)):
        manifest = read_manifest(args.data)
        report = {"source": f"manifest {args.data}", "rows_kept": len(manifest), "rows_skipped": 0, "skipped": [],
                  "splits": manifest["split"].value_counts().to_dict()}
    else:
        table, scale, description, checks = load_source(args)
        spec = SplitSpec(seed=args.split_seed, fractions=args.fractions(), files=args.split_files)
        manifest, report = build_manifest(table, scale, spec, strict=args.strict, source=description, progress=progress)
        report.update(checks)
    if report["rows_skipped"]:
        logger.warning("skipped %d of %d rows (reasons in data_report.json): %s", report["rows_skipped"],
                       report.get("rows_total", len(manifest)), report.get("skipped_by_reason"))
    if output_dir is not None:
        write_manifest(manifest, report, output_dir)
    return manifest, report
