"""What every Sentio regression model shares: head config fields, pooling, the head, the output,
and the forward tail (pool -> head -> loss -> output).

A backbone file only says how to encode its inputs and how to turn the collator's
`attention_mask` into a mask over its tokens; everything after the encoder lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from ..data.dynamic import FRAME_SECONDS
from ..choices import (
    LAYER_LAST,
    LAYER_WEIGHTED,
    LOSSES,
    POOLING_MODES,
    TARGET_DYNAMIC,
    TARGET_STATIC,
    TRAINING_TARGETS,
)
from .loss import disagreement_loss, masked_point_loss, point_loss
from .masking import prepend_special_tokens

TARGETS = ("valence", "arousal")
# Leading special tokens a pooling mode reads (cls: CLS; cls_dist: CLS + distillation).
_SPECIAL_TOKENS_NEEDED = {"cls": 1, "cls_dist": 2}


@dataclass(kw_only=True, repr=False)
class EmotionHeadConfig:
    """Head fields mixed into each backbone config (put it BEFORE the transformers config class).

    pooling: mean | sum | max over real tokens, cls (CLS token) or cls_dist (mean of CLS and
      distillation tokens, as ASTForAudioClassification does).
    final_dropout: dropout on the pooled embedding and on the head's hidden layer.
    head_hidden_size: width of the head's hidden layer (0 = a single linear layer).
    loss: mse | ccc | mse+ccc (mse + ccc_weight * (1 - CCC)).
    layer: which encoder layer the head reads: "last", "weighted" (a learned softmax-weighted sum
      of every hidden state, MARBLE's recipe) or an index into the hidden states (0 = embeddings).
      Each layer is pooled on its own, then the pooled vectors are combined.
    probe: the encoder is frozen and only the layer weights and head train (embeddings can then be
      computed once and cached; see sentio.training.probe).
    target: static (one value per window, the song's label), dynamic (one value per half-second of
      the window, the 2 Hz labels) or both (the dynamic loss plus the static loss on the mean of
      the window's frames). A dynamic model's static prediction is the mean of its frames.
    uncertainty: the head also predicts a spread (standard deviation) per dimension, trained by
      the Gaussian negative log-likelihood in place of the squared error.
    disagreement_weight: with uncertainty, weight of a term pulling the predicted spread's
      song-to-song pattern toward the raters' spread where the data has it, its level left to the
      likelihood (models.loss.disagreement_loss; 0 = off).
    input_step_seconds: seconds per step of the model input's time axis (set from the feature
      extractor by training; a dynamic model needs it to place its tokens in time).
    mask_attention: also hide padded tokens from the encoder's self-attention (Wav2Vec2: only for
      layer-norm feature encoders, since group-norm checkpoints were pre-trained without a mask).
    init_checkpoint: the checkpoint the encoder weights came from, or "scratch".
    label_mean, label_std: a protocol's label transform (MARBLE's z-score: [valence, arousal] mean
      and std on [-1, 1] of its non-test songs). Set, the head's outputs are unbounded z values, the
      loss compares them with z-scored labels, and the model's predictions (and spreads) are mapped
      back to the [-1, 1] scale (z * std + mean) for everything that reads them. None: tanh, [-1, 1].
    """

    pooling: str = "mean"
    final_dropout: float | int = 0.1
    head_hidden_size: int = 256
    head_activation: str = "gelu"
    loss: str = "mse+ccc"
    ccc_weight: float | int = 1.0
    layer: str | int = LAYER_LAST
    probe: bool = False
    target: str = TARGET_STATIC
    uncertainty: bool = False
    disagreement_weight: float | int = 0.0
    input_step_seconds: float | int = 0.0
    mask_attention: bool = True
    init_checkpoint: str = "scratch"
    label_mean: list[float] | None = None
    label_std: list[float] | None = None

    # Read by Trainer.prediction_step: evaluation then gathers only the [N, 2] predictions.
    keys_to_ignore_at_inference = ["logits", "embedding", "layer_embeddings", "hidden_states", "attentions"]

    def __post_init__(self, **kwargs) -> None:
        super().__post_init__(**kwargs)
        # Name the two outputs (a backbone checkpoint may carry its own 527 AudioSet labels).
        self.id2label = dict(enumerate(TARGETS))
        self.label2id = {name: i for i, name in enumerate(TARGETS)}

    def validate_emotion_head(self) -> None:
        """Reject unknown pooling / loss / activation names when the config is built."""
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling={self.pooling!r}; choose one of {', '.join(POOLING_MODES)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.head_activation not in ACT2FN:
            raise ValueError(f"head_activation={self.head_activation!r} is not a transformers activation")
        if self.head_hidden_size < 0 or not 0 <= self.final_dropout < 1:
            raise ValueError("head_hidden_size must be >= 0 and final_dropout in [0, 1)")
        layer = self.layer
        if isinstance(layer, bool) or not (layer in (LAYER_LAST, LAYER_WEIGHTED) or isinstance(layer, int)):
            raise ValueError(f"layer={layer!r}; use {LAYER_LAST}, {LAYER_WEIGHTED} or a hidden-state index")
        if isinstance(layer, int) and not 0 <= layer <= self.num_hidden_layers:
            raise ValueError(f"layer={layer} is not a hidden state: the encoder has 0..{self.num_hidden_layers}")
        if self.target not in TRAINING_TARGETS:
            raise ValueError(f"target={self.target!r}; choose one of {', '.join(TRAINING_TARGETS)}")
        if not self.disagreement_weight >= 0 or (self.disagreement_weight > 0 and not self.uncertainty):
            raise ValueError("disagreement_weight must be >= 0, and > 0 only with uncertainty")


def pool_tokens(
    hidden_states: torch.Tensor, token_mask: torch.Tensor | None, mode: str, num_special: int = 0
) -> torch.Tensor:
    """Pool [B, N, H] encoder states to [B, H].

    mean/sum/max use the sequence tokens after the `num_special` leading ones, and only those
    where `token_mask` ([B, N - num_special], True = real) is set; padded states never reach the
    result, whatever their values. cls/cls_dist read the leading special tokens.
    """
    if mode == "cls":
        return hidden_states[:, 0]
    if mode == "cls_dist":
        return (hidden_states[:, 0] + hidden_states[:, 1]) / 2
    tokens = hidden_states[:, num_special:]
    if token_mask is None:
        token_mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if token_mask.shape != tokens.shape[:2]:
        raise ValueError(f"token mask {tuple(token_mask.shape)} does not match {tuple(tokens.shape[:2])} tokens")
    keep = token_mask.to(torch.bool).unsqueeze(-1)
    if mode == "max":
        return tokens.masked_fill(~keep, torch.finfo(tokens.dtype).min).amax(dim=1)
    # masked_fill rather than a multiply: 0 * inf/nan in a padded state would still leak.
    summed = tokens.masked_fill(~keep, 0.0).sum(dim=1)
    if mode == "sum":
        return summed
    if mode == "mean":
        return summed / keep.sum(dim=1).clamp(min=1).to(summed.dtype)
    raise ValueError(f"pooling={mode!r}; choose one of {', '.join(POOLING_MODES)}")


# The smallest spread the head predicts: keeps the likelihood finite on a perfectly fitted batch.
MIN_SPREAD = 1e-3


class EmotionHead(nn.Module):
    """pooled [..., H] -> dropout -> dense -> activation -> dropout -> 2 outputs -> tanh (in (-1, 1)),
    and with `uncertainty` 2 more -> softplus: the spread (standard deviation) of each. Any leading
    shape: a window's embedding [B, H] or its frames' [B, F, H]."""

    def __init__(self, config: EmotionHeadConfig, in_features: int):
        super().__init__()
        self.dropout = nn.Dropout(config.final_dropout)
        width = config.head_hidden_size
        self.dense = nn.Linear(in_features, width) if width > 0 else None
        self.activation = ACT2FN[config.head_activation]
        self.out_proj = nn.Linear(width if width > 0 else in_features, len(TARGETS) * (2 if config.uncertainty else 1))
        self.head_config = config  # read at each call: a protocol may set its label transform after the model is built

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.dropout(pooled)
        if self.dense is not None:
            x = self.dropout(self.activation(self.dense(x)))
        # tanh and softplus in float32 whatever the autocast dtype: the outputs feed float32 losses and
        # metrics, and a half-precision softplus + MIN_SPREAD would round the smallest spreads.
        out = self.out_proj(x).float()
        mean = out[..., : len(TARGETS)]
        if self.head_config.label_mean is None:  # [-1, 1] labels; z-scored ones (a protocol's) are unbounded
            mean = torch.tanh(mean)
        spread = F.softplus(out[..., len(TARGETS) :]) + MIN_SPREAD if out.shape[-1] > len(TARGETS) else None
        return mean, spread


def pool_frames(tokens: torch.Tensor, token_mask: torch.Tensor | None, centers: torch.Tensor,
                num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-ordered tokens [B, T, H] with their centres [T] (seconds from the window start) -> one
    embedding per half-second frame [B, F, H] and whether it covers real audio [B, F].

    Frame j averages the real tokens centred in [0.5 j, 0.5 (j + 1)). A frame no token centre falls
    in (coarse tokens, e.g. ViT's 0.7 s columns) takes its nearest token. A frame over padding only
    is zero and masked out.
    """
    frames = torch.arange(num_frames, device=tokens.device)
    assign = (torch.floor(centers / FRAME_SECONDS).long()[:, None] == frames[None, :]).to(tokens.dtype)  # [T, F]
    empty = assign.sum(dim=0) == 0
    if bool(empty.any()):
        middle = (frames[empty].to(centers.dtype) + 0.5) * FRAME_SECONDS
        nearest = torch.argmin((centers[:, None] - middle[None, :]).abs(), dim=0)
        assign[nearest, frames[empty]] = 1.0
    real = torch.ones(tokens.shape[:2], dtype=tokens.dtype, device=tokens.device) if token_mask is None \
        else token_mask.to(tokens.dtype)
    weights = assign[None] * real[:, :, None]  # [B, T, F]
    counts = weights.sum(dim=1)  # [B, F]
    pooled = torch.einsum("btf,bth->bfh", weights, tokens) / counts.clamp(min=1.0)[..., None]
    return pooled, counts > 0


