"""Losses against NumPy computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentio.models import ccc_loss, emotion_loss, torch_concordance_cc

PRED = np.array([[0.1, 0.5], [0.3, -0.2], [-0.4, 0.0], [0.6, 0.9]])
TARGET = np.array([[0.2, 0.4], [0.1, -0.1], [-0.5, 0.3], [0.4, 0.7]])


def numpy_ccc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-column CCC with population (1/N) moments."""
    mx, my = x.mean(0), y.mean(0)
    cov = ((x - mx) * (y - my)).mean(0)
    return 2 * cov / (x.var(0) + y.var(0) + (mx - my) ** 2)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def test_ccc_matches_numpy():
    expected = numpy_ccc(PRED, TARGET)
    assert np.allclose(torch_concordance_cc(t(PRED), t(TARGET)).numpy(), expected, atol=1e-6)
    assert ccc_loss(t(PRED), t(TARGET)).item() == pytest.approx(1 - expected.mean(), abs=1e-6)


def test_ccc_hand_computed_column():
    # Column 0 by hand: x = (.1, .3, -.4, .6), y = (.2, .1, -.5, .4); means .15 and .05;
    # deviations x (-.05, .15, -.55, .45), y (.15, .05, -.55, .35): cov = .46/4 = .115,
    # var_x = .53/4 = .1325, var_y = .45/4 = .1125, (mx - my)^2 = .01.
    # ccc = 2 * .115 / (.1325 + .1125 + .01) = .23 / .255
    assert torch_concordance_cc(t(PRED), t(TARGET))[0].item() == pytest.approx(0.23 / 0.255, abs=1e-6)


def test_perfect_and_reversed_predictions():
    target = t(np.array([[0.5, -0.3], [-0.5, 0.3], [0.2, 0.6], [-0.2, -0.6]]))  # zero-mean columns
    assert ccc_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert torch_concordance_cc(-target, target).tolist() == pytest.approx([-1.0, -1.0], abs=1e-6)
    assert ccc_loss(-target, target).item() == pytest.approx(2.0, abs=1e-6)


def test_shifted_prediction_is_penalised_unlike_pearson():
    # Perfectly correlated but offset by 0.5: CCC < 1 (Pearson would be 1).
    target = t(TARGET)
    assert torch_concordance_cc(target + 0.5, target).max().item() < 0.8


def test_emotion_loss_kinds():
    pred, target = t(PRED), t(TARGET)
    mse = ((PRED - TARGET) ** 2).mean()
    ccc = 1 - numpy_ccc(PRED, TARGET).mean()
    assert emotion_loss(pred, target, "mse").item() == pytest.approx(mse, abs=1e-6)
    assert emotion_loss(pred, target, "ccc").item() == pytest.approx(ccc, abs=1e-6)
    assert emotion_loss(pred, target, "mse+ccc").item() == pytest.approx(mse + ccc, abs=1e-6)
    assert emotion_loss(pred, target, "mse+ccc", ccc_weight=0.5).item() == pytest.approx(mse + 0.5 * ccc, abs=1e-6)
    with pytest.raises(ValueError, match="mse, ccc, mse\\+ccc"):
        emotion_loss(pred, target, "l1")


def test_degenerate_batches_stay_finite_and_differentiable():
    pred = torch.tensor([[0.3, 0.1]], requires_grad=True)
    loss = emotion_loss(pred, torch.tensor([[0.3, 0.1]]), "mse+ccc")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_half_precision_inputs_are_computed_in_float32():
    loss = ccc_loss(t(PRED).bfloat16(), t(TARGET).bfloat16())
    assert loss.dtype == torch.float32


