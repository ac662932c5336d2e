"""Conditional GAN on train-split spectrogram features: models, training, the synthetic split, quality."""
