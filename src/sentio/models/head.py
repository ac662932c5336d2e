"""What every Sentio regression model shares: head config fields, pooling, the head, the output,
and the forward tail (pool -> head -> loss -> output).

A backbone file only says how to encode its inputs and how to turn the collator's
`attention_mask` into a mask over its tokens; everything after the encoder lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from ..options import LOSSES, POOLING_MODES
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
    mask_attention: bool = True
    init_checkpoint: str = "scratch"

    # Read by Trainer.prediction_step: evaluation then gathers only the [N, 2] predictions.
    keys_to_ignore_at_inference = ["embedding", "hidden_states", "attentions"]

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
    """loss (iff labels were given), predictions [B, 2] = (valence, arousal) in (-1, 1),
    embedding [B, H] (the pooled encoder output), and the encoder's hidden states / attentions
    when asked for."""

    loss: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    embedding: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class EmotionRegressionMixin:
    """Forward tail shared by the backbones; put it BEFORE the transformers PreTrainedModel class.

    A backbone sets `num_special_tokens`, builds its encoder under `base_model_prefix`, calls
    `_init_emotion_head()`, and implements `_token_mask` and `_encode`.
    """

    num_special_tokens: int = 0
    # No **kwargs in forward, and Trainer must not pass num_items_in_batch: our loss is a mean.
    accepts_loss_kwargs = False

    def _init_emotion_head(self, in_features: int | None = None) -> None:
        needed = _SPECIAL_TOKENS_NEEDED.get(self.config.pooling, 0)
        if needed > self.num_special_tokens:
            raise ValueError(
                f"pooling={self.config.pooling!r} needs {needed} special token(s) but {type(self).__name__} "
                f"has {self.num_special_tokens}; use mean, sum or max"
            )
        self.head = EmotionHead(self.config, in_features or self.config.hidden_size)

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

    def _emotion_forward(
        self,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        output_hidden_states: bool | None,
        output_attentions: bool | None,
    ) -> EmotionRegressionOutput:
        token_mask = None if attention_mask is None else self._token_mask(inputs, attention_mask)
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        outputs = self._encode(inputs, attention_mask, token_mask, **{k: v for k, v in flags.items() if v is not None})
        embedding = pool_tokens(outputs.last_hidden_state, token_mask, self.config.pooling, self.num_special_tokens)
        predictions = self.head(embedding)
        loss = None
        if labels is not None:
            loss = emotion_loss(predictions, labels.view_as(predictions), self.config.loss, self.config.ccc_weight)
        return EmotionRegressionOutput(
            loss=loss,
            predictions=predictions,
            embedding=embedding,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )
