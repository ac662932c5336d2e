"""What every Sentio regression model shares: head config fields, pooling, the head, the output,
and the forward tail (pool -> head -> loss -> output).

A backbone file only says how to encode its inputs and how to turn the collator's
`attention_mask` into a mask over its tokens; everything after the encoder lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from ..options import LAYER_LAST, LAYER_WEIGHTED, LOSSES, POOLING_MODES
from .loss import emotion_loss
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
    mask_attention: also hide padded tokens from the encoder's self-attention (Wav2Vec2: only for
      layer-norm feature encoders, since group-norm checkpoints were pre-trained without a mask).
    init_checkpoint: the checkpoint the encoder weights came from, or "scratch".
    """

    pooling: str = "mean"
    final_dropout: float | int = 0.1
    head_hidden_size: int = 256
    head_activation: str = "gelu"
    loss: str = "mse+ccc"
    ccc_weight: float | int = 1.0
    layer: str | int = LAYER_LAST
    probe: bool = False
    mask_attention: bool = True
    init_checkpoint: str = "scratch"

    # Read by Trainer.prediction_step: evaluation then gathers only the [N, 2] predictions.
    keys_to_ignore_at_inference = ["embedding", "layer_embeddings", "hidden_states", "attentions"]

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


class EmotionHead(nn.Module):
    """pooled [B, H] -> dropout -> dense -> activation -> dropout -> 2 outputs -> tanh (in (-1, 1))."""

    def __init__(self, config: EmotionHeadConfig, in_features: int):
        super().__init__()
        self.dropout = nn.Dropout(config.final_dropout)
        width = config.head_hidden_size
        self.dense = nn.Linear(in_features, width) if width > 0 else None
        self.activation = ACT2FN[config.head_activation]
        self.out_proj = nn.Linear(width if width > 0 else in_features, len(TARGETS))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        if self.dense is not None:
            x = self.dropout(self.activation(self.dense(x)))
        return torch.tanh(self.out_proj(x))


@dataclass
class EmotionRegressionOutput(ModelOutput):
    """loss (iff labels were given); predictions [B, 2] = (valence, arousal) in (-1, 1), also as
    `logits` (the name transformers' regression heads use); embedding [B, H] (what the head read);
    layer_embeddings [B, L, H] (every hidden state pooled on its own, when computed); and the
    encoder's hidden states / attentions when asked for."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
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

    def _pool_layers(self, outputs: ModelOutput, token_mask: torch.Tensor | None) -> torch.Tensor:
        """Every hidden state pooled on its own: [B, L, H]. The last one is `last_hidden_state`,
        after the encoder's final norm where it has one (AST, ViT, stable-layer-norm Wav2Vec2 and
        MERT-330M record their last hidden state before it; the head and MARBLE read it after)."""
        states = (*outputs.hidden_states[:-1], outputs.last_hidden_state)
        pooled = [pool_tokens(h, token_mask, self.config.pooling, self.num_special_tokens) for h in states]
        return torch.stack(pooled, dim=1)

    def _combine_layers(self, layer_embeddings: torch.Tensor) -> torch.Tensor:
        """[B, L, H] -> [B, H] as `config.layer` says."""
        layer = self.config.layer
        if layer == LAYER_WEIGHTED:
            weights = torch.softmax(self.layer_weights, dim=0).to(layer_embeddings.dtype)
            return (weights[None, :, None] * layer_embeddings).sum(dim=1)
        return layer_embeddings[:, -1 if layer == LAYER_LAST else int(layer)]

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        layer_embeddings: torch.Tensor | None = None,
        output_layer_embeddings: bool = False,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> EmotionRegressionOutput:
        """Predict (valence, arousal) from model inputs, or from cached `layer_embeddings` [B, L, H]
        (probe mode: the encoder is skipped); the loss is computed iff `labels` are given."""
        outputs = None
        if layer_embeddings is None:
            if input_values is None:
                raise ValueError("pass the model inputs or layer_embeddings")
            token_mask = None if attention_mask is None else self._token_mask(input_values, attention_mask)
            all_layers = output_layer_embeddings or self.config.layer != LAYER_LAST
            flags = {"output_hidden_states": True if all_layers else output_hidden_states,
                     "output_attentions": output_attentions}
            outputs = self._encode(input_values, attention_mask, token_mask,
                                   **{k: v for k, v in flags.items() if v is not None})
            if all_layers:
                layer_embeddings = self._pool_layers(outputs, token_mask)
                embedding = self._combine_layers(layer_embeddings)
            else:
                embedding = pool_tokens(outputs.last_hidden_state, token_mask, self.config.pooling,
                                        self.num_special_tokens)
        else:
            embedding = self._combine_layers(layer_embeddings)
        predictions = self.head(embedding)
        loss = None
        if labels is not None:
            loss = emotion_loss(predictions, labels.view_as(predictions), self.config.loss, self.config.ccc_weight)
        return EmotionRegressionOutput(
            loss=loss,
            logits=predictions,
            predictions=predictions,
            embedding=embedding,
            layer_embeddings=layer_embeddings,
            hidden_states=getattr(outputs, "hidden_states", None) if output_hidden_states else None,
            attentions=getattr(outputs, "attentions", None),
        )
