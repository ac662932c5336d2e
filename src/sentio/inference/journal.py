"""The files in flight, written down beside the output, so a file that kills the process is found.

A decoder that segfaults or aborts takes the whole process with it: no exception, no line in the
output. Each process appends `{"start": FILE}` to its journal just before it opens a file and
`{"end": FILE}` once the file is written or skipped, and `{"stop": ...}` when it ends normally. A
journal that ends without its stop line belongs to a process that died: every file it had started
and not ended is a suspect. The next run compacts the journals into `{"crashed": FILE, "times": N}`
lines, reads each suspect alone (so a file that merely shared the moment is cleared), and skips a
file that was in flight in two deaths, saying so. By hand: this is a few lines of JSON, and a
library for it would still need the "in flight when the process died" logic.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable

MAX_CRASHES = 2  # deaths with a file in flight after which it is skipped


def journal_path(output: str | os.PathLike, rank: int = 0) -> Path:
    """The journal of process `rank` for `output`."""
    output = Path(output)
    return output.with_name(output.name + ".journal" + (f".{rank}" if rank else ""))


def journals(output: str | os.PathLike) -> list[Path]:
    """Every journal of `output` (one per process of earlier runs)."""
    output = Path(output)
    main = journal_path(output)
    others = sorted(output.parent.glob(f"{output.name}.journal.*"))
    return ([main] if main.is_file() else []) + [p for p in others if p.suffix.lstrip(".").isdigit()]


def read_crashes(paths: Iterable[Path]) -> Counter[str]:
    """How many process deaths each file was in flight for, over the journals `paths`."""
    crashes: Counter[str] = Counter()
    for path in paths:
        in_flight: set[str] = set()
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError:
            continue
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line a death cut short
            if not isinstance(item, dict):
                continue
            if "crashed" in item:
                crashes[str(item["crashed"])] += int(item.get("times", 1))
            elif "run" in item:  # a process started: whatever the one before left in flight died with it
                crashes.update(in_flight)
                in_flight.clear()
            elif "start" in item:
                in_flight.add(str(item["start"]))
            elif "end" in item:
                in_flight.discard(str(item["end"]))
            elif "stop" in item:
                in_flight.clear()
        crashes.update(in_flight)
    return crashes


def compact(output: str | os.PathLike, done: set[str]) -> Counter[str]:
    """Fold every journal of `output` into the main one (crash counts only, files now `done`
    dropped); returns the counts. The journal is removed when nothing is left to remember."""
    paths = journals(output)
    crashes = read_crashes(paths)
    crashes = Counter({f: n for f, n in crashes.items() if f not in done and n > 0})
    main = journal_path(output)
    if crashes:
        temp = main.with_name(main.name + ".tmp")
        temp.write_text("".join(json.dumps({"crashed": f, "times": n}) + "\n" for f, n in sorted(crashes.items())))
        os.replace(temp, main)
    else:
        main.unlink(missing_ok=True)
    for path in paths:
        if path != main:
            path.unlink(missing_ok=True)
    return crashes


class Journal:
    """One process's journal: `start` and `end` of each file, each line one append (whole even
    when the process dies right after it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._line({"run": os.getpid()})

    def _line(self, item: dict) -> None:
        with self.lock:
            if self.fd >= 0:
                try:
                    os.write(self.fd, (json.dumps(item) + "\n").encode())
                except OSError:  # a full disk: the output says so; the journal only helps after a crash
                    pass

    def start(self, path: str) -> None:
        self._line({"start": path})

    def end(self, path: str) -> None:
        self._line({"end": path})

    def close(self) -> None:
        """The process ends normally: nothing it had in flight crashed it."""
        self._line({"stop": os.getpid()})
        with self.lock:
            os.close(self.fd)
            self.fd = -1
