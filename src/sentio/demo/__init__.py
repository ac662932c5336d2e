"""The demo corpus: synthetic music with known valence/arousal, written in DEAM's layout
(`python -m sentio.demo`)."""
