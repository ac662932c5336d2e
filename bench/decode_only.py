"""The decode floor: a library decoded and resampled exactly as predict.py does it, nothing else.

    python bench/decode_only.py --model_dir RUN LIBRARY [--workers N]

Files are listed as predict.py lists them and decoded by as many threads (`--workers`), each file block by block through `audio_blocks` at the rate of the run's
feature extractor (soundfile or the ffmpeg pipe, soxr's streaming resampler). No features, no
model, no output: prediction cannot be faster than this on the same cores. Prints the seconds of
audio decoded. Used by bench/predict_speed.py's "decode only" row.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading

import json
import os

# Only the decoders: importing the extractor or the inference package would load torch and
# transformers, start-up the floor must not include.
from sentio.features.audio import AudioError, audio_blocks
from sentio.inference.listing import list_audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="The run whose feature extractor sets the rate.")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--workers", type=int, default=None,
                        help="Decoding threads (predict_speed.py passes predict.py's default_workers()).")
    args = parser.parse_args(argv)
    with open(os.path.join(args.model_dir, "preprocessor_config.json")) as f:
        rate = int(json.load(f)["sampling_rate"])
    paths: queue.SimpleQueue[str] = queue.SimpleQueue()
    for path in list_audio(args.inputs).files:
        paths.put(path)
    samples = [0]
    lock = threading.Lock()

    def work() -> None:
        while True:
            try:
                path = paths.get_nowait()
            except queue.Empty:
                return
            try:
                n = sum(block.size for block in audio_blocks(path, rate))
            except AudioError as err:
                print(err, file=sys.stderr)
                continue
            with lock:
                samples[0] += n

    threads = [threading.Thread(target=work) for _ in range(args.workers or os.cpu_count() or 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{samples[0] / rate:.1f} s of audio decoded at {rate} Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
