"""A web demo: hear a song's emotion in the browser (Gradio).

    python app.py                                              # the demo run (`make demo` trains it)
    python app.py --model_dir runs/student-cnn/student.int8.onnx --port 7860

Upload or record audio, or pick a demo corpus clip; the page shows the song on the
valence-arousal plane with its quadrant (and its intervals when the run is calibrated), the
windows (or the 2 Hz curve of a dynamic model) as a path on the plane and as curves over time,
the numbers on [-1, 1] and on DEAM's 1..9, and the JSON predict.py writes for the file. Without
--port it listens where GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say, like any Gradio app; the
HTTP API (`gradio_client`) stays on: `Client(url).predict(handle_file("song.mp3"), api_name="/predict")`.

Uploads come from strangers: the server listens on 127.0.0.1 unless --host (or GRADIO_SERVER_NAME)
says otherwise, refuses uploads over --max_file_size, analyses at most the first --max_duration
seconds of a file, runs --concurrency analyses at once with one model shared by all of them, keeps
at most --queue_size requests waiting (the next one is told "The demo is busy: N requests are
waiting; try again in a minute.", on the page and as gradio_client's ValidationError), deletes each
upload as soon as the request that analysed it ends, offers each JSON download for --keep_files
seconds, and serves only its own temporary files and the demo clips.

The life of a request's files:
- the upload: Gradio stores it in its cache folder when the page (or gradio_client) sends it; the
  request that analyses it deletes it when it ends, answer or error (sentio.demo.serving counts the
  uploads of each path, since Gradio gives identical bytes one path). An upload no request ever
  analyses is deleted by Gradio's sweep after --keep_files seconds;
- the figures are drawn in memory and sent inline (no file);
- the JSON download is the one file Sentio writes: straight into its request's own folder inside
  Gradio's cache (so Gradio serves it without a copy), offered while the page may still be open,
  and deleted with its folder after --keep_files seconds; everything is deleted at exit.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentio.choices import DEMO_NOTE
from sentio.cli import parse_dataclasses, parser_for, run_cli
from sentio.data.labels import QUADRANTS, from_unit, quadrant, to_unit
from sentio.demo import DEFAULT_DEMO_DIR
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
    host: str | None = field(default=None, metadata={
        "help": "Address to listen on (default: GRADIO_SERVER_NAME, else 127.0.0.1: this machine only). "
                "0.0.0.0 serves the network: read SECURITY.md first."})
    concurrency: int = field(default=2, metadata={
        "help": "Analyses run at once (threads sharing the one model); more requests wait in the queue."})
    queue_size: int = field(default=16, metadata={
        "help": "Requests that may wait; the next one is told the demo is busy."})
    max_duration: float = field(default=600.0, metadata={
        "help": "Seconds of each upload that are analysed (a longer file is cut, and the page says so)."})
    max_file_size: str = field(default="50mb", metadata={
        "help": "Largest upload Gradio accepts, e.g. 50mb or 1gb (a larger one is refused before it is stored)."})
    keep_files: float = field(default=600.0, metadata={
        "help": "Seconds a JSON download stays offered, and an upload no request analysed is kept (then deleted; "
                "all at exit). An analysed upload is deleted as soon as its request ends."})

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise ArgumentError(f"--port must be in 1..65535, got {self.port}")
        for name in ("concurrency", "queue_size"):
            if getattr(self, name) < 1:
                raise ArgumentError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_duration", "keep_files"):
            if not getattr(self, name) > 0:
                raise ArgumentError(f"--{name} must be a positive number of seconds, got {getattr(self, name)}")
        if not re.fullmatch(r"\d+\s*(b|kb|mb|gb|tb)?", self.max_file_size.strip().lower()):
            raise ArgumentError(f"--max_file_size must be a size like 50mb or 1gb, got {self.max_file_size!r}")


def parse_args(argv: list[str] | None = None) -> AppArguments:
    (args,) = parse_dataclasses(parser_for([AppArguments], prog=PROG, description="A web demo of a Sentio run."), argv)
    return args


def load_predictor(model_dir: str, max_duration: float | None = None) -> "EmotionPredictor":
    """The run to demo; the default one is trained by `make demo`, which a fresh clone has not run yet."""
    if model_dir == DEFAULT_RUN and not Path(model_dir).exists():
        raise MissingFileError(f"the demo model {DEFAULT_RUN} does not exist yet: run `make demo` to train it "
                               "(minutes on a CPU), or pass --model_dir RUN")
    import transformers

    from sentio.inference import EmotionPredictor

    transformers.utils.logging.disable_progress_bar()  # a weights bar in the server log is noise
    return EmotionPredictor.from_pretrained(model_dir, max_duration=max_duration)


def demo_clips(demo_dir: str | os.PathLike) -> list[str]:
    """One demo corpus clip per quadrant, the one furthest into it by its true labels; [] without a corpus."""
    return [path for path, _ in demo_picks(demo_dir)]


def demo_picks(demo_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """demo_clips with each clip's button label: its quadrant and true label on 1..9 (not a file name)."""
    from sentio.demo.deam_files import AUDIO_SUBDIR  # here: its DEAM reader imports pandas, which --help skips

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
    from sentio.inference.writers import record

    # the upload's name is a stranger's text: letters, digits, - and _ only, never a path
    stem = re.sub(r"[^\w-]+", "_", Path(name.replace("\\", "/")).stem).strip("_")[:80] or "song"
    path = Path(folder) / f"{stem}.emotion.json"
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


def escape_markdown(text: str) -> str:
    """A stranger's text (a file name) shown as itself in Markdown: no links, emphasis or HTML."""
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text).replace("<", "&lt;")


