"""A library run never damages a music file and never stops on one file: tag writes killed at the
worst moment, read-only files, hung or crashing decoders, bugs of our own, a full output disk."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from sentio.features.audio import AudioError
from sentio.inference.journal import journal_path
from sentio.inference.listing import list_audio
from sentio.inference.tags import is_temp_copy, tag_values, write_tags
from tests.conftest import REPO, write_audio

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
RESULT = {"valence": 0.25, "arousal": -0.5, "quadrant": "calm"}




def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- tags ---------------------------------------------------------------------------------------

# Run in a child process: every function mutagen moves a file's bytes with kills the process with
# SIGKILL right after it returned, i.e. once the file being saved has been resized and shifted.
KILL_DURING_SAVE = """
import os, signal, sys
import mutagen, mutagen._util, mutagen.flac, mutagen.id3, mutagen.mp4, mutagen.oggvorbis
from sentio.inference.tags import write_tags

def killing(function):
    def wrapped(*args, **kwargs):
        function(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    return wrapped

movers = {name: getattr(mutagen._util, name) for name in ("resize_bytes", "insert_bytes", "delete_bytes", "resize_file")}
for module in [m for name, m in sys.modules.items() if name.startswith("mutagen")]:
    for name, function in movers.items():
        if getattr(module, name, None) is function:
            setattr(module, name, killing(function))
for path in sys.argv[1:]:
    child = os.fork()
    if child == 0:
        write_tags(path, {"valence": 0.25, "arousal": -0.5, "quadrant": "calm"})
        os._exit(0)  # not reached when mutagen moved bytes
    _, status = os.waitpid(child, 0)
    print(os.path.basename(path), os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL)
"""


def _decoded(path: Path) -> np.ndarray:
    """The file's samples as its decoder gives them (ffmpeg for M4A)."""
    if path.suffix == ".m4a":
        pcm = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-"],
                             check=True, capture_output=True, timeout=60).stdout
        return np.frombuffer(pcm, np.float32)
    return sf.read(path, dtype="float32")[0]


def _tag(path: Path, name: str) -> list[str]:
    tags = mutagen.File(path).tags
    if path.suffix == ".mp3":
        return list(tags[f"TXXX:{name}"].text)
    if path.suffix == ".m4a":
        return [bytes(v).decode() for v in tags[f"----:com.apple.iTunes:{name}"]]
    return list(tags[name])


@pytest.mark.slow
def test_a_tag_write_killed_mid_save_leaves_every_file_whole(run, tmp_path, predict_py):
    music = tmp_path / "music"
    for i, (ext, subtype) in enumerate([("mp3", None), ("ogg", "VORBIS"), ("flac", None)]):
        wave = np.random.default_rng(i).uniform(-0.3, 0.3, (44100 * 2, 2)).astype(np.float32)
        music.mkdir(exist_ok=True)
        sf.write(music / f"song.{ext}", wave, 44100, subtype=subtype)
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(music / "song.flac"), "-c:a", "aac",
                        str(music / "song.m4a")], check=True, timeout=60)
    files = sorted(music.iterdir())
    before = {p: (p.read_bytes(), _decoded(p), p.stat().st_mode) for p in files}
    os.chmod(music / "song.ogg", 0o640)  # the permission bits survive the rename
    before[music / "song.ogg"] = (*before[music / "song.ogg"][:2], (music / "song.ogg").stat().st_mode)

    killed = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, *map(str, files)], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.split() == [w for p in files for w in (p.name, "True")]  # each save was killed mid-way
    for path, (data, _, _) in before.items():
        assert path.read_bytes() == data  # the original was never touched
    strays = sorted(p.name for p in music.iterdir() if p not in before)
    assert len(strays) == len(files) and all(is_temp_copy(name) for name in strays), strays

    output = tmp_path / "tags.jsonl"
    code, err = predict_py("--model_dir", str(run), str(music), "--write_tags", "--output", str(output))
    assert code == 0, err
    assert err.count("a copy an interrupted run was writing tags into") == len(files)
    assert sorted(music.iterdir()) == files  # the copies are gone, nothing else is there
    records = {r["file"]: r for r in _records(output)}
    for path, (_, samples, mode) in before.items():
        np.testing.assert_array_equal(_decoded(path), samples)
        assert path.stat().st_mode == mode
        for name, value in tag_values(records[str(path)]).items():
            assert _tag(path, name) == [value], (path, name)


