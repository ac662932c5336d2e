"""A web demo: hear a song's emotion in the browser (Gradio).

    python app.py                                              # the demo run (`make demo` trains it)
    python app.py --model_dir runs/student-cnn/student.int8.onnx --port 7860

Upload or record audio, or pick a demo corpus clip; the page shows the song on the
valence-arousal plane with its quadrant (and its intervals when the run is calibrated), the
windows (or the 2 Hz curve of a dynamic model) as a path on the plane and as curves over time,
the numbers on [-1, 1] and on DEAM's 1..9, and the JSON predict.py writes for the file. Without
--port it listens where GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say, like any Gradio app; the
HTTP API (`gradio_client`) stays on: `Client(url).predict(handle_file("song.mp3"), api_name="/predict")`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentio.choices import DEMO_NOTE
from sentio.cli import parse_dataclasses, parser_for, run_cli
from sentio.data.labels import QUADRANTS, from_unit, quadrant, to_unit
from sentio.demo.corpus import DEFAULT_DEMO_DIR
from sentio.demo.deam_files import AUDIO_SUBDIR
from sentio.errors import ArgumentError, MissingFileError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local demo reports nothing anywhere

if TYPE_CHECKING:
    import gradio as gr
    from matplotlib.figure import Figure

    from sentio.inference import EmotionPredictor

PROG = "app.py"
DEFAULT_RUN = "runs/ast-demo"  # what `make demo` trains
# Where each quadrant sits on the plane (valence sign, arousal sign), for labels and shading.
CORNERS = {"happy": (1, 1), "tense": (-1, 1), "sad": (-1, -1), "calm": (1, -1)}
INTERVAL_LEVELS = ("95", "90", "80")  # drawn widest first, so the narrower ones stay visible


@dataclass
class AppArguments:
    model_dir: str = field(default=DEFAULT_RUN, metadata={
        "help": "A Sentio run folder or an exported .onnx student (default: the demo run, which `make demo` trains)."})
    port: int | None = field(default=None, metadata={
        "help": "Port to listen on (default: GRADIO_SERVER_PORT, else Gradio's 7860; the host is GRADIO_SERVER_NAME, "
                "else 127.0.0.1)."})
    demo_dir: str = field(default=DEFAULT_DEMO_DIR, metadata={"help": "The demo corpus, whose clips the page offers."})


def parse_args(argv: list[str] | None = None) -> AppArguments:
    (args,) = parse_dataclasses(parser_for([AppArguments], prog=PROG, description="A web demo of a Sentio run."), argv)
    if args.port is not None and not 0 < args.port < 65536:
        raise ArgumentError(f"--port must be in 1..65535, got {args.port}")
    return args


def load_predictor(model_dir: str) -> "EmotionPredictor":
    """The run to demo; the default one is trained by `make demo`, which a fresh clone has not run yet."""
    if model_dir == DEFAULT_RUN and not Path(model_dir).exists():
        raise MissingFileError(f"the demo model {DEFAULT_RUN} does not exist yet: run `make demo` to train it "
                               "(minutes on a CPU), or pass --model_dir RUN")
    import transformers

    from sentio.inference import EmotionPredictor

    transformers.utils.logging.disable_progress_bar()  # a weights bar in the server log is noise
    return EmotionPredictor.from_pretrained(model_dir)


def demo_clips(demo_dir: str | os.PathLike) -> list[str]:
    """One demo corpus clip per quadrant, the one furthest into it by its true labels; [] without a corpus."""
    return [path for path, _ in demo_picks(demo_dir)]


def demo_picks(demo_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """demo_clips with each clip's button label: its quadrant and true label on 1..9 (not a file name)."""
    root = Path(demo_dir)
    if not (root / "truth.csv").is_file():
        return []
    best: dict[str, tuple[float, str, str]] = {}
    with open(root / "truth.csv", newline="") as rows:
        for row in csv.DictReader(rows):
            v, a = (float(x) for x in to_unit([float(row["valence"]), float(row["arousal"])], "1-9"))
            name = str(quadrant(v, a))
            path = root / AUDIO_SUBDIR / f"{row['song_id']}.mp3"
            if path.is_file() and abs(v) + abs(a) > best.get(name, (-1.0, "", ""))[0]:
                label = (f"{name} (true valence {float(row['valence']):.1f}, arousal {float(row['arousal']):.1f} "
                         "on 1..9)")
                best[name] = (abs(v) + abs(a), str(path), label)
    return [best[q][1:] for q in QUADRANTS if q in best]


# ---- what the page shows: plain functions of a result dict -------------------------------------


