"""Regression losses for (valence, arousal): MSE, 1 - CCC, and their sum.

The transformers heads' built-in losses are never used: with two float labels AST/ViT silently
pick BCE and Wav2Vec2ForSequenceClassification always uses cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..choices import LOSSES

# Keeps CCC finite when a batch has a single row or constant predictions and targets
# (0/0); small enough not to move hand-computed values.
_EPS = 1e-8


def torch_concordance_cc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient per column of [N, D] tensors -> [D].

    ccc = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), with population (1/N) moments.
    """
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and labels {tuple(target.shape)} differ in shape")
    # float32 statistics even under bf16/fp16 autocast: variances of values in [-1, 1] lose digits otherwise.
    pred, target = pred.float(), target.float()
    pred_mean, target_mean = pred.mean(dim=0), target.mean(dim=0)
    pred_c, target_c = pred - pred_mean, target - target_mean
    cov = (pred_c * target_c).mean(dim=0)
    pred_var, target_var = (pred_c**2).mean(dim=0), (target_c**2).mean(dim=0)
    return 2 * cov / (pred_var + target_var + (pred_mean - target_mean) ** 2 + _EPS)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - CCC, averaged over the dimensions (0 = perfect, 2 = perfectly reversed)."""
    return 1.0 - torch_concordance_cc(pred, target).mean()


def emotion_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse", ccc_weight: float = 1.0) -> torch.Tensor:
    """The configured training loss: `mse`, `ccc` or `mse+ccc` (= mse + ccc_weight * (1 - CCC)).

    CCC is a batch statistic: it needs batches of at least 2 rows (use drop_last in training).
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    target = target.to(torch.float32)
    if kind == "ccc":
        return ccc_loss(pred, target)
    mse = F.mse_loss(pred.float(), target)
    if kind == "mse":
        return mse
    return mse + ccc_weight * ccc_loss(pred, target)


def gaussian_nll(pred: torch.Tensor, spread: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Heteroscedastic Gaussian negative log-likelihood of `target` under N(pred, spread^2), per
    element averaged (the constant log(2 pi) / 2 left out)."""
    spread = spread.float()
    return (torch.log(spread) + 0.5 * ((target - pred.float()) / spread) ** 2).mean()


def point_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, ccc_weight: float,
               spread: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of predictions [N, 2] against targets: `kind` as in emotion_loss; with a predicted
    `spread` the squared error becomes the Gaussian NLL (mse -> nll, mse+ccc -> nll + ccc)."""
    if spread is None:
        return emotion_loss(pred, target, kind, ccc_weight)
    target = target.to(torch.float32)
    nll = gaussian_nll(pred, spread, target)
    if kind == "mse":
        return nll
    concordance = ccc_loss(pred, target)
    return concordance if kind == "ccc" else nll + ccc_weight * concordance


def masked_point_loss(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor, kind: str, ccc_weight: float,
                      spread: torch.Tensor | None = None) -> torch.Tensor:
    """point_loss over the rows where `keep` [N] is set (e.g. labelled frames); zero, still part of
    the graph, when fewer than two rows are left (CCC needs two)."""
    if int(keep.sum()) < 2:
        return pred.sum() * 0.0
    return point_loss(pred[keep], target[keep], kind, ccc_weight, None if spread is None else spread[keep])


def disagreement_loss(spread: torch.Tensor, label_spread: torch.Tensor) -> torch.Tensor:
    """How far the predicted spread's song-to-song pattern is from the raters', ignoring its level.

    The predicted spread is the sd of the model's error about the mean label, which the likelihood
    sets; the raters' spread is the sd of single ratings, several times larger. Pulling one toward
    the other would fight the likelihood (and lose: it did, at weight 1, on the demo). So per
    dimension, over the rows where the raters' spread is known, the log ratio log(spread / raters)
    is compared with its batch mean: zero when the predicted spread is the raters' times any
    constant. Zero (still in the graph) for a dimension with fewer than two known rows."""
    total, dims = spread.sum() * 0.0, 0
    for d in range(spread.shape[-1]):
        known = torch.isfinite(label_spread[..., d]) & (label_spread[..., d] > 0)
        if int(known.sum()) < 2:
            continue
        ratio = torch.log(spread[..., d][known].float()) - torch.log(label_spread[..., d][known].float())
        total = total + ((ratio - ratio.mean()) ** 2).mean()
        dims += 1
    return total / max(dims, 1)
