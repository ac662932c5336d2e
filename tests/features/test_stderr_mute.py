"""The decoders' fd-2 muting (features.audio.STDERR): scoped, restored, re-entrant, and our own
messages still get out. fd 2 is pointed at a file for each test and put back after it."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from sentio.features.audio import FREE_WAIT_S, STDERR


@contextlib.contextmanager
def fd2_into(path: Path) -> Iterator[None]:
    sys.stderr.flush()
    kept = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(kept, 2)
        os.close(kept)


def test_muted_sections_nest_and_restore_fd2_and_messages_get_out(tmp_path):
    log = tmp_path / "fd2.txt"
    with fd2_into(log):
        before = os.fstat(2).st_ino
        with STDERR.muted():
            os.write(2, b"decoder noise ")
            with STDERR.muted():  # nested in one thread
                os.write(2, b"more noise ")
                with STDERR.free():  # a message from inside this thread's own section: no wait, printed
                    start = time.monotonic()
                    os.write(2, b"inner message ")
                assert time.monotonic() - start < FREE_WAIT_S / 2
                os.write(2, b"noise again ")
            os.write(2, b"outer noise ")
        assert os.fstat(2).st_ino == before  # fd 2 is the file again, not /dev/null
        os.write(2, b"after")
    assert log.read_text() == "inner message after"


def test_a_nested_section_never_waits_for_a_waiting_message(tmp_path):
    log = tmp_path / "fd2.txt"
    with fd2_into(log):
        with STDERR.muted():
            writer = threading.Thread(target=lambda: _message(b"from another thread "))
            writer.start()
            deadline = time.monotonic() + 10
            while STDERR._writers == 0 and time.monotonic() < deadline:  # the message waits for the section
                time.sleep(0.01)
            start = time.monotonic()
            with STDERR.muted():  # this thread's nested section: it must not wait for that message
                nested = time.monotonic() - start
                os.write(2, b"noise ")
        writer.join(10)
        os.write(2, b"after")
    assert nested < FREE_WAIT_S / 2
    assert log.read_text() == "from another thread after"


def _message(text: bytes) -> None:
    with STDERR.free():
        os.write(2, text)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_muted_gets_fd2_back(tmp_path):
    log = tmp_path / "fd2.txt"
    with fd2_into(log):
        with STDERR.muted():
            pid = os.fork()
            if pid == 0:  # the child: a message of its own must be seen, and its own sections still work
                try:
                    with STDERR.muted():
                        os.write(2, b"child noise ")
                    os.write(2, b"child ")
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            os.write(2, b"parent noise ")
        os.write(2, b"parent")
    assert os.WEXITSTATUS(status) == 0
    assert log.read_text() == "child parent"
