"""The web demo under load: 1, 4 and 16 concurrent real Gradio clients against app.py on loopback.

    python bench/app_load.py                                   # the compact AST config, random weights
    python bench/app_load.py --model_dir runs/ast-demo --clients 1,4,16 --requests 200

app.py is started as a user starts it (127.0.0.1, a free port, its default --concurrency and
--queue_size unless given) with `--model_dir` or the `train.py --model ast --demo` config with
random weights (speed does not depend on training). Each level runs `--requests` requests of
`--clip_seconds` 44.1 kHz stereo MP3 clips (four different ones, written here), spread over N
threads, each with its own `gradio_client.Client`: every client sends its next request when its
last one is answered (a closed loop, bounded by the request count). Reported per level: errors,
p50 / p95 latency, throughput, the server's resident memory (VmRSS of its process, sampled
every 0.2 s) at the start of the level, at its highest, after every 50 answered requests and at
the end, and the uploads left in the server's Gradio cache once the level is over (each upload is
deleted when its request ends: 0 expected). `--settle` runs that many requests with one client
first and prints RSS after warm-up and after every 50 of them: the memory-growth check. Loopback
only. Not a test: it prints tables (Markdown) and writes app_load.json in --workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Level:
    clients: int
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    p50_s: float = 0.0
    p95_s: float = 0.0
    throughput_per_s: float = 0.0
    wall_s: float = 0.0
    rss_start_mb: float = 0.0
    rss_max_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_every_50_mb: list[float] = field(default_factory=list)
    uploads_left: int = 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_clips(folder: Path, seconds: float, count: int = 4) -> list[Path]:
    """`count` different chords with noise, 44.1 kHz stereo MP3, like songs from a collection."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(count):
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * 44100)) / 44100
        base = 110.0 * 2 ** (i * 3 / 12)
        wave = sum(np.sin(2 * np.pi * base * r * t) for r in (1.0, 1.25, 1.5)) / 3
        wave = 0.3 * wave * (0.6 + 0.4 * np.sin(2 * np.pi * (1 + i) * t)) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.mp3"
        sf.write(path, np.stack([wave, 0.9 * wave], axis=1).astype(np.float32), 44100, format="MP3")
        clips.append(path)
    return clips


def compact_run(folder: Path) -> Path:
    """The demo's compact AST (train.py --model ast --demo) with random weights, in the run format."""
    if (folder / "model.safetensors").is_file():
        return folder
    import torch

    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.models import build_model
    from sentio.models.registry import get_backbone

    torch.manual_seed(0)
    build_model("ast", from_scratch=True, config_overrides=get_backbone("ast").demo_config).save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=256).save_pretrained(folder)
    return folder


class Memory:
    """The server's VmRSS, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append(_rss_mb(self.pid))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def uploads_left(cache: Path) -> int:
    """Files in the server's Gradio cache other than the JSON downloads it still offers."""
    return sum(1 for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".emotion.json"))


def run_level(url: str, clips: list[Path], clients: int, requests: int, pid: int) -> Level:
    from gradio_client import Client, handle_file

    level = Level(clients)
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    answered = [0]
    connections = [Client(url, verbose=False) for _ in range(clients)]

    def worker(client) -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.monotonic()
            try:
                status, numbers, *_ = client.predict(handle_file(str(clips[index % len(clips)])), api_name="/predict")
                if "Quadrant:" not in numbers:
                    raise RuntimeError(f"no result: {status[:80]}")
                with lock:
                    latencies.append(time.monotonic() - started)
            except Exception as exc:  # counted and named: the table says which errors
                with lock:
                    level.errors += 1
                    kind = type(exc).__name__
                    level.error_kinds[kind] = level.error_kinds.get(kind, 0) + 1
            with lock:
                answered[0] += 1
                if answered[0] % 50 == 0:
                    level.rss_every_50_mb.append(_rss_mb(pid))

    memory = Memory(pid)
    level.rss_start_mb = _rss_mb(pid)
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, connections))
    level.wall_s = time.monotonic() - started
    memory.close()
    level.requests = requests
    level.rss_end_mb = _rss_mb(pid)
    level.rss_max_mb = max(memory.samples + [level.rss_end_mb])
    if latencies:
        level.p50_s = statistics.median(latencies)
        level.p95_s = float(np.percentile(latencies, 95))
        level.throughput_per_s = len(latencies) / level.wall_s
    return level


