"""Arguments of train_gan.py (the data arguments are train.py's own DataArguments)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ArgumentError

# DiffAugment's policies (gan/train.py implements them), named here so a bad --diff_augment fails at parse time.
POLICIES = ("gain", "translation", "cutout")


@dataclass
class GanArguments:
    """Which features the GAN imitates, how it trains, what it writes."""

    output_dir: str = field(default="runs/gan", metadata={"help": "Where the GAN, the synthetic split and reports go."})
    model: str = field(default="ast", metadata={"help": "Backbone whose features to imitate: one that reads "
                                                "spectrograms (ast, vit, clap; not wav2vec2 or mert)."})
    checkpoint: str | None = field(
        default=None, metadata={"help": "Local folder whose config fixes the feature shape (e.g. a train.py run)."})
    max_length: int | None = field(default=None, metadata={"help": "AST: frames per window (as train.py)."})
    window_seconds: float | None = field(default=None, metadata={"help": "ViT: seconds per window (as train.py)."})
    epochs: int = field(default=50, metadata={"help": "GAN training epochs (over the full train windows)."})
    max_steps: int = field(default=0, metadata={
        "help": "GAN steps instead of --epochs (rounded up to whole epochs; 0 = use --epochs)."})
    train_songs: str | None = field(default=None, metadata={
        "help": "A text file of song ids (one a line): the GAN learns from these train songs only (default: all)."})
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
    aux_weight: float = field(default=0.0, metadata={
        "help": "Auxiliary regression head on D (AC-GAN style): D learns (valence, arousal) of real windows, G is "
                "asked for them on fakes; weight of both losses (0 = no head)."})
    consistency_weight: float = field(default=0.0, metadata={
        "help": "Weight of G's consistency loss: MSE between --guide_regressor's reading of a fake window and its "
                "label (0 = off)."})
    guide_regressor: str | None = field(default=None, metadata={
        "help": "A train.py output folder whose frozen predictions steer the GAN (--consistency_weight, "
                "--filter_consistency). Trained on the GAN's train songs only; use another run as --regressor."})
    filter_consistency: float | None = field(default=None, metadata={
        "help": "Keep only synthetic windows whose --guide_regressor prediction is within this distance of their "
                "label in both dimensions (labels on [-1, 1]; default: keep all)."})
    filter_tries: int = field(default=8, metadata={
        "help": "Windows tried per label before --filter_consistency drops it."})
    regressor: str | None = field(
        default=None, metadata={"help": "A train.py output folder: embeddings and label consistency for the quality "
                                "report and the FD tracked during training."})
    track_every: int = field(default=2, metadata={
        "help": "Measure FD/KID of the EMA generator every N epochs (and after the last); keep the lowest-FD "
                "checkpoint as gan_best.pt (0 = off)."})
    track_samples: int = field(default=256, metadata={"help": "Synthetic and real windows per quality measurement."})
    sample_from: str = field(default="best", metadata={
        "help": "Write the synthetic split from the best-FD checkpoint (best) or the last epoch (last).",
        "choices": ["best", "last"]})
    tstr_epochs: int = field(default=0, metadata={"help": "Train-on-synthetic-test-on-real epochs (0 = skip)."})
    quality_samples: int = field(default=500, metadata={"help": "At most this many windows per set in quality metrics."})
    num_threads: int = field(default=0, metadata={
        "help": "torch CPU threads (0 = torch's default). The GAN's small convolutions run far slower on 2 threads "
                "than on 1 when the cores are busy with other work."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})

    def __post_init__(self) -> None:
        """Flag values that cannot work, and the flags that need another one: refused at parse time,
        before any data work."""
        self.diff_augment_policy()
        if self.epochs < 0 or self.num_synthetic < 1 or self.max_steps < 0:
            raise ArgumentError("--epochs and --max_steps must be >= 0 and --num_synthetic >= 1")
        if self.aux_weight < 0 or self.consistency_weight < 0:
            raise ArgumentError("--aux_weight and --consistency_weight must be >= 0")
        if (self.consistency_weight > 0 or self.filter_consistency is not None) and not self.guide_regressor:
            raise ArgumentError("--consistency_weight and --filter_consistency need --guide_regressor RUN (a train.py "
                                "run trained on the GAN's train songs only)")
        if self.filter_consistency is not None and not (self.filter_consistency > 0 and self.filter_tries >= 1):
            raise ArgumentError("--filter_consistency must be > 0 and --filter_tries >= 1")
        if self.track_every < 0 or self.track_samples < 4:
            raise ArgumentError("--track_every must be >= 0 and --track_samples >= 4")

    def diff_augment_policy(self) -> list[str]:
        """--diff_augment as a list of policies ('none' for none)."""
        text = self.diff_augment
        policy = [] if text.strip().lower() == "none" else [p.strip() for p in text.split(",")]
        if set(policy) - set(POLICIES):
            raise ArgumentError(f"--diff_augment: unknown policy {sorted(set(policy) - set(POLICIES))[0]!r}; "
                                f"use {','.join(POLICIES)}")
        return policy
