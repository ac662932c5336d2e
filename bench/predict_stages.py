"""Where predict.py's time goes, in CPU seconds per stage, one thread, stage after stage.

    python bench/predict_stages.py --model_dir RUN_OR_ONNX LIBRARY [--batch_size 32]

Stages, each timed with the process's CPU clock (so a busy machine slows but does not skew them):
start-up (imports, as predict.py makes them: an ONNX run loads no torch), model load, decode + resample (`audio_blocks`),
features (`WindowStream` minus the decode), collate, forward pass (ONNX or torch), and the result
per file (averages, quadrant, one output record). A sampling profiler on a loaded machine drops the
threads that wait for a core, this does not. Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

T0 = time.process_time()
from sentio.dataclass_args import DataclassArgumentParser  # noqa: E402,F401  predict.py's imports, in its order
from sentio.inference import EmotionPredictor  # noqa: E402
from sentio.inference.writers import CsvWriter  # noqa: E402
from sentio.inference.listing import list_audio  # noqa: E402

STARTUP = time.process_time() - T0

from sentio.features.audio import audio_blocks  # noqa: E402
from sentio.inference.results import song_result  # noqa: E402
from sentio.inference.runner import batches_of  # noqa: E402
from sentio.inference.stream import WindowStream, stream_items  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args(argv)
    clock = time.process_time
    cost = dict.fromkeys(["start-up (imports)", "model load", "decode + resample", "features", "collate",
                          "forward", "result + output"], 0.0)
    cost["start-up (imports)"] = STARTUP
    t = clock()
    predictor = EmotionPredictor.from_pretrained(args.model_dir, batch_size=args.batch_size)
    cost["model load"] = clock() - t
    if "torch" in sys.modules:  # a torch run: features on one torch thread, as predict.py's decoding threads
        sys.modules["torch"].set_num_threads(1)
    files = list_audio(args.inputs).files
    name, rate = predictor.extractor.feature_name, predictor.extractor.params.sampling_rate
    writer, windows, seconds = CsvWriter(io.StringIO(), False), 0, 0.0
    for path in files:
        t = clock()
        for _ in audio_blocks(path, rate):
            pass
        decode = clock() - t
        cost["decode + resample"] += decode
        t = clock()
        stream = WindowStream(predictor.extractor, path)
        items = list(stream_items(stream, name))
        cost["features"] += clock() - t - decode  # the stream decodes again: take that off
        t = clock()
        batches = list(batches_of(items, predictor.collate, predictor.batch_size))
        cost["collate"] += clock() - t
        t = clock()
        parts: dict[str, list] = {}
        for batch in batches:
            for key, value in predictor.runner(batch).items():
                parts.setdefault(key, []).append(value)
        cost["forward"] += clock() - t
        t = clock()
        import numpy as np

        outputs = {k: np.concatenate(v) for k, v in parts.items()}
        result = song_result(outputs, np.asarray(stream.starts), calibration=predictor.calibration)
        writer.write(path, result)
        cost["result + output"] += clock() - t
        windows += len(items)
        seconds += stream.duration
    total = sum(cost.values())
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio, {windows} windows, batch {args.batch_size}")
    print("| stage | CPU s | share |\n|---|---|---|")
    for stage, value in cost.items():
        print(f"| {stage} | {value:.2f} | {100 * value / total:.0f}% |")
    print(f"| total | {total:.2f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
