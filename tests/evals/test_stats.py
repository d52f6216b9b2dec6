import numpy as np
import pytest

from ragtune.evals.stats import compare, interval


def test_the_interval_holds_the_mean_and_narrows_with_more_questions():
    rng = np.random.default_rng(1)
    small, large = rng.integers(0, 2, 50) * 100.0, rng.integers(0, 2, 2000) * 100.0
    a, b = interval(small), interval(large)
    assert a.low < a.mean < a.high and b.low < b.mean < b.high
    assert (b.high - b.low) < (a.high - a.low) / 4  # ~sqrt(40) narrower
    assert 40 < b.mean < 60 and b.low > 40 and b.high < 60


def test_a_real_paired_difference_is_significant_and_noise_is_not():
    rng = np.random.default_rng(2)
    base = rng.normal(30, 20, 200)
    better = base + 5 + rng.normal(0, 2, 200)  # +5 on every question, small noise
    c = compare(better, base)
    assert c.delta == pytest.approx(5, abs=0.5) and c.low > 0 and c.p < 0.01
    noise = compare(base + rng.normal(0, 20, 200), base)
    assert noise.low < 0 < noise.high and noise.p > 0.05
    assert compare(base, base).p == 1.0 and compare(base, base).delta == 0
    # Paired beats unpaired: the same +5 is invisible in the two modes' own intervals.
    assert interval(better).low < interval(base).high


def test_unpaired_scores_are_refused():
    with pytest.raises(ValueError, match="same questions"):
        compare([1, 2, 3], [1, 2])