@dataclass
class Path2D:
    """The emotion over time: window centres (or a dynamic model's 2 Hz curve) and values on [-1, 1]."""

    times: list[float]
    valence: list[float]
    arousal: list[float]
    label: str


def emotion_path(result: dict[str, Any], window_seconds: float) -> Path2D:
    """The 2 Hz curve when the result has one, else one point per window at its centre."""
    if "curve" in result:
        curve = result["curve"]
        return Path2D(list(curve["times"]), list(curve["valence"]), list(curve["arousal"]), "2 Hz curve")
    windows = result.get("timeline", [])
    return Path2D([w["start"] + window_seconds / 2 for w in windows], [w["valence"] for w in windows],
                  [w["arousal"] for w in windows], "windows")


def numbers_markdown(result: dict[str, Any]) -> str:
    """The numbers: valence and arousal on both scales, then the optional fields a run gives."""
    scale = result.get("scale", "[-1, 1]")
    rows = [
        "| | valence | arousal |",
        "|---|---|---|",
        f"| on {scale} | {result['valence']:.4f} | {result['arousal']:.4f} |",
        f"| on 1..9 | {result['valence_1_9']:.4f} | {result['arousal_1_9']:.4f} |",
    ]
    for level, dims in sorted(result.get("intervals", {}).items(), key=lambda item: float(item[0])):
        (vl, vh), (al, ah) = dims["valence"], dims["arousal"]
        rows.append(f"| {level}% interval | {vl:.4f} .. {vh:.4f} | {al:.4f} .. {ah:.4f} |")
    if "spread" in result:
        rows.append(f"| predicted spread (sd) | {result['spread']['valence']:.4f} | {result['spread']['arousal']:.4f} |")
    quadrant = f"**{result['quadrant']}**"
    if "quadrant_probabilities" in result:
        odds = ", ".join(f"{q} {p:.2f}" for q, p in sorted(result["quadrant_probabilities"].items(), key=lambda i: -i[1]))
        quadrant += f" ({odds})"
    return "\n".join(rows) + f"\n\nQuadrant: {quadrant} · {result['num_windows']} windows"


def _new_figure(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure  # the object API: no pyplot state shared between requests

    return Figure(figsize=(width, height), layout="constrained")


def plane_figure(result: dict[str, Any], path: Path2D) -> "Figure":
    """The valence-arousal plane: quadrants, the path over time, the song, its intervals and spread."""
    from matplotlib.patches import Ellipse, Rectangle

    fig = _new_figure(5.2, 5.2)
    ax = fig.add_subplot()
    probabilities = result.get("quadrant_probabilities", {})
    for name, (sv, sa) in CORNERS.items():
        ax.add_patch(Rectangle((min(0, sv), min(0, sa)), 1, 1, color="C2" if name == result["quadrant"] else "0.92",
                               alpha=0.25 if name == result["quadrant"] else 1.0, zorder=0))
        text = name + (f"\n{probabilities[name]:.2f}" if name in probabilities else "")
        ax.text(0.93 * sv, 0.93 * sa, text, ha="right" if sv > 0 else "left", va="top" if sa > 0 else "bottom",
                color="0.35", fontsize=10)
    v, a = result["valence"], result["arousal"]
    for level in INTERVAL_LEVELS:
        if level in result.get("intervals", {}):
            (vl, vh), (al, ah) = result["intervals"][level]["valence"], result["intervals"][level]["arousal"]
            ax.add_patch(Rectangle((vl, al), vh - vl, ah - al, color="C0", alpha=0.12, zorder=1,
                                   label=f"{level}% interval"))
    if "spread" in result:
        sd = result["spread"]
        ax.add_patch(Ellipse((v, a), 2 * sd["valence"], 2 * sd["arousal"], fill=False, ls="--", color="C3",
                             zorder=2, label="predicted spread (±1 sd)"))
    if len(path.times) > 1:
        ax.plot(path.valence, path.arousal, color="0.5", lw=1, zorder=3)
        dots = ax.scatter(path.valence, path.arousal, c=path.times, cmap="viridis", s=18, zorder=4)
        fig.colorbar(dots, ax=ax, shrink=0.7, label=f"time (s), {path.label}")
    ax.scatter([v], [a], marker="*", s=320, color="C3", edgecolor="k", zorder=5, label="song")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal", aspect="equal",
           title=f"{result['quadrant']}: valence {v:+.2f}, arousal {a:+.2f}")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=2, fontsize=8, frameon=False)
    return fig