def test_files_that_cannot_be_tagged_are_left_as_they_were(run, tmp_path, predict_py):
    music = tmp_path / "music"
    read_only = write_audio(music / "read_only.flac", 1.0, 16000)
    locked = write_audio(music / "locked" / "in_locked_folder.flac", 1.0, 16000)
    fine = write_audio(music / "fine.ogg", 1.0, 16000)
    linked = write_audio(tmp_path / "elsewhere" / "target.flac", 1.0, 16000)
    (music / "link.flac").symlink_to(linked)
    os.chmod(read_only, 0o444)
    os.chmod(locked.parent, 0o555)
    before = {p: p.read_bytes() for p in (read_only, locked)}
    try:
        code, err = predict_py("--model_dir", str(run), str(music), "--write_tags")
    finally:
        os.chmod(locked.parent, 0o755)
    assert code == 1 and "Traceback" not in err
    assert f"skipped {read_only}: cannot write tags: the file is read-only" in err
    assert f"skipped {locked}: cannot write tags: its folder {locked.parent} is read-only" in err
    assert "(2 failed)" in err and "2 could not be tagged (left as they were)" in err.splitlines()[-1]
    for path, data in before.items():
        assert path.read_bytes() == data
    assert sorted(p.name for p in locked.parent.iterdir()) == ["in_locked_folder.flac"]
    assert _tag(fine, "SENTIO_QUADRANT") and _tag(linked, "SENTIO_QUADRANT")  # the link's target is tagged
    assert (music / "link.flac").is_symlink()  # and the link stays a link
    unknown = tmp_path / "x.au"
    unknown.write_bytes(b"\0" * 64)
    with pytest.raises(AudioError, match="cannot write tags: mutagen does not know this format"):
        write_tags(str(unknown), RESULT)
    assert unknown.read_bytes() == b"\0" * 64 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_full_disk_while_tagging_leaves_the_file_and_no_copy(tmp_path):
    song = write_audio(tmp_path / "music" / "song.flac", 3.0, 44100, 2)
    data = song.read_bytes()
    child = os.fork()
    if child == 0:  # a real limit of the file system calls: the copy cannot be written whole
        code = 3
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) // 2, len(data) // 2))
            write_tags(str(song), RESULT)
        except AudioError as exc:
            code = 0 if exc.reason == "cannot write tags (File too large); the file is left as it was" else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.WEXITSTATUS(status) == 0
    assert song.read_bytes() == data and os.listdir(song.parent) == ["song.flac"]


# ---- reading faults -------------------------------------------------------------------------------


def test_a_hung_decoder_a_changed_file_and_a_bug_each_skip_one_file(run, tmp_path, predict_py, monkeypatch):
    import sentio.inference.stream as stream
    from sentio.features.audio import STDERR

    music = tmp_path / "music"
    for name in ("a_hangs", "b_changes", "c_bug", "d_fine", "e_fine", "f_deleted"):
        write_audio(music / f"{name}.wav", 1.5, 16000, seed=len(name))
    release = threading.Event()
    plain = stream.WindowStream.__iter__

    def windows(self):
        name = Path(self.path).stem
        if name == "a_hangs":
            (music / "f_deleted.wav").unlink()  # listed, then gone before it is read
            with STDERR.muted():  # where a real decoder hangs: our messages must still get out
                release.wait(60)
        for i, chunk in enumerate(plain(self)):
            if name == "b_changes" and i == 0:
                replacement = write_audio(tmp_path / "new.wav", 3.0, 16000)
                os.replace(replacement, self.path)
            if name == "c_bug":
                _ = 1 / 0
            yield chunk

    monkeypatch.setattr(stream.WindowStream, "__iter__", windows)
    output = tmp_path / "out.jsonl"
    try:
        code, err = predict_py("--model_dir", str(run), str(music), "--output", str(output), "--file_timeout", "5",
                               "--num_workers", "2")
    finally:
        release.set()
    assert code == 1
    assert f"skipped {music / 'a_hangs.wav'}: the decoder gave nothing for 5 s: skipped (see --file_timeout)" in err
    assert f"skipped {music / 'b_changes.wav'}: changed while it was read: rerun to predict its new content" in err
    assert "Traceback" in err and "ZeroDivisionError: division by zero" in err  # our bug keeps its traceback
    assert f"skipped {music / 'c_bug.wav'}: internal error (ZeroDivisionError: division by zero)" in err
    summary = err.strip().splitlines()[-1]
    assert f"skipped {music / 'f_deleted.wav'}: file not found" in err
    assert "6 files (4 failed)" in summary and summary.endswith("1 files failed with an internal error: see above")
    assert sorted(Path(r["file"]).stem for r in _records(output)) == ["d_fine", "e_fine"]
    assert not journal_path(output).exists()  # a clean end leaves nothing to remember


