"""Intervals and paired comparisons: coverage on simulated data, pairing, and bits per byte with its interval."""

import numpy as np
import pytest
from conftest import tiny_llama

import zett
from zett.evaluate.stats import Paired, compare, mean_estimate, ratio_estimate, wilson


def test_bootstrap_interval_covers_the_true_mean():
    """A 95% interval over 40 draws of a skewed distribution (exponential, mean 2) covers 2 in >= 90 of 100."""
    rng = np.random.default_rng(123)
    covered = sum(
        mean_estimate(rng.exponential(2.0, size=40), n_boot=1000, seed=k).excludes(2.0) is False for k in range(100)
    )
    assert covered >= 90


def test_ratio_interval_covers_the_true_ratio():
    """Bits per byte as total bits / total bytes over documents of different sizes: true ratio 1.5."""
    rng = np.random.default_rng(7)
    hits = 0
    for k in range(100):
        n_bytes = rng.integers(200, 3000, size=30).astype(float)
        bits = n_bytes * 1.5 + rng.normal(0, 0.3, size=30) * n_bytes
        hits += not ratio_estimate(bits, n_bytes, n_boot=1000, seed=k).excludes(1.5)
    assert hits >= 90


def test_interval_is_seeded_and_shrinks_with_more_items():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=20), rng.normal(size=2000)
    assert mean_estimate(small, seed=3) == mean_estimate(small, seed=3)
    a, b = mean_estimate(small), mean_estimate(large)
    assert (b.ci_high - b.ci_low) < (a.ci_high - a.ci_low) / 5


def test_wilson_interval_by_hand():
    # p = 0.5, n = 100, z = 1.95996: centre 0.5, half-width z*sqrt(0.25/100 + z^2/40000)/(1 + z^2/100)
    z = 1.959963984540054
    half = z * np.sqrt(0.25 / 100 + z * z / 40000) / (1 + z * z / 100)
    assert wilson(50, 100) == pytest.approx((0.5 - half, 0.5 + half))
    assert wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson(10, 10)[1] == pytest.approx(1.0)


def test_paired_comparison_separates_what_unpaired_cannot():
    """Two models whose per-item scores differ by a small constant on items of widely varying difficulty: the
    unpaired intervals overlap, the paired difference excludes 0."""
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 1.0, size=50)
    a, b = Paired(difficulty + 0.1, ("items",)), Paired(difficulty, ("items",))
    ea, eb = mean_estimate(a.num), mean_estimate(b.num)
    assert ea.ci_low < eb.ci_high  # overlapping on their own
    diff = compare(a, b)
    assert diff.value == pytest.approx(0.1) and diff.excludes(0) and diff.ci_low > 0.09
    same = compare(a, a)
    assert same.value == 0 and not same.excludes(0)


def test_compare_refuses_different_items():
    with pytest.raises(ValueError, match="not scored on the same items"):
        compare(Paired(np.ones(3), ("x",)), Paired(np.ones(3), ("y",)))
    with pytest.raises(TypeError, match="cannot compare"):
        compare(1.0, 2.0)


def test_bits_per_byte_interval_over_documents(byte_bpe):
    model_a, model_b = tiny_llama(len(byte_bpe), seed=0), tiny_llama(len(byte_bpe), seed=1)
    texts = [f"Document {i}: " + "the quick brown fox " * (1 + i % 4) for i in range(12)]
    est = zett.evaluate.bits_per_byte(model_a, byte_bpe, texts, ci=True, progress=False)
    plain = zett.evaluate.bits_per_byte(model_a, byte_bpe, texts, progress=False)
    assert float(est) == pytest.approx(plain) and est.ci_low < plain < est.ci_high and est.n == 12
    ra = zett.evaluate.score(model_a, byte_bpe, texts, progress=False)
    assert sum(ra.doc_bits) == pytest.approx(ra.bits) and sum(ra.doc_bytes) == ra.bytes
    # a document's bits equal that document scored alone
    alone = zett.evaluate.score(model_a, byte_bpe, texts[3:4], progress=False)
    assert ra.doc_bits[3] == pytest.approx(alone.bits, rel=1e-5)
    rb = zett.evaluate.score(model_b, byte_bpe, texts, progress=False)
    diff = compare(ra, rb)
    assert diff.value == pytest.approx(ra.bpb - rb.bpb) and diff.ci_low <= diff.value <= diff.ci_high
    with pytest.raises(ValueError, match="same items"):
        compare(ra, zett.evaluate.score(model_b, byte_bpe, texts[:-1], progress=False))
