"""Validate a dataset into manifest.csv + data_report.json, and optionally cache its features.

    python prepare.py --demo --output_dir runs/demo-data
    python prepare.py --data /path/to/DEAM --output_dir runs/deam --split_files ../shared/data/deam
    python prepare.py --data labels.csv --label_scale 1-9 --output_dir runs/mydata --features ast,vit
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from sentio.args import DataArguments
from sentio.cli import run_cli
from sentio.data.sources import prepare_manifest

logger = logging.getLogger("prepare")


@dataclass
class PrepareArguments:
    output_dir: str = field(metadata={"help": "Where manifest.csv and data_report.json are written."})
    features: str = field(
        default="", metadata={"help": "Comma-separated backbones whose features to compute and cache now: ast,wav2vec2,vit."}
    )


def main() -> int:
    parser = HfArgumentParser((DataArguments, PrepareArguments))
    data_args, prep_args = parser.parse_args_into_dataclasses()
    manifest, report = prepare_manifest(data_args, prep_args.output_dir)
    print(f"manifest: {prep_args.output_dir}/manifest.csv  rows kept {report['rows_kept']}, "
          f"skipped {report['rows_skipped']}, splits {json.dumps(report['splits'])}")
    for name in [n.strip() for n in prep_args.features.split(",") if n.strip()]:
        from sentio.data.feature_cache import build_feature_dataset
        from sentio.data.feature_extractor import SentioFeatureExtractor

        extractor = SentioFeatureExtractor.for_kind(name)
        dataset, feat_report = build_feature_dataset(
            manifest, extractor, data_args.cache_dir, num_proc=data_args.preprocessing_num_workers
        )
        print(f"features {name}: {len(dataset)} windows from {feat_report.get('clips_ok', '?')} clips, "
              f"{len(feat_report.get('failed', []))} clips failed to decode")
    return 0


if __name__ == "__main__":
    run_cli(main, "prepare.py")
