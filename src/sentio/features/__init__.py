"""Audio decoding, feature parameters and extraction, the on-disk feature cache, and the
torch Datasets and collators that read it."""
