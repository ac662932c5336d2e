"""Sentio: predict the emotion of music (valence and arousal) from audio."""

__version__ = "0.1.0"
