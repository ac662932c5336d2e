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
# evaluate.py's --split that scores every song of the data, whatever its split column says.
ALL_SPLITS = "all"
# A torch checkpoint's weight files (transformers' SAFE_WEIGHTS_NAME, WEIGHTS_NAME and their sharded
# indexes), safetensors first: written out here so that checking a folder imports nothing.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# The config.json key in which a run records that it was trained on the synthetic demo corpus.
TRAINED_ON_DEMO = "trained_on_demo_corpus"
# Said once where a demo-corpus model predicts (predict.py, the web page, the pipeline) and in each result.
DEMO_NOTE = ("this model was trained on Sentio's synthetic demo corpus, not on rated music: its values, intervals "
             "and quadrant probabilities say little about real songs (train on DEAM, EmoMusic or your own labels)")