@dataclass
class EmotionRegressionOutput(ModelOutput):
    """loss (iff labels were given); predictions [B, 2] = (valence, arousal) in (-1, 1), also as
    `logits` (the name transformers' regression heads use); spread [B, 2] (with uncertainty);
    for a dynamic model frame_predictions [B, F, 2] (a value per half-second), frame_spread and
    frame_mask [B, F] (frames over real audio); embedding (what the head read: [B, H], or [B, F, H]
    for a dynamic model); layer_embeddings [B, L, H] or [B, L, F, H] (every hidden state pooled on
    its own, when computed); and the encoder's hidden states / attentions when asked for."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    spread: torch.FloatTensor | None = None
    frame_predictions: torch.FloatTensor | None = None
    frame_spread: torch.FloatTensor | None = None
    frame_mask: torch.BoolTensor | None = None
    embedding: torch.FloatTensor | None = None
    layer_embeddings: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class EmotionRegressionMixin:
    """Forward shared by the backbones; put it BEFORE the transformers PreTrainedModel class.

    A backbone sets `num_special_tokens`, builds its encoder under `base_model_prefix`, calls
    `_init_emotion_head()`, and implements `_token_mask` and `_encode`. Its forward is this one
    (a backbone whose input has another name, e.g. ViT's pixel_values, maps it and calls it).
    """

    num_special_tokens: int = 0
    # Trainer must not pass num_items_in_batch: our loss is a mean.
    accepts_loss_kwargs = False

    def _init_emotion_head(self, in_features: int | None = None) -> None:
        needed = _SPECIAL_TOKENS_NEEDED.get(self.config.pooling, 0)
        if needed > self.num_special_tokens:
            raise ValueError(
                f"pooling={self.config.pooling!r} needs {needed} special token(s) but {type(self).__name__} "
                f"has {self.num_special_tokens}; use mean, sum or max"
            )
        if self.config.layer != LAYER_LAST and getattr(self.config, "layerdrop", 0.0) > 0:
            # LayerDrop skips whole layers in training and transformers then records fewer hidden
            # states: layer N would name another layer and the weights would not line up (MERT-95M
            # and wav2vec2-base ship layerdrop 0.05-0.1). A head that reads inner layers needs them all.
            self.config.layerdrop = 0.0
        if self.config.layer == LAYER_WEIGHTED:  # softmax of zeros: every layer weighs the same at first
            self.layer_weights = nn.Parameter(torch.zeros(self.config.num_hidden_layers + 1))
        self.head = EmotionHead(self.config, in_features or self.config.hidden_size)
        if self.config.probe:  # the encoder stays frozen: only the layer weights and the head train
            for name, param in self.named_parameters():
                if not name.startswith(("head.", "layer_weights")):
                    param.requires_grad_(False)

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone's scheme covers the encoder and the head's linear layers; the layer weights
        # are ours, and from_pretrained leaves a missing parameter uninitialised unless told.
        super()._init_weights(module)
        if module is self and getattr(self, "layer_weights", None) is not None:
            init.zeros_(self.layer_weights)

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, N_seq] bool mask over the encoder's sequence tokens (special tokens excluded)."""
        raise NotImplementedError

    def _encode(
        self, inputs: torch.Tensor, attention_mask: torch.Tensor | None, token_mask: torch.Tensor | None, **kwargs
    ) -> ModelOutput:
        """Run the encoder; the result has `last_hidden_state` [B, N, H] (special tokens first)."""
        raise NotImplementedError

    def _encoder_attention_mask(self, token_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Token mask for self-attention (special tokens real), or None when not masking."""
        if token_mask is None or not self.config.mask_attention:
            return None
        return prepend_special_tokens(token_mask, self.num_special_tokens)

    def _time_tokens(self, hidden: torch.Tensor,
                     token_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The encoder's time-ordered tokens for a dynamic target: (tokens [B, T, H], their mask
        [B, T] or None, their centres [T] in input steps). A backbone with a dynamic target
        implements it (e.g. AST averages its patch grid over frequency)."""
        raise NotImplementedError

    def _input_steps(self, inputs: torch.Tensor) -> int:
        """Steps of the input's time axis (frames, samples, image columns): the last axis unless a
        backbone says otherwise."""
        return int(inputs.shape[-1])

    def _pool(self, hidden: torch.Tensor, token_mask: torch.Tensor | None,
              num_frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One hidden state pooled as the target needs: [B, H] (static) or per frame [B, F, H] with
        the frames' mask [B, F] (dynamic)."""
        if self.config.target == TARGET_STATIC:
            return pool_tokens(hidden, token_mask, self.config.pooling, self.num_special_tokens), None
        tokens, mask, centers = self._time_tokens(hidden, token_mask)
        return pool_frames(tokens, mask, centers.to(tokens.dtype) * self.config.input_step_seconds, num_frames)

    def _combine_layers(self, layer_embeddings: torch.Tensor) -> torch.Tensor:
        """[B, L, ...] (one pooled vector, or frames, per hidden state) -> [B, ...] as `config.layer` says."""
        layer = self.config.layer
        if layer == LAYER_WEIGHTED:
            weights = torch.softmax(self.layer_weights, dim=0).to(layer_embeddings.dtype)
            return (weights.view(1, -1, *([1] * (layer_embeddings.dim() - 2))) * layer_embeddings).sum(dim=1)
        return layer_embeddings[:, -1 if layer == LAYER_LAST else int(layer)]

    def _embed(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None, all_layers: bool,
               flags: dict) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, ModelOutput]:
        """(embedding, frame mask or None, every layer pooled or None, encoder outputs)."""
        dynamic = self.config.target != TARGET_STATIC
        num_frames = 0
        if dynamic:
            if not self.config.input_step_seconds > 0:
                raise ValueError("a dynamic target needs config.input_step_seconds (set by training from the features)")
            num_frames = int(self._input_steps(inputs) * self.config.input_step_seconds / FRAME_SECONDS + 1e-6)
        token_mask = None if attention_mask is None else self._token_mask(inputs, attention_mask)
        outputs = self._encode(inputs, attention_mask, token_mask,
                               **{"output_hidden_states": True if all_layers else flags["output_hidden_states"],
                                  "output_attentions": flags["output_attentions"]})
        if not all_layers:
            embedding, frame_mask = self._pool(outputs.last_hidden_state, token_mask, num_frames)
            return embedding, frame_mask, None, outputs
        # The last hidden state is `last_hidden_state`, after the encoder's final norm where it has
        # one (AST, ViT, stable-layer-norm Wav2Vec2 and MERT-330M record their last hidden state
        # before it; the head and MARBLE read it after).
        states = (*outputs.hidden_states[:-1], outputs.last_hidden_state)
        pooled = [self._pool(h, token_mask, num_frames) for h in states]
        layers = torch.stack([p for p, _ in pooled], dim=1)
        frame_mask = pooled[0][1]
        embedding = self._combine_layers(layers)
        if dynamic:  # a cached frame over padding is NaN (kept out of the graph): a probe recovers the mask from it
            layers = layers.detach().masked_fill(~frame_mask[:, None, :, None], float("nan"))
        return embedding, frame_mask, layers, outputs

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        label_spread: torch.Tensor | None = None,
        frame_labels: torch.Tensor | None = None,
        layer_embeddings: torch.Tensor | None = None,
        output_layer_embeddings: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> EmotionRegressionOutput:
        """Predict (valence, arousal) from model inputs, or from cached `layer_embeddings` (probe
        mode: the encoder is skipped). The loss is computed iff `labels` are given; `label_spread`
        (raters' spread) and `frame_labels` [B, F, 2] (2 Hz labels, NaN where none) feed it when
        the config uses them."""
        outputs = None
        if layer_embeddings is None:
            if input_values is None:
                raise ValueError("pass the model inputs or layer_embeddings")
            all_layers = output_layer_embeddings or self.config.layer != LAYER_LAST
            flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
            embedding, frame_mask, layer_embeddings, outputs = self._embed(input_values, attention_mask, all_layers,
                                                                           flags)
        else:
            frame_mask = None
            if self.config.target != TARGET_STATIC:  # cached frames over padding are NaN
                frame_mask = torch.isfinite(layer_embeddings).all(dim=-1).all(dim=1)
                layer_embeddings = layer_embeddings.nan_to_num(0.0)
            embedding = self._combine_layers(layer_embeddings)
        out = EmotionRegressionOutput(embedding=embedding, layer_embeddings=layer_embeddings,
                                      hidden_states=getattr(outputs, "hidden_states", None) if output_hidden_states else None,
                                      attentions=getattr(outputs, "attentions", None))
        mean, spread = self.head(embedding)
        if frame_mask is None:
            out.predictions, out.spread = mean, spread
        else:
            out.frame_predictions, out.frame_spread, out.frame_mask = mean, spread, frame_mask
            # The window's static value is the mean of its real frames (its spread, their mean spread).
            weight = frame_mask.to(mean.dtype)[..., None]
            count = weight.sum(dim=1).clamp(min=1.0)
            out.predictions = (mean * weight).sum(dim=1) / count
            out.spread = None if spread is None else (spread * weight).sum(dim=1) / count
        scale = self._label_scale(mean)
        if labels is not None:
            if scale is not None:  # the loss on the protocol's z scale
                shift, std = scale
                labels = (labels.view_as(out.predictions).float() - shift) / std
                frame_labels = None if frame_labels is None else (frame_labels.float() - shift) / std
                label_spread = None if label_spread is None else label_spread.view_as(out.predictions).float() / std
            out.loss = self._loss(out, labels, label_spread, frame_labels)
        if scale is not None:  # predictions on [-1, 1]'s scale for every reader
            shift, std = scale
            out.predictions = out.predictions * std + shift
            out.spread = None if out.spread is None else out.spread * std
            if out.frame_predictions is not None:
                out.frame_predictions = out.frame_predictions * std + shift
                out.frame_spread = None if out.frame_spread is None else out.frame_spread * std
        out.logits = out.predictions
        return out

    def _label_scale(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean, std) of the config's label transform as tensors, or None without one."""
        if self.config.label_mean is None:
            return None
        mean = torch.tensor(self.config.label_mean, dtype=torch.float32, device=like.device)
        std = torch.tensor(self.config.label_std or [1.0] * len(TARGETS), dtype=torch.float32, device=like.device)
        return mean, std

    def _loss(self, out: EmotionRegressionOutput, labels: torch.Tensor, label_spread: torch.Tensor | None,
              frame_labels: torch.Tensor | None) -> torch.Tensor:
        """The configured loss: static and/or dynamic part, plus the disagreement term."""
        config = self.config
        labels = labels.view_as(out.predictions).float()
        loss = out.predictions.sum() * 0.0
        if config.target != TARGET_DYNAMIC:
            loss = loss + point_loss(out.predictions, labels, config.loss, config.ccc_weight, out.spread)
        if config.target != TARGET_STATIC:
            if frame_labels is None:
                raise ValueError(f"target={config.target!r} needs frame_labels (the 2 Hz labels of each window)")
            keep = (out.frame_mask & torch.isfinite(frame_labels).all(dim=-1)).flatten()
            spread = None if out.frame_spread is None else out.frame_spread.flatten(0, 1)
            loss = loss + masked_point_loss(out.frame_predictions.flatten(0, 1), frame_labels.flatten(0, 1).float(),
                                            keep, config.loss, config.ccc_weight, spread)
        if config.disagreement_weight > 0 and label_spread is not None and out.spread is not None:
            loss = loss + config.disagreement_weight * disagreement_loss(out.spread, label_spread.view_as(out.spread))
        return loss