def _listed_as_nobody(folder: Path) -> tuple[list[str], list[list[str]]]:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # no exec: the interpreter need not be readable by that user
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            listing = list_audio([str(folder)])
            os.write(write, json.dumps([listing.files, [[p.path, p.reason] for p in listing.problems]]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(child, 0)
    return json.loads(text)


@pytest.mark.slow
def test_symlink_loops_and_unreadable_folders_are_one_line_each(run, predict_py, request):
    music = Path(tempfile.mkdtemp(prefix="sentio-test-"))  # in /tmp itself: an ordinary user can reach it
    os.chmod(music, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(music, ignore_errors=True))
    write_audio(music / "a" / "song.wav", 1.0, 16000)
    (music / "a" / "up").symlink_to(music)  # a loop through a folder above
    (music / "self.wav").symlink_to(music / "self.wav")  # a link to itself
    secret = write_audio(music / "secret" / "hidden.wav", 1.0, 16000)
    os.chmod(secret.parent, 0o000)
    try:
        if os.geteuid() == 0:  # root reads any folder: list as an ordinary user, in a forked child
            files, problems = _listed_as_nobody(music)
        else:
            listing = list_audio([str(music)])
            files, problems = listing.files, [[p.path, p.reason] for p in listing.problems]
    finally:
        os.chmod(secret.parent, 0o755)
    assert files == [str(music / "a" / "song.wav")]
    reasons = dict(problems)
    assert reasons[str(music / "a" / "up")].startswith("is a link back to a folder already searched")
    assert reasons[str(music / "self.wav")] == "is a symlink loop: left out"
    assert reasons[str(music / "secret")].startswith("cannot be read (Permission denied)")
    code, err = predict_py("--model_dir", str(run), str(music))  # as this user (root reads the secret folder)
    assert "Traceback" not in err and f"skipped {music / 'self.wav'}: is a symlink loop: left out" in err
    assert "folders or links could not be searched" in err.strip().splitlines()[-1]


# Run predict.py in a child whose decoder aborts the process (a native crash) on files named "bomb".
ABORT_ON_BOMB = """
import os, runpy, sys
import sentio.inference.stream as stream
plain = stream.WindowStream.__iter__
def windows(self):
    if "bomb" in os.path.basename(self.path):
        os.abort()
    yield from plain(self)
stream.WindowStream.__iter__ = windows
sys.argv = ["predict.py", *sys.argv[1:]]
runpy.run_path("predict.py", run_name="__main__")
"""


@pytest.mark.slow
def test_a_file_that_crashes_the_process_is_skipped_after_two_crashes(run, tmp_path):
    music = tmp_path / "music"
    for i in range(6):
        write_audio(music / f"{i:02d}.wav", 1.0, 16000, seed=i)
    write_audio(music / "03_bomb.wav", 1.0, 16000)
    output = tmp_path / "out.jsonl"
    args = ["--model_dir", str(run), str(music), "--output", str(output), "--num_workers", "1"]

    def predict(script: str = ABORT_ON_BOMB) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", script, *args] if script else [sys.executable, "predict.py", *args]
        return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)

    first = predict()
    assert first.returncode == -signal.SIGABRT, first.stderr
    assert '{"start": "%s"}' % (music / "03_bomb.wav") in journal_path(output).read_text()
    second = predict()  # the suspect is read first and alone: it crashes again
    assert second.returncode == -signal.SIGABRT, second.stderr
    third = predict()
    assert third.returncode == 1, third.stderr
    assert (f"skipped {music / '03_bomb.wav'}: the process died 2 times while reading it (a crash in the decoder?); "
            f"delete {journal_path(output)} to try it again") in third.stderr
    files = [r["file"] for r in _records(output)]
    assert sorted(files) == sorted(str(p) for p in music.iterdir() if "bomb" not in p.name)  # each once
    assert "(1 failed, 6 already done)" in predict("").stderr  # remembered by later runs too


@pytest.mark.slow
def test_a_full_disk_while_writing_keeps_what_was_written_and_the_rerun_completes(run, tmp_path):
    music = tmp_path / "music"
    for i in range(10):
        write_audio(music / f"{i:02d}.wav", 0.7, 16000, seed=i)
    output = tmp_path / "out.jsonl"
    args = [sys.executable, "predict.py", "--model_dir", str(run), str(music), "--output", str(output)]

    def small_disk() -> None:  # a real limit of the file system calls: writes past 1,000 bytes fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    full = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180, preexec_fn=small_disk)
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    assert f"predict.py: error: cannot write to {output} (File too large): make room and rerun" in full.stderr
    kept = output.read_bytes()
    assert kept.endswith(b"\n") and 0 < len(_records(output)) < 10 and len(kept) <= 1000  # whole records only
    rerun = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert "already done" in rerun.stderr and output.read_bytes().startswith(kept)
    assert sorted(r["file"] for r in _records(output)) == sorted(str(p) for p in music.iterdir())


@pytest.mark.slow
def test_a_real_full_disk_while_writing_keeps_what_was_written(run, tmp_path):
    """The same on a full file system (ENOSPC): a three-page tmpfs holds the output and its journal, where mounting is allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root in a privileged container)")
    try:
        music = tmp_path / ("m" * 100)
        for i in range(16):  # long names: 16 records need more than the page the output gets
            write_audio(music / f"{i:02d}{'x' * 100}.wav", 0.7, 16000, seed=i)
        output = disk / "out.jsonl"
        args = [sys.executable, "predict.py", "--model_dir", str(run), str(music), "--output", str(output)]
        full = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
        assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
        assert f"cannot write to {output} (No space left on device): make room and rerun" in full.stderr
        kept = output.read_bytes()
        assert kept.endswith(b"\n") and 0 < len(_records(output)) < 16
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)  # room is made
        rerun = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
        assert output.read_bytes().startswith(kept)
        assert sorted(r["file"] for r in _records(output)) == sorted(str(p) for p in music.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
