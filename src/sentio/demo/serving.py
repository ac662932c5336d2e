"""What the web demo (app.py) does around each request: its uploads' lifecycle and its memory.

Gradio stores an upload under its cache folder at `<sha256 of the bytes>/<name>`: two users who
upload the same bytes share one path, so an upload may only be deleted once every upload of it
has been analysed. Gradio keeps no such count, so `UploadClaims` keeps it: the ASGI middleware
`ClaimUploads` counts each path the upload route hands out, and the request that analyses a path
releases one claim; the last release deletes the file (and its folder once empty), or, while an
upload is in flight (it may be writing those same bytes, whose path is known only when its answer
is sent), as soon as no upload is in flight and no new claim came. Only paths the
upload route handed out are ever deleted: a demo clip or any other file a request names is not
ours to remove. An upload that no request ever analyses (a page closed first) is forgotten here
after `keep` seconds and deleted by Gradio's own age-based sweep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

UPLOAD_ROUTE = "/upload"  # Gradio's route, under its API prefix (/gradio_api/upload)


class UploadClaims:
    """How many uploads of each path are still waiting to be analysed (thread-safe)."""

    def __init__(self, keep: float = 600.0) -> None:
        self.keep = keep
        self._claims: dict[str, tuple[int, float]] = {}  # path -> (claims, time of the last upload)
        self._uploading = 0  # upload requests in flight
        self._unclaimed: set[str] = set()  # released while an upload was in flight: delete when none is
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: str | os.PathLike) -> str:
        return os.path.realpath(path)

    def claim(self, paths: Iterable[str]) -> None:
        """The upload route handed out these paths (one claim each)."""
        now = time.time()
        with self._lock:
            for path in paths:
                key = self._key(path)
                self._claims[key] = (self._claims.get(key, (0, now))[0] + 1, now)

    def upload_started(self) -> None:
        with self._lock:
            self._uploading += 1

    def upload_finished(self) -> None:
        """An upload request ended (its paths claimed): delete what was released meanwhile and is
        still unclaimed."""
        with self._lock:
            self._uploading -= 1
            if self._uploading == 0:
                for key in self._unclaimed - self._claims.keys():
                    _remove(Path(key))
                self._unclaimed.clear()

    def pending(self, path: str | os.PathLike) -> int:
        with self._lock:
            return self._claims.get(self._key(path), (0, 0.0))[0]

    def __len__(self) -> int:
        with self._lock:
            return len(self._claims)

    def release(self, path: str | os.PathLike | None) -> bool:
        """One request is done with `path`: delete it when no other upload of it waits (True when
        it is deleted now or once the uploads in flight end). A path the upload route never handed
        out is left alone."""
        if not path:
            return False
        key = self._key(path)
        with self._lock:
            self._forget_stale()
            if key not in self._claims:
                return False
            count, when = self._claims[key]
            if count > 1:
                self._claims[key] = (count - 1, when)
                return False
            del self._claims[key]
            if self._uploading:  # it may be storing these very bytes again: wait until it is counted
                self._unclaimed.add(key)
            else:
                _remove(Path(key))
        return True

    def _forget_stale(self) -> None:
        """Claims older than `keep` were abandoned (their page closed): Gradio's sweep deletes those files."""
        limit = time.time() - self.keep
        for key in [key for key, (_, when) in self._claims.items() if when < limit]:
            del self._claims[key]


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:  # Gradio's age-based sweep came first
        pass
    try:
        path.parent.rmdir()  # Gradio's per-upload folder, once empty
    except OSError:  # not empty (another name with the same bytes) or already gone
        pass


class ClaimUploads:
    """ASGI middleware: counts the paths each successful upload response hands out.

    Gradio offers no hook on its upload route, so this reads the route's JSON answer (a list of
    paths) as it passes through; every other request goes by untouched."""

    def __init__(self, app: Callable, claims: UploadClaims) -> None:
        self.app, self.claims = app, claims

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(UPLOAD_ROUTE):
            await self.app(scope, receive, send)
            return
        status, body = [0], bytearray()
        self.claims.upload_started()

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and status[0] == 200:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    try:
                        paths = json.loads(bytes(body))
                    except ValueError:  # not the route's list of paths: nothing to count
                        paths = []
                    if isinstance(paths, list):
                        self.claims.claim(p for p in paths if isinstance(p, str))
            await send(message)

        try:
            await self.app(scope, receive, watch)  # background moves into the cache included
        finally:
            self.claims.upload_finished()


_LIBC: Any = None


def give_back_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim); False where there is none.

    A request allocates and frees tens of MB (decoded audio, features, figures, PNGs) from several
    threads; glibc keeps freed memory in per-thread arenas, so resident memory creeps up with the
    mix of requests although nothing leaks. malloc_trim(0) returns it at the end of each request
    (a millisecond or two)."""
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
            _LIBC = _LIBC if _LIBC and hasattr(_LIBC, "malloc_trim") else False
        except OSError:
            _LIBC = False
    if not _LIBC:
        return False
    _LIBC.malloc_trim(0)
    return True


class Admission:
    """How many admitted requests wait for a slot: the web demo's queue limit, in its own words.

    Gradio's own limit (Blocks.queue(max_size=...)) answers a full queue with a fixed message of
    its own ("This application is currently busy", gradio_client's "Queue is full"), so the app
    checks first, in Gradio's validator, which runs when a request arrives. Validators run at once
    in threads and an admitted request joins Gradio's queue only after its validator returns, so
    Gradio's queue length alone would let a burst through: the count is kept here, under a lock.
    A request that leaves the queue without starting (its client went away) is not told to us:
    the count is clamped to Gradio's queue length plus the requests admitted in the last
    `transit` seconds (still on their way into it)."""

    def __init__(self, limit: int, transit: float = 2.0) -> None:
        self.limit, self.transit = limit, transit
        self.waiting = 0
        self._recent: list[float] = []
        self._lock = threading.Lock()

    def admit(self, queued: int) -> int | None:
        """None when a request may join (`queued`: Gradio's queue length now), else how many wait."""
        with self._lock:
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < self.transit]
            self.waiting = min(self.waiting, queued + len(self._recent))
            if self.waiting >= self.limit:
                return self.waiting
            self.waiting += 1
            self._recent.append(now)
            return None

    def started(self) -> None:
        """An admitted request got its slot."""
        with self._lock:
            self.waiting = max(0, self.waiting - 1)