def test_uncertainty_head_trains_by_gaussian_likelihood_and_follows_the_raters():
    from sentio.models import build_model
    from tests.tiny import TINY

    torch.manual_seed(0)
    model = build_model("ast", from_scratch=True, config_overrides=TINY["ast"],
                        head_kwargs={"uncertainty": True, "loss": "mse", "disagreement_weight": 0.5}).train()
    x, labels = torch.randn(4, 64, 32), torch.rand(4, 2) * 2 - 1
    raters = torch.tensor([[0.3, float("nan")], [0.2, 0.1], [float("nan"), float("nan")], [0.4, 0.5]])
    out = model(x, labels=labels, label_spread=raters)
    assert out.spread.shape == (4, 2) and bool((out.spread > 0).all())
    nll = (torch.log(out.spread) + 0.5 * ((labels - out.predictions) / out.spread) ** 2).mean()
    # the raters' term: per dimension, the spread of log(predicted / raters) over the known rows
    ratio_v = torch.log(out.spread[[0, 1, 3], 0]) - torch.log(raters[[0, 1, 3], 0])
    ratio_a = torch.log(out.spread[[1, 3], 1]) - torch.log(raters[[1, 3], 1])
    pattern = (((ratio_v - ratio_v.mean()) ** 2).mean() + ((ratio_a - ratio_a.mean()) ** 2).mean()) / 2
    torch.testing.assert_close(out.loss, nll + 0.5 * pattern)
    out.loss.backward()
    assert model.head.out_proj.weight.grad.shape == (4, model.config.head_hidden_size)  # mean and spread outputs


def test_the_raters_term_leaves_the_level_to_the_likelihood():
    from sentio.models.loss import disagreement_loss

    raters = torch.tensor([[0.2, 0.4], [0.3, float("nan")], [0.5, 0.1]])
    level = torch.nan_to_num(raters, nan=0.7) * 0.3  # the raters pattern at another level
    assert float(disagreement_loss(level, raters)) == pytest.approx(0.0, abs=1e-7)  # no pull
    flipped = torch.tensor([[0.5, 0.1], [0.3, 0.3], [0.2, 0.4]])  # the opposite pattern
    assert float(disagreement_loss(flipped, raters)) > 0.1
    one_known = torch.tensor([[0.2, float("nan")], [float("nan"), float("nan")]])
    assert float(disagreement_loss(torch.ones(2, 2), one_known)) == 0.0  # a pattern needs two songs


def test_a_protocols_z_scored_labels_train_an_unbounded_head_and_predict_on_the_minus_one_one_scale(tmp_path):
    """MARBLE's label transform: the loss compares the head's raw (unbounded) outputs with z-scored
    labels, and the predictions come back as z * std + mean; the transform travels in config.json."""
    from sentio.models import build_model
    from sentio.models.loss import emotion_loss
    from tests.tiny import TINY

    torch.manual_seed(0)
    model = build_model("ast", from_scratch=True, config_overrides=TINY["ast"], head_kwargs={"loss": "mse"}).eval()
    with torch.no_grad():  # raw outputs far outside (-1, 1), as z values of spread-out labels are
        model.head.out_proj.weight.mul_(40.0)
        model.head.out_proj.bias.copy_(torch.tensor([2.5, -3.0]))
    x, labels = torch.randn(4, 64, 32), torch.rand(4, 2) * 2 - 1
    bounded = model(x, labels=labels)
    assert bool((bounded.predictions.abs() < 1).all())  # [-1, 1] labels: tanh
    model.config.label_mean, model.config.label_std = [0.1, -0.2], [0.25, 0.5]
    out = model(x, labels=labels)
    mean, std = torch.tensor([0.1, -0.2]), torch.tensor([0.25, 0.5])
    raw = (out.predictions - mean) / std
    assert float(raw.detach().abs().max()) > 1.5  # no tanh on the z values
    torch.testing.assert_close(out.loss, emotion_loss(raw, (labels - mean) / std, "mse", 1.0))
    torch.testing.assert_close(out.logits, out.predictions)
    model.save_pretrained(tmp_path / "run")
    again = type(model).from_pretrained(tmp_path / "run").eval()
    assert again.config.label_mean == [0.1, -0.2] and again.config.label_std == [0.25, 0.5]
    torch.testing.assert_close(again(x).predictions, out.predictions)
