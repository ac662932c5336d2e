"""Sample-quality statistics on embeddings and spectrograms (NumPy/SciPy; nothing downloaded).

Every number is only readable beside the same number for real vs real (two halves of the real
data): the report computes both with the same sample sizes. Embedding-based metrics:

- FD: Frechet distance between Gaussians fitted to the embeddings (the FID formula).
- FD-inf (Chong & Forsyth 2020): FD is biased upward by 1/N; fit FD against 1/N over subsets
  and extrapolate to N = infinity, which makes sets of different sizes comparable.
- KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, mean over subsets.
- Precision / recall / density / coverage (Naeem et al. 2020), with k-nearest-neighbour balls.
"""

from __future__ import annotations

import numpy as np

from ..metrics import regression_metrics


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, np.float64)
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two [N, D] embedding sets.

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b (real and
    non-negative for covariance matrices): the matrix square root's trace without the matrix square
    root. Computed with torch, whose LAPACK keeps to torch's thread count (the scripts'
    --num_threads): numpy's OpenBLAS starts a thread per core, which on busy shared cores made each
    FD take a second instead of milliseconds.
    """
    import torch

    mu_a, cov_a = _gaussian(a)
    mu_b, cov_b = _gaussian(b)
    eigenvalues = torch.linalg.eigvals(torch.from_numpy(cov_a) @ torch.from_numpy(cov_b)).real
    trace_covmean = float(eigenvalues.clamp_min(0.0).sqrt().sum())  # round-off can make zeros slightly negative
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_covmean))


def fd_infinity(real: np.ndarray, fake: np.ndarray, points: int = 8, seed: int = 0) -> float:
    """FD extrapolated to infinitely many fake samples: a line through FD(N) vs 1/N, read at 0."""
    rng = np.random.default_rng(seed)
    n = len(fake)
    sizes = np.linspace(max(n // 4, 2), n, points).astype(int)
    fds = [frechet_distance(real, fake[rng.choice(n, s, replace=False)]) for s in sizes]
    slope, intercept = np.polyfit(1.0 / sizes, fds, 1)
    return float(intercept)


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """(mean, std) over subsets of the unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` (k-NN balls)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        raise ValueError("PRDC needs at least 2 samples per set")
    real_radius = np.sort(_pairwise(real, real), axis=1)[:, k]  # column 0 is the point itself
    fake_radius = np.sort(_pairwise(fake, fake), axis=1)[:, k]
    d = _pairwise(real, fake)  # [R, F]
    inside = d < real_radius[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((d < fake_radius[None, :]).any(axis=1).mean()),
        "density": float(inside.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < real_radius).mean()),
    }


def embedding_metrics(reference: np.ndarray, other: np.ndarray, seed: int = 0) -> dict[str, float]:
    """FD, FD-inf, KID (mean, std) and PRDC of `other` against `reference`."""
    kid_mean, kid_std = kid(reference, other, seed=seed)
    return {"fd": frechet_distance(reference, other), "fd_inf": fd_infinity(reference, other, seed=seed),
            "kid": kid_mean, "kid_std": kid_std, **prdc(reference, other)}


# ---- the seeds' simpler statistics, on [N, freq, time] spectrograms ------------------------------
def mean_spectrum_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the two sets' mean spectra (average over windows and time per bin)."""
    sa, sb = np.asarray(a, np.float64).mean(axis=(0, 2)), np.asarray(b, np.float64).mean(axis=(0, 2))
    return float(np.corrcoef(sa, sb)[0, 1]) if sa.std() > 0 and sb.std() > 0 else 0.0


def temporal_smoothness(x: np.ndarray) -> float:
    """Mean |x[t+1] - x[t]| over frames, relative to the set's std: lower is smoother."""
    x = np.asarray(x, np.float64)
    return float(np.abs(np.diff(x, axis=2)).mean() / (x.std() or 1.0))


def label_regions(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of the four valence/arousal quadrants (the seeds' label regions)."""
    v, a = labels[:, 0] >= 0, labels[:, 1] >= 0
    return {"v+a+": v & a, "v-a+": ~v & a, "v-a-": ~v & ~a, "v+a-": v & ~a}


def spectral_statistics(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray,
                        fake_labels: np.ndarray) -> dict[str, object]:
    """Mean-spectrum correlation overall and per label region, and temporal smoothness of both."""
    regions = {}
    for name, mask_real in label_regions(real_labels).items():
        mask_fake = label_regions(fake_labels)[name]
        if mask_real.sum() >= 1 and mask_fake.sum() >= 1:
            regions[name] = mean_spectrum_correlation(real[mask_real], fake[mask_fake])
    return {"mean_spectrum_correlation": mean_spectrum_correlation(real, fake),
            "mean_spectrum_correlation_by_region": regions,
            "temporal_smoothness": {"reference": temporal_smoothness(real), "compared": temporal_smoothness(fake)}}


def label_consistency(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """CCC and MAE (per dimension and mean) of a regressor's predictions against the labels the
    samples were conditioned on."""
    metrics = regression_metrics(pred, labels)
    return {k: v for k, v in metrics.items() if k.startswith(("ccc_", "mae_"))}