def sweep(folder: str | os.PathLike, older_than: float) -> None:
    """Delete the entries of `folder` last changed more than `older_than` seconds ago."""
    now = time.time()
    for entry in Path(folder).iterdir():
        try:
            if now - entry.stat().st_mtime > older_than:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError:  # another request removed it first
            continue


def analyse(predictor: "EmotionPredictor", audio_path: str | None, downloads: str | os.PathLike,
            name: str | None = None) -> Shown:
    """Everything the page shows for one file (its JSON written under `downloads`); an unreadable
    one gives only a message. A file longer than the predictor's max_duration is analysed up to
    it, and the status says so."""
    from sentio.features.audio import AudioError

    if not audio_path:
        return Shown()
    name = name or Path(audio_path).name
    shown_name = escape_markdown(name)
    try:
        result = predictor.predict(audio_path, timeline=True)
    except AudioError as exc:
        return Shown(status=f"**Cannot read {shown_name}**: {exc.reason}. Try a WAV, FLAC, OGG or MP3 file.")
    path = emotion_path(result, predictor.extractor.params.window_duration)
    download = json_download(name, result, tempfile.mkdtemp(dir=downloads))  # a folder per request: same names
    status = ""
    if "cut_at" in result:
        status = (f"**Only the first {result['cut_at']:g} s of {shown_name} were analysed** "
                  "(this demo's limit per file; `predict.py` has none unless given --max_duration).")
    # the demo-corpus note is on the page once (its header); a padded clip is said here
    notes = [note for note in result.get("notes", []) if note != DEMO_NOTE]
    status = " ".join([status, *(f"**Note:** {note}." for note in notes)]).strip()
    return Shown(status=status, numbers=numbers_markdown(result), plane=plane_figure(result, path),
                 timeline=timeline_figure(result, path), download=str(download))


def busy_message(waiting: int) -> str:
    """What a request that finds the queue full is told."""
    return f"The demo is busy: {waiting} requests are waiting; try again in a minute."


def build_app(predictor: "EmotionPredictor", model_name: str, examples: list[str], concurrency: int = 2,
              queue_size: int = 16, keep_files: float = 600.0, example_labels: list[str] | None = None) -> "gr.Blocks":
    """The page, its queue (`concurrency` analyses at once on the one `predictor`, `queue_size`
    waiting, the next one told the demo is busy) and its temporary files (each upload deleted when
    its request ends, JSON downloads after `keep_files` s: the module's docstring says why).
    `app.upload_claims` must see the upload route: launch with `middleware(app)`."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    from sentio.demo.serving import Admission, UploadClaims, give_back_memory

    window = predictor.extractor.params.window_duration
    demo = f"\n\n**Note:** {DEMO_NOTE}." if predictor.trained_on_demo else ""
    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    # inside Gradio's cache, so Gradio serves the JSON as it is instead of copying it; removed at exit
    downloads = tempfile.TemporaryDirectory(prefix="sentio-app-", dir=cache)
    claims = UploadClaims(keep_files)
    admission = Admission(queue_size)
    keep = max(1, round(keep_files))
    # Gradio deletes what is left of its uploads and outputs every `keep` s once older than `keep` s (all at exit)
    with gr.Blocks(title="Sentio: the emotion of music", analytics_enabled=False, delete_cache=(keep, keep)) as app:
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
        def admit(song: str | None) -> dict:
            """Runs when a request arrives, before it joins the queue: a full queue is refused in our words."""
            waiting = admission.admit(queued=len(getattr(app, "_queue", ())))  # Gradio's waiting requests
            if waiting is None:
                return gr.validate(True, "")
            claims.release(song)  # refused: this request is done with its upload
            return gr.validate(False, busy_message(waiting))

        def request(song: str | None) -> tuple:
            admission.started()
            try:
                sweep(downloads.name, keep_files)  # the JSON of earlier requests, once old enough
                return analyse(predictor, song, downloads.name).outputs()
            finally:  # answer or error: this request is done with its upload
                claims.release(song)
                give_back_memory()

        audio.change(request, inputs=audio, outputs=[status, numbers, plane, timeline, download], api_name="predict",
                     validator=admit)
    app.downloads = downloads  # kept alive (and removed at exit) with the app
    app.upload_claims = claims
    # admit() refuses past queue_size; Gradio's own limit stays as a backstop
    app.queue(default_concurrency_limit=concurrency, max_size=2 * queue_size + concurrency)
    return app


def middleware(app: "gr.Blocks") -> list:
    """The ASGI middleware the server needs for `app` (launch(app_kwargs={"middleware": ...}))."""
    from starlette.middleware import Middleware

    from sentio.demo.serving import ClaimUploads

    return [Middleware(ClaimUploads, claims=app.upload_claims)]


def main() -> int:
    args = parse_args()
    predictor = load_predictor(args.model_dir, args.max_duration)
    import torch

    # the analyses running at once share the cores instead of each spreading over all of them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.concurrency))
    picks = demo_picks(args.demo_dir)
    app = build_app(predictor, args.model_dir, [path for path, _ in picks], args.concurrency, args.queue_size,
                    args.keep_files, [label for _, label in picks])
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    # server_port None: Gradio reads GRADIO_SERVER_PORT itself. Only the demo clips are served
    # besides Gradio's own temporary files.
    app.launch(server_name=host, server_port=args.port, max_file_size=args.max_file_size.strip().lower(),
               allowed_paths=[str(Path(args.demo_dir).resolve())], app_kwargs={"middleware": middleware(app)})
    return 0


if __name__ == "__main__":
    run_cli(main, PROG)
