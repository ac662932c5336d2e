import pytest

from tests.helpers import run_python

pytestmark = pytest.mark.slow  # download_model.py as a child process


def test_offline_download_fails_fast_with_one_line(tmp_path):
    result = run_python(["download_model.py", "ast", "--output_dir", str(tmp_path / "ast")], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "download_model.py: error: HF_HUB_OFFLINE is set: run this where there is internet, then copy the folder over"
    ]
    assert not (tmp_path / "ast").exists()
