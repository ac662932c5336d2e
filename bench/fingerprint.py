"""What content matching costs: the fingerprint pass beside the first feature pass, on the same clips.

    python bench/fingerprint.py [--corpus DIR] [--num_clips 100] [--kinds ast,ast-demo] [--rounds 2]

The number that answers the target (fingerprinting adds at most 25% to the first feature pass): the
first feature pass with fingerprints (build_feature_dataset(fingerprints=True): each clip's
fingerprint from the waveform the pass decodes, what a multi-dataset train.py/prepare.py does) over
the same pass without, paired in the same rounds ("+fp" rows, "added by fingerprinting in the pass").

Runs, alternating, in fresh subprocesses with fresh caches (so each is a FIRST pass and its peak
RSS its own): the cached feature pass of each feature kind (build_feature_dataset, one process), the
same with fingerprints, and
the fingerprint pass (corpus_fingerprints: decode, Chromaprint, per-file cache), then matching the
fingerprints (index + verification), and Chromaprint alone on the 16 kHz waveforms the AST
feature pass decodes anyway (what fingerprinting would add inside that pass). Prints CPU and wall seconds per clip and the ratio
fingerprint pass / feature pass (the target: <= 0.25), and the peak RSS of the fingerprint pass on
N and 2N clips (the clip list repeated under other names: memory should stay flat). CPU seconds are
the number to trust on a shared machine. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(task: str, paths: list[str], cache: str, kind: str) -> dict:
    import pandas as pd

    if task == "features":
        with_fingerprints = kind.endswith("+fp")
        kind = kind.removesuffix("+fp")
        from sentio.features.cache import build_feature_dataset
        from sentio.features.extractor import SentioFeatureExtractor

        extractor = (SentioFeatureExtractor("fbank", max_length=256, num_mel_bins=128) if kind == "ast-demo"
                     else SentioFeatureExtractor("fbank"))
        manifest = pd.DataFrame({"song_id": [str(i) for i in range(len(paths))], "path": paths})
        wall, cpu = time.perf_counter(), _cpu()
        build_feature_dataset(manifest, extractor, cache, fingerprints=with_fingerprints)
        if with_fingerprints:  # every clip's fingerprint came out of the pass
            from sentio.data.fingerprint import fingerprint_folder

            stored = len(list(fingerprint_folder(cache).rglob("*.npy")))
            assert stored == len(paths), f"{stored} fingerprints for {len(paths)} clips"
    elif task == "in-pass":
        # what fingerprinting would add inside the feature pass: the same 16 kHz mono waveform the AST
        # features are computed from, handed to Chromaprint (decoding not counted: the pass does it anyway)
        from sentio.features.audio import load_audio
        from sentio.data.fingerprint import fingerprint_wave

        waves = [load_audio(p, 16000) for p in paths]
        wall, cpu = time.perf_counter(), _cpu()
        for wave in waves:
            fingerprint_wave(wave, 16000)
    else:
        from sentio.data.duplicates import find_matches
        from sentio.data.fingerprint import corpus_fingerprints

        wall, cpu = time.perf_counter(), _cpu()
        prints = corpus_fingerprints(paths, cache, progress=False)
        if task == "fingerprints+match":
            match_wall, match_cpu = time.perf_counter(), _cpu()
            matches, _ = find_matches(prints)
            return {"seconds": time.perf_counter() - wall, "cpu_seconds": _cpu() - cpu, "peak_mb": _peak_mb(),
                    "match_seconds": time.perf_counter() - match_wall, "match_cpu_seconds": _cpu() - match_cpu,
                    "matches": len(matches)}
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": _cpu() - cpu, "peak_mb": _peak_mb()}


def spawn(task: str, paths: list[str], kind: str = "") -> dict:
    cache = tempfile.mkdtemp(prefix="sentio-bench-fp-")
    try:
        code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import fingerprint as b; "
                f"print(json.dumps(b.child({task!r}, json.load(open({paths_file!r})), {cache!r}, {kind!r})))")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(cache, ignore_errors=True)


paths_file = ""


def main() -> int:
    global paths_file
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=None, help="a folder with DEAM_audio/MEMD_audio/*.mp3 (default: a demo corpus)")
    p.add_argument("--num_clips", type=int, default=100)
    p.add_argument("--kinds", default="ast,ast-demo")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        from sentio.demo.corpus import ensure_demo

        corpus = ensure_demo(Path(tempfile.gettempdir()) / f"sentio-bench-demo-{args.num_clips}", args.num_clips, 0)
    paths = sorted(str(p) for p in (corpus / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))[: args.num_clips]
    work = Path(tempfile.mkdtemp(prefix="sentio-bench-fp-paths-"))
    paths_file = str(work / "paths.json")
    Path(paths_file).write_text(json.dumps(paths))
    plain = [k for k in args.kinds.split(",") if k]
    kinds = [x for k in plain for x in (k, f"{k}+fp")]  # each pass without and with fingerprints, side by side
    results: dict[str, list[dict]] = {k: [] for k in [*kinds, "fingerprints+match", "in-pass"]}
    for r in range(args.rounds):  # alternate, so load changes on a shared machine hit both sides
        order = [*kinds, "fingerprints+match", "in-pass"] if r % 2 == 0 else ["in-pass", "fingerprints+match", *kinds[::-1]]
        for task in order:
            results[task].append(spawn("features" if task in kinds else task, paths, task))
    n = len(paths)
    best = {k: min(v, key=lambda x: x["cpu_seconds"]) for k, v in results.items()}
    print(f"{n} clips from {corpus}, {args.rounds} rounds (best CPU of each)")
    print(f"{'pass':24s} {'cpu ms/clip':>12s} {'wall ms/clip':>13s} {'peak MB':>8s}")
    for task, res in best.items():
        print(f"{task:24s} {1000 * res['cpu_seconds'] / n:12.1f} {1000 * res['seconds'] / n:13.1f} {res['peak_mb']:8.0f}")
    fp = best["fingerprints+match"]
    print(f"matching (index + verification): {fp['match_cpu_seconds']:.3f} CPU s, {fp['matches']} matches")
    for k in plain:
        with_fp = [r["cpu_seconds"] for r in results[f"{k}+fp"]]
        without = [r["cpu_seconds"] for r in results[k]]
        paired = [w / o for w, o in zip(with_fp, without)]  # the same round: the same load on the machine
        print(f"added by fingerprinting in the first {k} feature pass: CPU {min(with_fp) / min(without) - 1:+.3f} "
              f"(best of each), paired rounds {', '.join(f'{p - 1:+.3f}' for p in paired)}; wall "
              f"{best[k + '+fp']['seconds'] / best[k]['seconds'] - 1:+.3f} (target: <= +0.25)")
    for k in plain:
        print(f"separate fingerprint pass / first {k} feature pass: CPU {fp['cpu_seconds'] / best[k]['cpu_seconds']:.3f}, "
              f"wall {fp['seconds'] / best[k]['seconds']:.3f}; fingerprints from the pass's own decoded audio / "
              f"the pass: CPU {best['in-pass']['cpu_seconds'] / best[k]['cpu_seconds']:.3f}")
    # memory flat in the number of songs: the same clips twice under other names (links: new paths, no matches
    # beyond the copies themselves)
    doubled = work / "doubled"
    doubled.mkdir()
    twice = paths + [str(doubled / f"copy-{i}{Path(p).suffix}") for i, p in enumerate(paths)]
    for i, p in enumerate(paths):
        os.symlink(p, twice[n + i])
    Path(paths_file).write_text(json.dumps(twice))
    big = spawn("fingerprints+match", twice, "fingerprints+match")
    print(f"peak RSS of the fingerprint pass + matching: {fp['peak_mb']:.0f} MB on {n} clips, {big['peak_mb']:.0f} MB "
          f"on {2 * n} clips (ratio {big['peak_mb'] / fp['peak_mb']:.3f}); {big['matches']} matches (the {n} copies)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
