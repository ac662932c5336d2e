"""bench/augmentation_curve.py --smoke end to end on a tiny corpus: cells, table, figure, nested
fractions, and a rerun after an interruption that redoes only the lost cell."""

from __future__ import annotations

import json

import pytest

from tests.gan.helpers import labelled_clips
from tests.helpers import run_python

pytestmark = pytest.mark.slow  # a whole study as a child process


def test_smoke_study_writes_table_and_figure_and_resumes(tmp_path):
    out = tmp_path / "curve"
    data = labelled_clips(tmp_path, seconds=6.0)  # two full 2.56 s windows of the compact AST per clip
    argv = ["bench/augmentation_curve.py", "--smoke", "--data", str(data), "--label_scale=-1-1",
            "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(out), "--bootstrap", "200"]
    result = run_python(argv)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    # 2 fractions x 4 arms x 2 seeds, every cell the same steps, the same real test songs
    assert sorted({(r["fraction"], r["arm"]) for r in rows}) == sorted(
        (f, a) for f in (0.5, 1.0) for a in ("real", "classic", "gan_0.5", "gan_1"))
    assert len(rows) == 16 and {r["steps"] for r in rows} == {2} and {r["seed"] for r in rows} == {0, 1}
    assert len({tuple(r["test_songs"]) for r in rows}) == 1 and len(rows[0]["test_songs"]) == 2
    assert {(r["fraction"], r["arm"], r["synthetic_rows"]) for r in rows if r["arm"].startswith("gan")} == {
        (0.5, "gan_0.5", 2), (0.5, "gan_1", 4), (1.0, "gan_0.5", 4), (1.0, "gan_1", 8)}

    # nested fractions; the GAN of a fraction learned from that fraction's songs only
    half, full = ((out / f / "songs.txt").read_text().split() for f in ("f050", "f100"))
    assert len(half) == 4 and len(full) == 8 and set(half) < set(full)
    assert json.loads((out / "f050" / "gan" / "gan_report.json").read_text())["train_songs"] == 4

    table = (out / "curve.md").read_text()
    assert table.count("| gan_1 |") == 2 and "Δ vs real" in table and "FD (real vs real)" in table
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "curve.json").read_text())
    assert len(summary["cells"]) == 8 and summary["wall_seconds_this_run"] > 0
    assert "wall time" in result.stdout

    # An interruption: the last cell lost, its line cut mid-write. The rerun redoes that cell only.
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    result = run_python(argv)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "15 finished cells found" in result.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[:-2]]
    again = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert (again["fraction"], again["arm"], again["seed"]) == (1.0, "gan_1", 1) and len(rows) == 15
