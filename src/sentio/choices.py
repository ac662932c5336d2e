"""The named choices Sentio's models implement and its command lines offer, in one place that
imports nothing heavy (argument parsing and `--help` read them without loading torch)."""

POOLING_MODES = ("mean", "sum", "max", "cls", "cls_dist")
LOSSES = ("mse", "ccc", "mse+ccc")
TRAIN_WINDOWS = ("random", "all")
STUDENT_ARCHITECTURES = ("cnn", "mobilevit")
# How a run picks the encoder layer its head reads: the last one, a learned softmax-weighted sum of
# all of them (MARBLE's "weighted"), or an index into the hidden states (0 = the embeddings).
LAYER_LAST, LAYER_WEIGHTED = "last", "weighted"
# What a run learns: one value per window (the song's label), one per half-second (2 Hz labels), or
# both losses at once.
TARGET_STATIC, TARGET_DYNAMIC, TARGET_BOTH = "static", "dynamic", "both"
TRAINING_TARGETS = (TARGET_STATIC, TARGET_DYNAMIC, TARGET_BOTH)
