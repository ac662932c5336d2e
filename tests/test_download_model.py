import os
import subprocess
import sys

from tests.conftest import REPO


def test_offline_download_fails_fast_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "download_model.py", "ast", "--output_dir", str(tmp_path / "ast")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "download_model.py: error: HF_HUB_OFFLINE is set: run this where there is internet, then copy the folder over"
    ]
    assert not (tmp_path / "ast").exists()
