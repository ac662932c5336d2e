"""The demo corpus: synthetic music with known valence/arousal, written in DEAM's layout
(`python -m sentio.demo`)."""

DEFAULT_DEMO_DIR = "data/demo"  # relative to the repo root / cwd (here: the web demo reads it without the corpus code)
