import numpy as np
import pytest

from sentio.data.labels import from_unit, to_unit
from sentio.data.splits import normalise_split_name, read_split_files, seeded_split


def test_scales_map_onto_unit_interval():
    assert to_unit([1, 5, 9, 3], "1-9").tolist() == [-1.0, 0.0, 1.0, -0.5]
    assert to_unit([0, 0.5, 1], "0-1").tolist() == [-1.0, 0.0, 1.0]
    assert to_unit([-1, 0.25], "-1-1").tolist() == [-1.0, 0.25]
    assert np.allclose(from_unit(to_unit([2.5, 7.1], "1-9")), [2.5, 7.1])
    with pytest.raises(ValueError, match="unknown label scale"):
        to_unit([1], "1-5")


def test_seeded_split_is_deterministic_disjoint_and_order_free():
    ids = [str(i) for i in range(100)]
    a = seeded_split(ids, seed=3)
    assert a == seeded_split(list(reversed(ids)), seed=3)
    assert a != seeded_split(ids, seed=4)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "validation", "test")}
    assert counts == {"train": 80, "validation": 10, "test": 10}
    tiny = seeded_split(["a", "b", "c"], seed=0)
    assert sorted(tiny.values()) == ["test", "train", "validation"]
    with pytest.raises(ValueError, match="summing to 1"):
        seeded_split(ids, fractions=(0.5, 0.1, 0.1))


def test_split_files_folder_and_explicit(tmp_path):
    (tmp_path / "x_train.txt").write_text("1\n2\n\n")
    (tmp_path / "x_validation.txt").write_text("3\n")
    (tmp_path / "x_test.txt").write_text("4\n")
    assert read_split_files(tmp_path) == {"1": "train", "2": "train", "3": "validation", "4": "test"}
    spec = f"train={tmp_path / 'x_train.txt'},val={tmp_path / 'x_test.txt'}"
    assert read_split_files(spec) == {"1": "train", "2": "train", "4": "validation"}
    (tmp_path / "x_test.txt").write_text("1\n")
    with pytest.raises(ValueError, match=r"x_t\w+\.txt:1: id 1 is also in the (train|test) list"):
        read_split_files(tmp_path)
    assert normalise_split_name(" Dev ") == "validation" and normalise_split_name("holdout") is None


def test_quadrants():
    from sentio.data.labels import quadrant

    assert quadrant([0.5, -0.5, -0.1, 0.2, 0.0], [0.3, 0.3, -0.4, -0.9, 0.0]).tolist() == ["happy", "tense", "sad", "calm", "happy"]


def test_spreads_scale_with_the_width_of_the_scale():
    from sentio.data.labels import std_to_unit

    assert std_to_unit([0.94, 2.0, 0.0], "1-9").tolist() == [0.235, 0.5, 0.0]  # std / 4
    assert std_to_unit([0.3], "-1-1").tolist() == [0.3] and std_to_unit([0.25], "0-1").tolist() == [0.5]


def test_bad_scale_and_split_settings_are_argument_errors(tmp_path):
    from sentio.errors import ArgumentError, DataError

    with pytest.raises(ArgumentError, match=r"unknown label scale '1-5'; choose one of 1-9, -1-1, 0-1"):
        to_unit([1], "1-5")
    with pytest.raises(ArgumentError, match="set --split_fractions like 0.8,0.1,0.1"):
        seeded_split(["a"], fractions=(0.5, 0.5))
    with pytest.raises(ArgumentError, match=r"--split_files: .*nope.txt not found; check the path"):
        read_split_files(f"train={tmp_path / 'nope.txt'}")
    (tmp_path / "train.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ArgumentError, match=r"train.txt is not a text file; give one id per line"):
        read_split_files(tmp_path)
    (tmp_path / "train.txt").write_text("1\n")
    (tmp_path / "test.txt").write_text("1\n")
    with pytest.raises(DataError, match=r"(train|test).txt:1: id 1 is also in the (test|train) list; "
                                        r"keep each song in one list$"):
        read_split_files(tmp_path)
