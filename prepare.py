"""Validate a dataset into manifest.csv + data_report.json, and optionally cache its features.

    python prepare.py --demo --output_dir runs/demo-data --features ast
    python prepare.py --data /path/to/DEAM --output_dir runs/deam --split_files ../shared/data/deam
    python prepare.py --data labels.csv --label_scale 1-9 --output_dir runs/mydata --features ast,vit

With the same data and model flags as a later train.py run (--demo, --checkpoint, --max_length,
--window_seconds, --dataset_stats), the cached features are exactly the ones that run reuses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sentio.args import DataArguments, FeatureArguments
from sentio.cli import parse_dataclasses, parser_for, run_cli

logger = logging.getLogger("prepare")


@dataclass
class PrepareArguments:
    output_dir: str = field(metadata={"help": "Where manifest.csv and data_report.json are written."})
    features: str = field(
        default="", metadata={"help": "Comma-separated backbones whose features to compute and cache now, e.g. ast,vit."}
    )


def main() -> int:
    parser = parser_for((DataArguments, PrepareArguments, FeatureArguments), prog="prepare.py",
                        description="Validate a dataset into a manifest, and optionally cache its features.")
    data_args, prep_args, feature_args = parse_dataclasses(parser)
    from sentio.args import ModelArguments
    from sentio.data.sources import prepare_manifest
    from sentio.models.plan import model_plan

    # Check every backbone name and its flags before any data work.
    plans = [model_plan(ModelArguments(model=name.strip(), **vars(feature_args)), data_args.demo)
             for name in prep_args.features.split(",") if name.strip()]
    pass_rows = []  # the rows of a feature pass that ran before the manifest was final

    def decode_pass(rows):
        """Songs are about to be matched by their audio: the first backbone's features now, each clip
        fingerprinted from the same decode (see sentio.features.cache); the splits come after."""
        if not plans or feature_args.dataset_stats:  # no features asked for / statistics need the splits
            return None
        from sentio.features.cache import build_feature_dataset
        from sentio.training.setup import run_feature_extractor

        first = run_feature_extractor(plans[0], plans[0].architecture(), rows)
        build_feature_dataset(rows, first, data_args.cache_dir, num_proc=data_args.preprocessing_num_workers,
                              fingerprints=True)
        pass_rows.append(rows)
        return first.sampling_rate  # the fingerprints' source rate

    manifest, report = prepare_manifest(data_args, prep_args.output_dir, decode_pass=decode_pass)
    print(f"manifest: {prep_args.output_dir}/manifest.csv  rows kept {report.rows_kept}, "
          f"skipped {report.rows_skipped}, splits {json.dumps(report.splits)}")
    for plan in plans:
        from sentio.features.cache import build_feature_dataset
        from sentio.training.setup import run_feature_extractor

        extractor = run_feature_extractor(plan, plan.architecture(), manifest, feature_args.dataset_stats)
        dataset, feat_report = build_feature_dataset(
            manifest, extractor, data_args.cache_dir, num_proc=data_args.preprocessing_num_workers,
            pass_rows=pass_rows[0] if pass_rows and plan is plans[0] else None,
        )
        print(f"features {plan.backbone.name}: {len(dataset)} windows from {feat_report.clips_ok} clips, "
              f"{len(feat_report.failed)} clips failed to decode ({feat_report.cache_dir})")
    return 0


if __name__ == "__main__":
    run_cli(main, "prepare.py")
