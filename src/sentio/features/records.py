"""What a run records about its features: where they are cached, so a later evaluation of the run,
from any working directory, finds and reuses them (a `feature_cache` entry in data_report.json)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentio.features.cache import FeatureReport


def record_feature_cache(run_dir: str | os.PathLike, report: FeatureReport) -> None:
    """Note in the run's data_report.json where its features are cached (absolute), so a later
    evaluation of the run, from any working directory, finds and reuses them."""
    path = os.path.join(os.fspath(run_dir), "data_report.json")
    data = json.loads(open(path).read()) if os.path.isfile(path) else {}
    data["feature_cache"] = os.path.abspath(os.path.dirname(report.cache_dir))
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def recorded_feature_cache(run_dir: str | os.PathLike) -> str | None:
    """The feature cache folder a run recorded (see record_feature_cache), when it still exists."""
    try:
        with open(os.path.join(os.fspath(run_dir), "data_report.json")) as fh:
            folder = json.load(fh).get("feature_cache")
    except (OSError, ValueError, AttributeError):
        return None
    return folder if folder and os.path.isdir(folder) else None
