"""The web demo: what the page shows for a result (optional fields included), bad input, its HTTP
API, and a real browser (headless Chromium) uploading files the test wrote."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference import EmotionPredictor
from sentio.models import build_model
from tests.conftest import REPO, write_audio
from tests.helpers import CALIBRATED, free_port, run_script
from tests.tiny import TINY

sys.path.insert(0, str(REPO))
import app  # noqa: E402  (the script at the repository root)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny AST run whose head is scaled up, so songs get values far from 0 and from each other."""
    folder = tmp_path_factory.mktemp("app_run")
    torch.manual_seed(0)
    model = build_model("ast", from_scratch=True, config_overrides=TINY["ast"])
    with torch.no_grad():
        model.head.out_proj.weight.mul_(40.0)
        model.head.out_proj.bias.copy_(torch.tensor([0.3, -0.2]))
    model.save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def predictor(run) -> EmotionPredictor:
    return EmotionPredictor.from_pretrained(run, device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app_audio")
    broken = root / "broken.wav"
    broken.write_text("this is not audio\n")
    return {"song": write_audio(root / "song.wav", 4.3, 22050, 2, seed=3), "broken": broken}


def test_page_shows_todays_result(run, predictor, files, tmp_path, monkeypatch, capsys):
    result = predictor.predict(files["song"], timeline=True)
    shown = app.analyse(predictor, str(files["song"]), tmp_path)
    assert shown.status == ""
    assert f"| on [-1, 1] | {result['valence']:.4f} | {result['arousal']:.4f} |" in shown.numbers
    assert f"| on 1..9 | {result['valence_1_9']:.4f} | {result['arousal_1_9']:.4f} |" in shown.numbers
    assert f"Quadrant: **{result['quadrant']}** · {result['num_windows']} windows" in shown.numbers
    assert "interval" not in shown.numbers and "spread" not in shown.numbers
    window = predictor.extractor.params.window_duration
    path = app.emotion_path(result, window)
    assert path.label == "windows" and path.times[:2] == pytest.approx([window / 2, 1.5 * window])  # windows' centres
    plane = shown.plane.axes[0]
    assert plane.get_title().startswith(result["quadrant"])
    np.testing.assert_allclose(plane.lines[0].get_xydata(), np.c_[path.valence, path.arousal])
    over_time = shown.timeline.axes[0]
    np.testing.assert_allclose(over_time.lines[0].get_xydata(), np.c_[path.times, path.valence])
    # the download is what predict.py --timeline --output x.json writes for the file
    (downloaded,) = json.loads(Path(shown.download).read_text())
    out = tmp_path / "predicted.json"
    assert run_script(monkeypatch, "predict.py", "--model_dir", str(run), str(files["song"]), "--timeline",
                      "--output", str(out)) == 0
    (written,) = json.loads(out.read_text())
    assert downloaded == {**written, "file": "song.wav"}


def test_page_shows_the_optional_fields_of_a_calibrated_dynamic_run():
    result = {"valence": 0.2, "arousal": -0.05, "valence_1_9": 5.8, "arousal_1_9": 4.8, "quadrant": "calm",
              "num_windows": 3, "timeline": [{"start": 0.0, "valence": 0.1, "arousal": 0.0}], **CALIBRATED}
    numbers = app.numbers_markdown(result)
    assert "| 80% interval | 0.1000 .. 0.3000 | -0.1500 .. 0.0500 |" in numbers
    assert numbers.index("80% interval") < numbers.index("90% interval") < numbers.index("95% interval")
    assert "| predicted spread (sd) | 0.2100 | 0.1700 |" in numbers
    assert "Quadrant: **calm** (calm 0.40, happy 0.30, sad 0.20, tense 0.10)" in numbers
    path = app.emotion_path(result, window_seconds=10.0)
    assert (path.label, path.times) == ("2 Hz curve", [0.5, 1.0, 1.5, 2.0])  # the curve, not the windows
    plane = app.plane_figure(result, path).axes[0]
    legend = {t.get_text() for t in plane.get_legend().get_texts()}
    assert legend == {"95% interval", "90% interval", "80% interval", "predicted spread (±1 sd)", "song"}
    assert "calm\n0.40" in [t.get_text() for t in plane.texts]
    over_time = app.timeline_figure(result, path).axes[0]
    np.testing.assert_allclose(over_time.lines[0].get_xydata(), np.c_[path.times, path.valence])
    assert over_time.get_xlabel() == "time (s), 2 Hz curve"


def test_an_unreadable_upload_is_a_message(predictor, files, tmp_path):
    shown = app.analyse(predictor, str(files["broken"]), tmp_path)
    assert shown.status == "**Cannot read broken.wav**: corrupt or not an audio file (cannot decode it). " \
                           "Try a WAV, FLAC, OGG or MP3 file."
    assert (shown.numbers, shown.plane, shown.download) == ("", None, None)


def test_bad_input_is_one_line_and_exit_2(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a fresh clone: no runs/ast-demo yet
    cases = [
        ([], "app.py: error: the demo model runs/ast-demo does not exist yet: run `make demo` to train it"),
        (["--model_dir", str(tmp_path)], "has no config.json"),
        (["--model_dir", str(run), "--port", "0"], "--port must be in 1..65535, got 0"),
    ]
    for args, message in cases:
        code, err = run_script(monkeypatch, "app.py", *args), capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_demo_clips_one_per_quadrant(tmp_path):
    audio = tmp_path / "DEAM_audio" / "MEMD_audio"
    audio.mkdir(parents=True)
    rows = ["song_id,valence,arousal", "1,7,7", "2,8,8.5", "3,2,7", "4,3,3", "5,6,2", "6,9,1"]
    for row in rows[1:]:
        (audio / f"{row.split(',')[0]}.mp3").write_bytes(b"")
    (tmp_path / "truth.csv").write_text("\n".join(rows) + "\n")
    assert [Path(p).stem for p in app.demo_clips(tmp_path)] == ["2", "3", "4", "6"]  # happy, tense, sad, calm
    assert app.demo_clips(tmp_path / "missing") == []
    # the buttons say the quadrant and the true label, not the file name
    labels = [label for _, label in app.demo_picks(tmp_path)]
    assert labels[0] == "happy (true valence 8.0, arousal 8.5 on 1..9)" and labels[3].startswith("calm (")


def test_the_page_says_a_demo_model_once_and_a_padded_clip(run, tmp_path):
    import json as json_module

    from sentio.choices import DEMO_NOTE

    demo_run = tmp_path / "demo_run"
    shutil.copytree(run, demo_run)
    config = json_module.loads((demo_run / "config.json").read_text())
    (demo_run / "config.json").write_text(json_module.dumps({**config, "trained_on_demo_corpus": True}))
    predictor = EmotionPredictor.from_pretrained(demo_run, device="cpu")
    page = app.build_app(predictor, str(demo_run), [])
    assert sum(DEMO_NOTE in str(getattr(block, "value", "")) for block in page.blocks.values()) == 1
    short = write_audio(tmp_path / "short.wav", 0.3, 16000, seed=1)
    shown = app.analyse(predictor, str(short), tmp_path)
    assert "shorter than one window" in shown.status and DEMO_NOTE not in shown.status


class Server(str):
    """The server's URL, with its process and log."""

    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def server(run, tmp_path_factory):
    """app.py on a free localhost port, as a user starts it (host left to its default), with small
    limits for the hostile-upload tests: 2 MB uploads, 60 s per file, one analysis at a time and
    two waiting."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(log.parent / "gradio")}  # its own cache
    env.pop("GRADIO_SERVER_NAME", None)
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "app.py", "--model_dir", str(run), "--port", str(port),
                                    "--demo_dir", str(log.parent), "--max_file_size", "2mb", "--max_duration", "60",
                                    "--concurrency", "1", "--queue_size", "2"],
                                   cwd=REPO, env=env, stdout=sink, stderr=sink)
    url = Server(f"http://127.0.0.1:{port}/")
    url.process, url.log = process, log
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _values(numbers: str) -> dict[str, list[float]]:
    """{row label: [valence, arousal]} from the numbers table's markdown or its cells' text."""
    rows = {}
    for line in numbers.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("on "):
            rows[cells[0]] = [float(cells[1]), float(cells[2])]
    return rows


def _expected(predictor: EmotionPredictor, path: Path) -> dict[str, list[float]]:
    result = predictor.predict(path)
    return {"on [-1, 1]": [result["valence"], result["arousal"]], "on 1..9": [result["valence_1_9"], result["arousal_1_9"]]}


@pytest.mark.slow
def test_http_api_for_gradio_client(server, predictor, files):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    status, numbers, *_, download = client.predict(handle_file(str(files["song"])), api_name="/predict")
    assert status == ""
    for row, values in _expected(predictor, files["song"]).items():
        np.testing.assert_allclose(_values(numbers)[row], values, atol=6e-5)  # shown with 4 decimals
    assert json.loads(Path(download).read_text())[0]["file"] == "song.wav"
    status, numbers, *_ = client.predict(handle_file(str(files["broken"])), api_name="/predict")
    assert status.startswith("**Cannot read broken.wav**") and numbers == ""


@pytest.fixture
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium and ChromeDriver here (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _upload(driver, url: str, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    field = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "#song input[type=file]"))
    field.send_keys(str(path))


def _text_of(driver, selector: str, appears: str) -> str:
    """The text of the element at `selector` once it contains `appears`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text(d) -> str | None:
        value = d.find_element(By.CSS_SELECTOR, selector).text
        return value if appears in value else None

    return WebDriverWait(driver, 90).until(text)


@pytest.mark.slow
def test_browser_shows_the_predictors_values_and_a_message_for_a_broken_file(server, browser, predictor, files):
    from selenium.webdriver.common.by import By

    _upload(browser, server, files["song"])
    _text_of(browser, "#numbers", "Quadrant:")
    cells = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "#numbers table tr"):
        texts = [c.text for c in row.find_elements(By.CSS_SELECTOR, "td")]
        if len(texts) == 3:
            cells[texts[0]] = [float(texts[1]), float(texts[2])]
    for row, values in _expected(predictor, files["song"]).items():
        np.testing.assert_allclose(cells[row], values, atol=6e-5)  # the values shown, 4 decimals
    result = predictor.predict(files["song"])
    assert f"Quadrant: {result['quadrant']}" in browser.find_element(By.CSS_SELECTOR, "#numbers").text
    assert browser.find_elements(By.CSS_SELECTOR, "#plane img, #plane canvas, #plane svg")  # the plane is drawn
    assert "song.emotion" in _text_of(browser, "#download", "song.emotion")  # the JSON to download

    _upload(browser, server, files["broken"])
    message = _text_of(browser, "#status", "Cannot read")
    assert message.startswith("Cannot read broken.wav: corrupt or not an audio file"), message
    assert "Traceback" not in browser.page_source


# ---- hostile uploads, through a real Gradio client ---------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _silence(path: Path, hours: float, rate: int = 8000) -> Path:
    """Hours of silence as FLAC, written a minute at a time: a few hundred KB."""
    import soundfile as sf

    minute = np.zeros(60 * rate, np.float32)
    with sf.SoundFile(path, "w", rate, 1, format="FLAC") as sink:
        for _ in range(round(hours * 60)):
            sink.write(minute)
    return path


@pytest.mark.slow
def test_the_server_listens_on_loopback_only_by_default(server):
    assert f"Running on local URL:  http://127.0.0.1:{server.split(':')[-1].rstrip('/')}" in server.log.read_text()
    assert app.parse_args(["--model_dir", "x"]).host is None  # then GRADIO_SERVER_NAME, else 127.0.0.1


@pytest.mark.slow
def test_hostile_uploads_are_a_message_and_the_server_keeps_serving(server, predictor, files, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    client.predict(handle_file(str(files["song"])), api_name="/predict")  # warm
    before = _rss_mb(server.process.pid)
    # two hours of silence in a few hundred KB: the duration limit answers within seconds
    silence = _silence(tmp_path / "silence.flac", hours=2.0)
    assert silence.stat().st_size < 600_000
    started = time.monotonic()
    status, numbers, *_ = client.predict(handle_file(str(silence)), api_name="/predict")
    assert time.monotonic() - started < 30
    assert status.startswith("**Only the first 60 s of silence.flac were analysed**") and "Quadrant:" in numbers
    # misleading extensions: text named .mp3 is a message; a FLAC named .wav is read by its content
    fake = tmp_path / "song.mp3"
    fake.write_text("definitely not an mp3\n" * 100)
    status, numbers, *_ = client.predict(handle_file(str(fake)), api_name="/predict")
    assert status.startswith("**Cannot read song.mp3**") and numbers == ""
    disguised = tmp_path / "disguised.wav"
    disguised.write_bytes(write_audio(tmp_path / "real.flac", 2.0, 22050).read_bytes())
    status, numbers, *_ = client.predict(handle_file(str(disguised)), api_name="/predict")
    assert status == "" and "Quadrant:" in numbers
    # shell characters in the name: nothing runs, the download's name is plain
    shell = tmp_path / "$(touch pwned);`id`|x&y.wav"
    shutil.copyfile(files["song"], shell)
    status, numbers, *_, download = client.predict(handle_file(str(shell)), api_name="/predict")
    assert status == "" and "Quadrant:" in numbers
    assert re.fullmatch(r"[\w-]+\.emotion\.json", Path(download).name), download
    assert not (REPO / "pwned").exists() and not Path("pwned").exists()
    # the server still serves, and its memory stayed flat
    status, numbers, *_ = client.predict(handle_file(str(files["song"])), api_name="/predict")
    for row, values in _expected(predictor, files["song"]).items():
        np.testing.assert_allclose(_values(numbers)[row], values, atol=6e-5)
    assert _rss_mb(server.process.pid) - before < 150, (before, _rss_mb(server.process.pid))


@pytest.mark.slow
def test_an_upload_over_the_size_limit_is_refused_before_it_is_stored(server, files, tmp_path):
    import httpx
    from gradio_client import Client, handle_file

    big = tmp_path / "big.wav"
    big.write_bytes(os.urandom(3 << 20))
    client = Client(server, verbose=False)
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        client.predict(handle_file(str(big)), api_name="/predict")
    # a client that does not check first: the server refuses the upload itself
    with open(big, "rb") as body:
        answer = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.wav", body, "audio/wav")}, timeout=60)
    assert answer.status_code == 413, (answer.status_code, answer.text[:200])
    status, *_ = client.predict(handle_file(str(files["song"])), api_name="/predict")
    assert status == ""


@pytest.mark.slow
def test_only_its_own_files_are_served(server):
    import httpx

    for path in ("/etc/passwd", str(REPO / "README.md"), "../../../../etc/passwd"):
        answer = httpx.get(f"{server}gradio_api/file={path}", timeout=30)
        assert answer.status_code in (403, 404), (path, answer.status_code)


@pytest.mark.slow
def test_a_full_queue_is_refused_as_busy(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import ValidationError

    slow = _silence(tmp_path / "minute.flac", hours=1 / 60)  # a minute: some work per request
    client = Client(server, verbose=False)
    jobs = [client.submit(handle_file(str(slow)), api_name="/predict") for _ in range(10)]
    done, busy = 0, 0
    for job in jobs:
        try:
            job.result(timeout=120)
            done += 1
        except ValidationError as error:  # our words, not Gradio's "Queue is full"
            assert str(error).endswith("- song: The demo is busy: 2 requests are waiting; try again in a minute."), error
            busy += 1
    assert done >= 1 and busy >= 1, (done, busy)  # one running, two waiting: the rest are told
    assert "Quadrant:" in client.predict(handle_file(str(slow)), api_name="/predict")[1]  # and it goes on


@pytest.mark.slow
def test_the_page_shows_the_busy_message_when_the_queue_is_full(server, browser, files, tmp_path):
    """What a person sees: with the queue kept full by other clients, their upload is answered on
    the page with the busy message, not a spinner that never ends or Gradio's own words."""
    from gradio_client import Client, handle_file
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    slow = _silence(tmp_path / "minute.flac", hours=1 / 60)
    client = Client(server, verbose=False)
    browser.get(server)
    field = WebDriverWait(browser, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "#song input[type=file]"))
    stop, jobs = threading.Event(), []

    def keep_the_queue_full() -> None:  # others' requests, arriving faster than one slot serves them
        while not stop.is_set():
            jobs.append(client.submit(handle_file(str(slow)), api_name="/predict"))
            time.sleep(0.05)

    flood = threading.Thread(target=keep_the_queue_full, daemon=True)
    flood.start()
    try:
        time.sleep(1.0)
        field.send_keys(str(files["song"]))
        shown = WebDriverWait(browser, 90).until(
            lambda d: "The demo is busy" in d.find_element(By.TAG_NAME, "body").text)
    finally:
        stop.set()
        flood.join()
        for job in jobs:
            with contextlib.suppress(Exception):  # refused ones raise at once; the admitted ones finish
                job.result(timeout=120)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert shown and re.search(r"The demo is busy: \d+ requests are waiting; try again in a minute\.", body), body
    assert "Queue is full" not in body and "Traceback" not in browser.page_source


def test_a_hostile_name_never_becomes_a_path(predictor, files, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shown = app.analyse(predictor, str(files["song"]), downloads, name="../../etc/passwd\\x<b>*y*.wav")
    download = Path(shown.download)
    assert download.resolve().parent.parent == downloads.resolve()  # inside its request's folder
    assert download.name == "x_b_y.emotion.json"
    assert app.escape_markdown("x<b>*y*[z](u)") == "x&lt;b>\\*y\\*\\[z\\](u)"


# ---- the life of a request's files -------------------------------------------------------------


def _uploads_left(server) -> list[Path]:
    """The files in the server's Gradio cache other than the JSON downloads it still offers."""
    cache = server.log.parent / "gradio"
    return sorted(p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".emotion.json"))


def test_each_upload_is_deleted_when_its_request_ends(server, predictor, files, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    others = [write_audio(tmp_path / f"other{i}.wav", 2.0, 16000, seed=10 + i) for i in range(2)]
    clients = [Client(server, verbose=False) for _ in range(3)]
    # clients upload the same bytes at once (Gradio gives them one path) and other songs, twice; two
    # at a time, so that one analysing and one waiting never fill the queue of two
    jobs = [(c, files["song"]) for c in clients] + [(clients[i], others[i]) for i in range(2)]

    def one(job) -> tuple:
        client, path = job
        return client.predict(handle_file(str(path)), api_name="/predict")

    with ThreadPoolExecutor(2) as pool:
        for _ in range(2):
            answers = list(pool.map(one, jobs[:3])) + list(pool.map(one, jobs[3:]))
            assert all("Quadrant:" in numbers for _, numbers, *_ in answers), [a[0] for a in answers]
    status, *_ = clients[0].predict(handle_file(str(files["broken"])), api_name="/predict")  # an error ends it too
    assert status.startswith("**Cannot read broken.wav**")
    assert _uploads_left(server) == []
    # the JSON downloads the pages show are still offered, each in its request's folder
    offered = list((server.log.parent / "gradio").rglob("*.emotion.json"))
    assert len(offered) >= 10 and all(p.parent.parent.name.startswith("sentio-app-") for p in offered)


def test_upload_claims_delete_only_the_last_upload_of_a_path(tmp_path):
    from sentio.demo.serving import UploadClaims, give_back_memory

    claims = UploadClaims(keep=600)
    upload = tmp_path / "abc" / "song.wav"
    upload.parent.mkdir()
    upload.write_bytes(b"x")
    claims.claim([str(upload), str(upload)])  # two users sent the same bytes
    assert claims.release(upload) is False and upload.exists()  # the second one still waits
    assert claims.release(upload) is True and not upload.parent.exists()  # the last one: file and folder
    # a file no upload handed out (a demo clip) is never deleted
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"x")
    assert claims.release(clip) is False and clip.exists()
    # released while an upload is in flight (it may be storing the same bytes again): deleted once it
    # ends, unless that upload claimed the path anew
    upload.parent.mkdir()
    upload.write_bytes(b"x")
    claims.claim([str(upload)])
    claims.upload_started()
    assert claims.release(upload) is True and upload.exists()
    claims.claim([str(upload)])
    claims.upload_finished()
    assert upload.exists() and claims.pending(upload) == 1
    claims.upload_started()
    claims.release(upload)
    claims.upload_finished()
    assert not upload.exists()
    # an upload nobody analysed is forgotten after `keep` (Gradio's own sweep deletes the file)
    stale = UploadClaims(keep=0.01)
    stale.claim([str(clip)])
    time.sleep(0.05)
    assert stale.release(tmp_path / "other") is False and len(stale) == 0
    assert give_back_memory() is (sys.platform == "linux")


def test_admission_counts_a_burst_and_forgets_requests_that_left(tmp_path):
    from sentio.demo.serving import Admission

    gate = Admission(limit=2, transit=60)
    # a burst: none of them is in Gradio's queue yet, still only two get in
    assert [gate.admit(queued=0) for _ in range(4)] == [None, None, 2, 2]
    gate.started()  # one got its slot: one more may wait
    assert gate.admit(queued=1) is None and gate.admit(queued=2) == 2
    # two admitted requests whose clients went away before they started: once they are neither in
    # Gradio's queue nor on their way into it, they no longer count
    gone = Admission(limit=2, transit=0.01)
    gone.admit(queued=0), gone.admit(queued=0)
    time.sleep(0.05)
    assert gone.admit(queued=0) is None and gone.waiting == 1
    assert app.busy_message(16) == "The demo is busy: 16 requests are waiting; try again in a minute."