def timeline_figure(result: dict[str, Any], path: Path2D) -> "Figure":
    """Valence and arousal over time (windows or the 2 Hz curve), the song's means as dashed lines."""
    fig = _new_figure(7.0, 3.0)
    ax = fig.add_subplot()
    for name, values, color in (("valence", path.valence, "C0"), ("arousal", path.arousal, "C1")):
        ax.plot(path.times, values, marker="o" if len(values) < 60 else None, ms=3, color=color, label=name)
        ax.axhline(result[name], color=color, ls="--", lw=1)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(ylim=(-1, 1), xlabel=f"time (s), {path.label}", ylabel="on [-1, 1]")
    right = ax.secondary_yaxis("right", functions=(lambda x: from_unit(x, "1-9"), lambda y: to_unit(y, "1-9")))
    right.set_ylabel("on 1..9")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def json_download(name: str, result: dict[str, Any], folder: str | os.PathLike) -> Path:
    """The JSON file predict.py --timeline --output x.json writes for this one file."""
    from sentio.inference.library import record

    path = Path(folder) / f"{Path(name).stem}.emotion.json"
    path.write_text(json.dumps([record(name, result)], indent=2) + "\n", encoding="utf-8")
    return path


# ---- the page ----------------------------------------------------------------------------------


@dataclass
class Shown:
    """What one analysis puts on the page, in the order of the page's outputs."""

    status: str = ""
    numbers: str = ""
    plane: Any = None
    timeline: Any = None
    download: str | None = None

    def outputs(self) -> tuple:
        return self.status, self.numbers, self.plane, self.timeline, self.download


def analyse(predictor: "EmotionPredictor", audio_path: str | None, downloads: str | os.PathLike,
            name: str | None = None) -> Shown:
    """Everything the page shows for one file (its JSON written under `downloads`); an unreadable
    one gives only a message."""
    from sentio.features.audio import AudioError

    if not audio_path:
        return Shown()
    name = name or Path(audio_path).name
    try:
        result = predictor.predict(audio_path, timeline=True)
    except AudioError as exc:
        return Shown(status=f"**Cannot read {name}**: {exc.reason}. Try a WAV, FLAC, OGG or MP3 file.")
    path = emotion_path(result, predictor.extractor.params.window_duration)
    download = json_download(name, result, tempfile.mkdtemp(dir=downloads))  # a folder per request: same names
    # the demo-corpus note is on the page once (its header); a padded clip is said here
    notes = [note for note in result.get("notes", []) if note != DEMO_NOTE]
    return Shown(status=" ".join(f"**Note:** {note}." for note in notes), numbers=numbers_markdown(result),
                 plane=plane_figure(result, path),
                 timeline=timeline_figure(result, path), download=str(download))


def build_app(predictor: "EmotionPredictor", model_name: str, examples: list[str],
              example_labels: list[str] | None = None) -> "gr.Blocks":
    import gradio as gr

    window = predictor.extractor.params.window_duration
    demo = f"\n\n**Note:** {DEMO_NOTE}." if predictor.trained_on_demo else ""
    downloads = tempfile.TemporaryDirectory(prefix="sentio-app-")  # removed with the app's process
    with gr.Blocks(title="Sentio: the emotion of music", analytics_enabled=False) as app:
        gr.Markdown(f"# Sentio: the emotion of music\nModel `{model_name}`: valence (negative … positive) and "
                    f"arousal (calm … excited) from {window:.2f} s windows, averaged over the song.{demo}")
        with gr.Row():
            with gr.Column(scale=2):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song", elem_id="song")
                if examples:
                    gr.Examples(examples, inputs=audio, label="Demo corpus clips (one per quadrant)",
                                example_labels=example_labels)
                status = gr.Markdown(elem_id="status")
                numbers = gr.Markdown(elem_id="numbers")
                download = gr.File(label="JSON (as predict.py writes it)", elem_id="download")
            with gr.Column(scale=3):
                plane = gr.Plot(label="Valence-arousal plane", elem_id="plane")
                timeline = gr.Plot(label="Over time", elem_id="timeline")
        audio.change(lambda path: analyse(predictor, path, downloads.name).outputs(), inputs=audio,
                     outputs=[status, numbers, plane, timeline, download], api_name="predict")
    return app


def main() -> int:
    args = parse_args()
    predictor = load_predictor(args.model_dir)
    picks = demo_picks(args.demo_dir)
    app = build_app(predictor, args.model_dir, [path for path, _ in picks], [label for _, label in picks])
    # server_port None: Gradio reads GRADIO_SERVER_PORT itself (and GRADIO_SERVER_NAME for the host)
    app.launch(server_port=args.port, allowed_paths=[str(Path(args.demo_dir).resolve())])
    return 0


if __name__ == "__main__":
    run_cli(main, PROG)
