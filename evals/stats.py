"""How sure a comparison is: bootstrap confidence intervals and paired-bootstrap p-values.

On 200 questions a difference of a few F1 points can be luck. Each mode's mean gets a 95%
interval from resampling the questions; two modes are compared on the *same* resampled
questions (paired), which is far more sensitive than comparing their intervals, because
most of the variance is in which questions were drawn, and that is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    delta: float  # mean of a - mean of b
    low: float  # its 95% interval
    high: float
    p: float  # two-sided: how often a resample shows the opposite sign (or none)


def interval(scores, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean and its 95% percentile-bootstrap interval."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    means = x[_draws(x.size, resamples, seed)].mean(axis=1)
    return Interval(float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def compare(a, b, resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    """Paired bootstrap of mean(a) - mean(b), where a[i] and b[i] score the same question."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired scores need the same questions: got {a.size} and {b.size}")
    d = a - b
    deltas = d[_draws(d.size, resamples, seed)].mean(axis=1)
    observed = float(d.mean())
    if observed == 0 and not d.any():
        return Comparison(0.0, 0.0, 0.0, 1.0)
    # Two-sided: twice the share of resamples on the far side of zero, with the +1 that keeps
    # a p-value from being 0 on a finite number of resamples.
    far = np.sum(deltas <= 0) if observed > 0 else np.sum(deltas >= 0)
    p = min(1.0, 2 * (far + 1) / (resamples + 1))
    return Comparison(observed, float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5)), p)


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))
