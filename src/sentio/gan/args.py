"""Arguments of train_gan.py (the data arguments are train.py's own DataArguments)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GanArguments:
    """Which features the GAN imitates, how it trains, what it writes."""

    output_dir: str = field(default="runs/gan", metadata={"help": "Where the GAN, the synthetic split and reports go."})
    model: str = field(default="ast", metadata={"help": "Backbone whose features to imitate: ast or vit (not wav2vec2)."})
    checkpoint: str | None = field(
        default=None, metadata={"help": "Local folder whose config fixes the feature shape (e.g. a train.py run)."})
    max_length: int | None = field(default=None, metadata={"help": "AST: frames per window (as train.py)."})
    window_seconds: float | None = field(default=None, metadata={"help": "ViT: seconds per window (as train.py)."})
    epochs: int = field(default=50, metadata={"help": "GAN training epochs (over the full train windows)."})
    num_synthetic: int = field(default=3200, metadata={"help": "Synthetic windows to write."})
    batch_size: int = field(default=32, metadata={"help": "GAN batch size."})
    lr_g: float = field(default=2e-4, metadata={"help": "Generator learning rate (Adam)."})
    lr_d: float = field(default=2e-4, metadata={"help": "Discriminator learning rate."})
    adam_beta1: float = field(default=0.5, metadata={"help": "Adam beta1 of both networks."})
    adam_beta2: float = field(default=0.999, metadata={"help": "Adam beta2 of both networks."})
    ema_decay: float = field(default=0.999, metadata={"help": "Decay of the generator's weight average."})
    diff_augment: str = field(default="gain,translation,cutout",
                              metadata={"help": "DiffAugment policies (comma list; 'none' for none)."})
    gan_height: int = field(default=64, metadata={"help": "Mel bins at GAN resolution (features are area-averaged)."})
    gan_width: int = field(default=64, metadata={"help": "Time frames at GAN resolution."})
    gan_channels: int = field(default=32, metadata={"help": "Base channel width of G and D (doubles per level)."})
    z_dim: int = field(default=128, metadata={"help": "Noise dimension."})
    label_jitter: float = field(default=0.05, metadata={"help": "Std of the noise added to drawn train labels."})
    seed: int = field(default=0, metadata={"help": "Seed of training, labels and samples."})
    resume: bool = field(default=True, metadata={"help": "Continue from the checkpoint in --output_dir if present."})
    num_audio: int = field(default=4, metadata={"help": "Synthetic (and real) windows rendered to WAV by Griffin-Lim."})
    num_grid: int = field(default=6, metadata={"help": "Rows of the real-vs-synthetic PNG grid."})
    regressor: str | None = field(
        default=None, metadata={"help": "A train.py output folder: embeddings and label consistency for the quality report."})
    tstr_epochs: int = field(default=0, metadata={"help": "Train-on-synthetic-test-on-real epochs (0 = skip)."})
    quality_samples: int = field(default=500, metadata={"help": "At most this many windows per set in quality metrics."})
    num_threads: int = field(default=0, metadata={
        "help": "torch CPU threads (0 = torch's default). The GAN's small convolutions run far slower on 2 threads "
                "than on 1 when the cores are busy with other work."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
