"""One torch thread: the tiny GAN's convolutions run many times slower on 2 threads on busy cores."""

import torch

torch.set_num_threads(1)