def table(levels: list[Level], warm_rss: float) -> str:
    lines = ["| clients | requests | errors | p50 (s) | p95 (s) | requests/s | server RSS start / max / end (MB) "
             "| uploads left |", "|---|---|---|---|---|---|---|---|"]
    for lv in levels:
        errors = f"{lv.errors}" + (f" ({', '.join(f'{k} {n}' for k, n in lv.error_kinds.items())})" if lv.errors else "")
        lines.append(f"| {lv.clients} | {lv.requests} | {errors} | {lv.p50_s:.2f} | {lv.p95_s:.2f} | "
                     f"{lv.throughput_per_s:.2f} | {lv.rss_start_mb:.0f} / {lv.rss_max_mb:.0f} / {lv.rss_end_mb:.0f} | "
                     f"{lv.uploads_left} |")
    lines.append(f"\nServer RSS after warm-up: {warm_rss:.0f} MB; at the end: {levels[-1].rss_end_mb:.0f} MB "
                 f"({levels[-1].rss_end_mb - warm_rss:+.0f} MB).")
    return "\n".join(lines)


def settle_table(level: Level, warm_rss: float) -> str:
    """RSS after warm-up and after every 50 requests of one client: flat when nothing grows."""
    marks = [("after warm-up", warm_rss)] + [(f"after {50 * (i + 1)}", rss) for i, rss in enumerate(level.rss_every_50_mb)]
    return "\n".join(["| requests (1 client) | " + " | ".join(name for name, _ in marks) + " |",
                      "|---" * (len(marks) + 1) + "|",
                      "| server RSS (MB) | " + " | ".join(f"{rss:.0f}" for _, rss in marks) + " |"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app_load.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", default=None, help="A run (default: the compact AST config, random weights).")
    parser.add_argument("--clients", default="1,4,16", help="Concurrent clients per level, comma-separated.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per level.")
    parser.add_argument("--warmup", type=int, default=8, help="Requests before the first level (not counted).")
    parser.add_argument("--settle", type=int, default=0,
                        help="Requests of one client after warm-up, RSS printed every 50 (the memory check).")
    parser.add_argument("--clip_seconds", type=float, default=20.0)
    parser.add_argument("--app_args", default="", help="More app.py flags, e.g. '--concurrency 4 --queue_size 32'.")
    parser.add_argument("--workdir", default=None, help="Where the run, clips and app_load.json go (default: temporary).")
    args = parser.parse_args(argv)
    levels_wanted = [int(n) for n in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="sentio-load-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = args.model_dir or str(compact_run(work / "ast-compact"))
        clips = write_clips(work / "clips", args.clip_seconds)
        port = _free_port()
        cache = work / "gradio-cache"  # the server's own Gradio cache: its uploads are counted there
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(cache)}
        env.pop("GRADIO_SERVER_NAME", None)  # the app's own default: 127.0.0.1
        log = open(work / "app.log", "w")  # noqa: SIM115 - closed below
        server = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--model_dir", model_dir, "--port", str(port),
                                   "--demo_dir", str(work), *args.app_args.split()], cwd=REPO, env=env, stdout=log,
                                  stderr=log)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"app_load.py: app.py did not start: {(work / 'app.log').read_text()[-2000:]}")
                try:
                    urllib.request.urlopen(url, timeout=5)
                    break
                except OSError:
                    time.sleep(0.5)
            run_level(url, clips, 1, args.warmup, server.pid)
            warm_rss = _rss_mb(server.pid)
            settle = run_level(url, clips, 1, args.settle, server.pid) if args.settle else None
            levels = []
            for clients in levels_wanted:
                levels.append(run_level(url, clips, clients, args.requests, server.pid))
                levels[-1].uploads_left = uploads_left(cache)
                print(f"app_load.py: {clients} clients done", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
        print(f"app.py {args.app_args or '(default --concurrency/--queue_size)'}, model {args.model_dir or 'compact AST (random weights)'}, "
              f"{args.clip_seconds:g} s clips, {os.cpu_count()} CPUs")
        if settle is not None:
            print(settle_table(settle, warm_rss) + "\n")
        print(table(levels, settle.rss_end_mb if settle else warm_rss))
        (work / "app_load.json").write_text(json.dumps({"warm_rss_mb": warm_rss, "settle": asdict(settle) if settle else None,
                                                        "levels": [asdict(lv) for lv in levels]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
