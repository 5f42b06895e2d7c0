"""Confidence intervals and paired comparisons for evaluation results.

Every result of :mod:`zett.evaluate` keeps its per-item numbers (bits and bytes per document, correctness per
task example, similarity per prompt), so an interval is a resample of those items and a comparison of two models
scored on the same items is a *paired* resample: the same item indices are drawn for both, which removes the
variance the two models share (hard documents are hard for both).

Intervals are percentile bootstraps (``n_boot`` resamples, seeded, so a result is reproducible to the bit), except
the accuracy of one task, which uses the Wilson score interval: it stays sensible at accuracies of 0 or 1 where a
percentile bootstrap collapses to a point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL = 0.95
N_BOOT = 2000


@dataclass(frozen=True)
class Estimate:
    """A number with its confidence interval (``level``, e.g. 0.95) over ``n`` items."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    level: float = LEVEL

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        spec = spec or ".4f"
        half = (self.ci_high - self.ci_low) / 2
        return f"{format(self.value, spec)} ± {format(half, spec)}"

    def excludes(self, x: float = 0.0) -> bool:
        """True when ``x`` lies outside the interval (for a difference: the two models are separated)."""
        return not self.ci_low <= x <= self.ci_high

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n, "level": self.level}


def _quantiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
    strata: Sequence[int] | None = None,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over resamples of ``n`` items.

    ``statistic(idx)`` takes an int array of item indices of shape ``[n_boot, n]`` and returns ``[n_boot]``
    values. With ``strata`` (one label per item), items are resampled within their stratum, so every stratum
    keeps its size (a macro mean over tasks resamples the examples of each task, never a task's share)."""
    if n <= 0:
        raise ValueError("cannot bootstrap over zero items")
    rng = np.random.default_rng(seed)
    if strata is None:
        idx = rng.integers(0, n, size=(n_boot, n))
    else:
        labels = np.asarray(strata)
        idx = np.empty((n_boot, n), dtype=np.int64)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            idx[:, members] = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
    return _quantiles(np.asarray(statistic(idx), dtype=np.float64), level)


def mean_estimate(values: Sequence[float], *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Estimate:
    """Mean of ``values`` with a bootstrap interval over the items."""
    x = np.asarray(values, dtype=np.float64)
    low, high = bootstrap(lambda idx: x[idx].mean(axis=1), len(x), n_boot=n_boot, seed=seed, level=level)
    return Estimate(float(x.mean()), low, high, len(x), level)


def ratio_estimate(
    num: Sequence[float], den: Sequence[float], *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
) -> Estimate:
    """``sum(num) / sum(den)`` (e.g. bits over bytes) with a bootstrap interval over the items (documents)."""
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    low, high = bootstrap(
        lambda idx: a[idx].sum(axis=1) / b[idx].sum(axis=1), len(a), n_boot=n_boot, seed=seed, level=level
    )
    return Estimate(float(a.sum() / b.sum()), low, high, len(a), level)


def wilson(successes: float, n: int, *, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion (``successes`` may be fractional: ties get partial credit)."""
    if n <= 0:
        raise ValueError("cannot bound a proportion of zero items")
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Paired:
    """The per-item numbers a paired comparison needs: ``num``/``den`` per item (a ratio statistic when ``den``
    is given, else a mean of ``num``), item keys to check that both sides scored the same items, and strata
    (e.g. the task of each example) for macro means."""

    num: np.ndarray
    keys: tuple
    den: np.ndarray | None = None
    strata: np.ndarray | None = None

    def statistic(self, idx: np.ndarray) -> np.ndarray:
        if self.den is not None:
            return self.num[idx].sum(axis=-1) / self.den[idx].sum(axis=-1)
        if self.strata is None:
            return self.num[idx].mean(axis=-1)
        # macro mean: the mean within each stratum, then over strata (a stratified resample keeps every item in
        # its stratum's columns, so a stratum's columns of ``idx`` hold that stratum's resampled items)
        return np.mean(
            [self.num[idx[..., self.strata == label]].mean(axis=-1) for label in np.unique(self.strata)], axis=0
        )


def compare(a: Any, b: Any, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Estimate:
    """Paired difference ``a - b`` of two results scored on the same items, with its bootstrap interval.

    ``a`` and ``b`` are results of the same kind from :mod:`zett.evaluate` (``score``/``bits_per_byte`` results,
    :class:`~zett.evaluate.tasks.TaskResult`, :class:`~zett.evaluate.tasks.ChoiceResult` for the macro mean,
    :class:`~zett.evaluate.agreement.AgreementResult`'s parts), or anything with a ``paired()`` method. For bits
    per byte a negative difference means ``a`` is better; for accuracy a positive one does. ``excludes(0)`` on
    the returned :class:`Estimate` says whether the evaluation separates the two at this level."""
    pa, pb = _paired(a), _paired(b)
    if pa.keys != pb.keys:
        raise ValueError(
            "the two results were not scored on the same items (different texts, tasks or examples); "
            "score both models on the same data to compare them"
        )
    full = np.arange(len(pa.num))[None, :]
    value = float(pa.statistic(full)[0] - pb.statistic(full)[0])
    low, high = bootstrap(
        lambda idx: pa.statistic(idx) - pb.statistic(idx),
        len(pa.num),
        n_boot=n_boot,
        seed=seed,
        level=level,
        strata=pa.strata,
    )
    return Estimate(value, low, high, len(pa.num), level)


def _paired(result: Any) -> Paired:
    if isinstance(result, Paired):
        return result
    if hasattr(result, "paired"):
        return result.paired()
    raise TypeError(
        f"cannot compare a {type(result).__name__}; pass results returned by zett.evaluate "
        "(score, choice_accuracy, agreement)"
    )


__all__ = ["Estimate", "Paired", "bootstrap", "compare", "mean_estimate", "ratio_estimate", "wilson"]
