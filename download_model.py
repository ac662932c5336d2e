"""Download a pretrained backbone into a plain folder, for machines without internet (e.g. Kaggle).

    python download_model.py ast --output_dir models/ast            # MIT/ast-finetuned-audioset-10-10-0.4593
    python download_model.py google/vit-base-patch16-224-in21k --output_dir models/vit --zip

Then: python train.py --model ast --checkpoint models/ast ...
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sentio.choices import WEIGHT_FILES
from sentio.cli import parse_dataclasses, parser_for, run_cli
from sentio.errors import ArgumentError, CheckpointError, first_line

logger = logging.getLogger("download_model")
NEEDED = ("config.json",)


@dataclass
class DownloadArguments:
    model: str = field(metadata={"help": "A backbone name (those of train.py --model) or any Hub id; also the first "
                                 "positional argument (download_model.py MODEL --output_dir DIR). Its --help loads no "
                                 "model code, so it names no backbones."})
    output_dir: str = field(metadata={"help": "Folder to write the checkpoint into."})
    zip: bool = field(default=False, metadata={"help": "Also write OUTPUT_DIR.zip (upload it as a Kaggle dataset)."})
    retries: int = field(default=4, metadata={"help": "Attempts on network errors, with growing pauses; files resume."})

    def __post_init__(self) -> None:
        if self.retries < 1:
            raise ArgumentError(f"--retries must be >= 1, got {self.retries}")


def main() -> int:
    # a positional model name, as in the usage line
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        argv = ["--model", argv[0], *argv[1:]]
    parser = parser_for([DownloadArguments], prog="download_model.py",
                        description="Download a pretrained backbone into a plain folder.")
    # the form that works, as the docstring writes it (argparse would show only --model MODEL)
    parser.usage = "%(prog)s MODEL --output_dir DIR [--zip] [--retries N]   (MODEL: a backbone name or a Hub id)"
    (args,) = parse_dataclasses(parser, argv)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise CheckpointError("HF_HUB_OFFLINE is set: run this where there is internet, then copy the folder over")
    from sentio.models.hub import download_checkpoint, probe_hub
    from sentio.models.registry import BACKBONES

    repo_id = BACKBONES[args.model].default_checkpoint if args.model in BACKBONES else args.model
    probe_hub(repo_id)  # no network: one line within seconds, before any retry loop
    target = Path(args.output_dir)
    for attempt in range(1, args.retries + 1):
        try:
            download_checkpoint(repo_id, target)
            break
        except Exception as exc:  # network errors come in many types; a 404 will not heal
            text = first_line(exc)
            if attempt == args.retries or "404" in text or "401" in text:
                raise CheckpointError(f"cannot download {args.model!r}: {text}") from None
            pause = 2 ** attempt
            logger.warning("attempt %d failed (%s); retrying in %d s", attempt, text, pause)
            time.sleep(pause)
    missing = [n for n in NEEDED if not (target / n).is_file()]
    if missing or not any((target / w).is_file() for w in WEIGHT_FILES):
        raise CheckpointError(f"{target}: incomplete checkpoint (missing {missing or 'weights'})")
    if not (target / "preprocessor_config.json").is_file():
        logger.warning("%s has no preprocessor_config.json; Sentio computes its own features, so training still works", target)
    print(f"checkpoint ready: {target}  (use --checkpoint {target})")
    if args.zip:
        archive = shutil.make_archive(str(target), "zip", root_dir=target)
        print(f"zipped: {archive}")
    return 0


if __name__ == "__main__":
    run_cli(main, "download_model.py")
