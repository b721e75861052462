"""Statistics for one small test set: AUC, intervals, paired comparisons, and what a test set can resolve.

AdrenalMNIST3D's test split has 298 clips (69 positive, 229 negative). One model's AUC on it has a
standard error of about 0.034, so two models a few hundredths apart are usually indistinguishable.
This module gives the tools to say so honestly:

- point metrics: ``auc`` (Mann-Whitney, equals sklearn), ``accuracy``, ``balanced_accuracy``;
- one model: ``bootstrap_ci`` (percentile bootstrap over test clips), ``delong_ci``;
- two models on the same clips: ``paired_bootstrap``, ``delong`` (DeLong's test, Sun & Xu 2014);
- planning: ``hanley_mcneil_se``, ``resolvable_difference``, ``describe_test_set``;
- several training seeds: ``seed_summary``, ``pooled_interval``, ``paired_seeds``, and
  ``approx_paired_from_aucs`` for older results that kept per-seed AUCs but no per-clip scores.

Shapes: labels ``y`` are int 0/1 shaped (N,); scores ``s`` are positive-class probabilities shaped
(N,) (an (N, 2) softmax output is accepted, column -1 is used). Numpy arrays, lists and torch
tensors all work. Everything random takes a ``seed`` and is deterministic given it.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from scipy.stats import norm, rankdata
from scipy.stats import t as student_t

from vtlib.errors import bad_arg, check_choice, check_positive_int

METRICS = ("auc", "acc", "accuracy", "balanced_accuracy")


class Interval(NamedTuple):
    """A point estimate with a two-sided interval at confidence ``level``."""

    estimate: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


class PairedComparison(NamedTuple):
    """metric(a) - metric(b) on a shared test set, its interval, a two-sided p, and how it was computed."""

    diff: float  # metric(a) - metric(b)
    low: float
    high: float
    p: float  # two-sided p-value for "no difference"
    level: float
    method: str

    def __str__(self) -> str:
        p = "p < 0.001" if self.p < 0.001 else f"p = {self.p:.3f}"
        return f"{self.diff:+.3f} [{self.low:+.3f}, {self.high:+.3f}], {p} ({self.method})"


# ----------------------------------------------------------------------------- input checks

def _numpy(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor; no torch import needed
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.size == 0:
        raise bad_arg(name, "a non-empty array", "an empty array", "pass at least one clip")
    return a


def _labels(y, name: str = "y") -> np.ndarray:
    """(N,) or (N, 1) labels -> (N,) int64, checked to be 0/1."""
    y = _numpy(y, name)
    if y.ndim == 2 and y.shape[1] == 1:  # medmnist stores labels as (N, 1)
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise bad_arg(name, "0/1 labels shaped (N,)", f"{y.dtype} array of shape {y.shape}",
                      "pass one integer label per clip, e.g. labels.reshape(-1)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
        raise bad_arg(name, "integer 0/1 labels", f"a non-integer label {bad!r}",
                      "pass class labels, not probabilities (scores go in the score argument)")
    if y.min() < 0 or y.max() > 1:
        raise bad_arg(name, "binary labels in {0, 1}", f"labels in [{y.min()}, {y.max()}]",
                      "this module handles binary tasks; binarise one class vs the rest")
    return y.astype(np.int64)


def _scores(s, n: int, name: str, *, probability: bool = False) -> np.ndarray:
    """(N,) or (N, 2) scores -> (N,) float64: the right length, finite, in [0, 1] if ``probability``."""
    s = _numpy(s, name)
    if s.ndim == 2 and s.shape[1] in (1, 2):
        s = s[:, -1]  # the positive-class column of a softmax output
    if s.ndim != 1 or s.dtype.kind not in "biuf":
        raise bad_arg(name, "scores shaped (N,) or (N, 2)", f"{s.dtype} array of shape {s.shape}",
                      "pass the positive-class probability of each clip")
    if len(s) != n:
        raise bad_arg(name, f"{n} scores, one per label", f"{len(s)} scores",
                      "pass the scores and labels of the same clips, in the same order")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise bad_arg(name, "finite scores", f"{int((~np.isfinite(s)).sum())} NaN/inf values",
                      "check the model output (a NaN loss during training leaves NaN scores)")
    if probability and (s.min() < 0 or s.max() > 1):
        raise bad_arg(name, "probabilities in [0, 1] (this metric thresholds them)",
                      f"values in [{s.min():.3g}, {s.max():.3g}], which looks like logits",
                      "apply softmax first, e.g. logits.softmax(-1)[:, 1], or use metric='auc'")
    return s


def _both_classes(y: np.ndarray, name: str = "y", at_least: int = 1) -> None:
    n_pos = int(y.sum())
    if min(n_pos, len(y) - n_pos) < at_least:
        raise bad_arg(name, f"at least {at_least} clip(s) of each class",
                      f"{n_pos} positive and {len(y) - n_pos} negative",
                      "AUC compares positives with negatives: evaluate on a split with both classes")


def _metric_name(metric: str) -> str:
    check_choice("metric", metric, METRICS)
    return "acc" if metric == "accuracy" else metric


def _level(level: float) -> None:
    if not 0 < level < 1:
        raise bad_arg("level", "a confidence level in (0, 1)", level, "use e.g. level=0.95")


# ----------------------------------------------------------------------------- point metrics

def _metric_rows(metric: str, y: np.ndarray, s: np.ndarray, threshold: float) -> np.ndarray:
    """One metric per row: y (B, N) 0/1 ints, s (B, N) scores -> (B,). NaN where a row lacks a class."""
    pos = y == 1
    n_pos, n_neg = pos.sum(1), (~pos).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "auc":
            # Mann-Whitney: AUC = (sum of the positives' midranks - m(m+1)/2) / (m n); ties count 1/2
            ranks = rankdata(s, axis=1)
            return ((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        pred = s > threshold  # positive when the score is above the threshold, as medmnist does
        if metric == "acc":
            return (pred == pos).mean(1)
        return ((pred & pos).sum(1) / n_pos + (~pred & ~pos).sum(1) / n_neg) / 2


def auc(y, s) -> float:
    """ROC AUC of scores ``s`` (N,) for labels ``y`` (N,); any finite scores (logits work too)."""
    y = _labels(y)
    s = _scores(s, len(y), "s")
    _both_classes(y)
    return float(_metric_rows("auc", y[None], s[None], 0.5)[0])


def accuracy(y, s, threshold: float = 0.5) -> float:
    """Share of clips where ``s > threshold`` matches the label; ``s`` are probabilities (N,)."""
    y = _labels(y)
    s = _scores(s, len(y), "s", probability=True)
    return float(_metric_rows("acc", y[None], s[None], threshold)[0])


def balanced_accuracy(y, s, threshold: float = 0.5) -> float:
    """Mean of sensitivity and specificity at ``threshold``: 0.5 for a constant predictor."""
    y = _labels(y)
    s = _scores(s, len(y), "s", probability=True)
    _both_classes(y)
    return float(_metric_rows("balanced_accuracy", y[None], s[None], threshold)[0])


def choose_threshold(y_val, s_val, criterion: str = "balanced_accuracy") -> float:
    """The threshold that maximises ``criterion`` on the VALIDATION split; ties go to the one nearest 0.5.

    Never call this on the test split: a threshold tuned on test makes the test ACC optimistic.
    ``criterion``: "balanced_accuracy", "youden" (sensitivity + specificity - 1, the same maximiser)
    or "accuracy". Returns t for the rule ``s > t``.
    """
    check_choice("criterion", criterion, ("balanced_accuracy", "youden", "accuracy"))
    y = _labels(y_val, "y_val")
    s = _scores(s_val, len(y), "s_val", probability=True)
    _both_classes(y, "y_val")
    u = np.unique(s)
    # every distinct split of the sorted scores: below all, between neighbours, at the top; plus 0.5
    cands = np.concatenate([[np.nextafter(u[0], -np.inf)], (u[:-1] + u[1:]) / 2, [u[-1], 0.5]])
    metric = "acc" if criterion == "accuracy" else "balanced_accuracy"
    values = _metric_rows(metric, y[None], s[None], cands[:, None])  # one row per candidate
    best = np.flatnonzero(values >= values.max() - 1e-12)
    return float(cands[best[np.argmin(np.abs(cands[best] - 0.5))]])


# ----------------------------------------------------------------------------- bootstrap

def _resample(y: np.ndarray, n_boot: int, rng: np.random.Generator, stratified: bool) -> np.ndarray:
    """Clip indices (n_boot, N). Stratified: positives and negatives resampled separately."""
    if not stratified:
        return rng.integers(0, len(y), size=(n_boot, len(y)))
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return np.concatenate([rng.choice(pos, (n_boot, len(pos))), rng.choice(neg, (n_boot, len(neg)))], 1)


def _percentiles(reps: np.ndarray, level: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]  # a non-stratified replicate without one class has no AUC
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _two_sided_p(reps: np.ndarray) -> float:
    reps = reps[np.isfinite(reps)]
    return float(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))))


def _check_boot(y, metric: str, n_boot: int, level: float) -> tuple[np.ndarray, str]:
    metric = _metric_name(metric)
    check_positive_int("n_boot", n_boot)
    _level(level)
    y = _labels(y)
    if metric != "acc":
        _both_classes(y)
    return y, metric


def bootstrap_ci(y, s, metric: str = "auc", *, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                 threshold: float = 0.5, stratified: bool = True) -> Interval:
    """Percentile bootstrap interval of ``metric`` over the test clips (N,): resample clips, recompute.

    All ``n_boot`` replicates are one (n_boot, N) index array, so this takes milliseconds.
    """
    y, metric = _check_boot(y, metric, n_boot, level)
    s = _scores(s, len(y), "s", probability=metric != "auc")
    idx = _resample(y, n_boot, np.random.default_rng(seed), stratified)
    est = _metric_rows(metric, y[None], s[None], threshold)[0]
    return Interval(float(est), *_percentiles(_metric_rows(metric, y[idx], s[idx], threshold), level), level)


def paired_bootstrap(y, s_a, s_b, metric: str = "auc", *, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0, threshold: float = 0.5, stratified: bool = True) -> PairedComparison:
    """metric(a) - metric(b) for two models scored on the same clips, resampling the SAME clips for both.

    Sharing the indices keeps the correlation between the models, which makes the interval of the
    difference much narrower than two separate intervals would suggest.
    """
    y, metric = _check_boot(y, metric, n_boot, level)
    a = _scores(s_a, len(y), "s_a", probability=metric != "auc")
    b = _scores(s_b, len(y), "s_b", probability=metric != "auc")
    idx = _resample(y, n_boot, np.random.default_rng(seed), stratified)

    def gap(i):  # metric(a) - metric(b) on clips i: i=None gives shape (1,), i (n_boot, N) gives (n_boot,)
        return _metric_rows(metric, y[i], a[i], threshold) - _metric_rows(metric, y[i], b[i], threshold)

    reps = gap(idx)
    return PairedComparison(float(gap(None)[0]), *_percentiles(reps, level), _two_sided_p(reps), level,
                            "paired bootstrap")


# ----------------------------------------------------------------------------- DeLong

def _delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (K,) and their covariance (K, K) for K models scored on the same clips: scores (K, N)."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tz = rankdata(scores, axis=1)  # midranks among all clips
    tz_pos, tz_neg = tz[:, y == 1], tz[:, y == 0]
    v10 = (tz_pos - rankdata(pos, axis=1)) / n  # per positive: share of negatives it beats (ties 1/2)
    v01 = 1 - (tz_neg - rankdata(neg, axis=1)) / m  # per negative: share of positives above it
    aucs = v10.mean(1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n  # np.cov uses ddof=1
    return aucs, cov


def delong_variance(y, s) -> tuple[float, float]:
    """(AUC, DeLong variance of the AUC) for one model: labels (N,), scores (N,)."""
    y = _labels(y)
    s = _scores(s, len(y), "s")
    _both_classes(y, at_least=2)
    aucs, cov = _delong(y, s[None])
    return float(aucs[0]), float(cov[0, 0])


def delong_ci(y, s, level: float = 0.95) -> Interval:
    """Normal interval AUC ± z·SE with DeLong's SE, clipped to [0, 1]."""
    _level(level)
    a, var = delong_variance(y, s)
    half = norm.ppf((1 + level) / 2) * np.sqrt(var)
    return Interval(a, max(0.0, a - half), min(1.0, a + half), level)


def delong(y, s_a, s_b, level: float = 0.95) -> PairedComparison:
    """DeLong's test of AUC(a) - AUC(b) for two models scored on the same clips, O(N log N).

    z = diff / sqrt(var_a + var_b - 2 cov_ab), p = 2 Φ(-|z|), interval diff ± z_{(1+level)/2} · SE.
    Identical score vectors give SE = 0: then diff = 0 and p = 1 (no warning).
    """
    _level(level)
    y = _labels(y)
    a, b = _scores(s_a, len(y), "s_a"), _scores(s_b, len(y), "s_b")
    _both_classes(y, at_least=2)
    aucs, cov = _delong(y, np.stack([a, b]))
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    if se < 1e-12:  # no spread in a - b (e.g. identical scores): p = 1 if diff = 0, else 0
        p = 1.0 if abs(diff) < 1e-12 else 0.0
        return PairedComparison(diff, diff, diff, p, level, "delong")
    half = norm.ppf((1 + level) / 2) * se
    p = float(2 * norm.sf(abs(diff) / se))
    return PairedComparison(diff, diff - half, diff + half, p, level, "delong")


# ----------------------------------------------------------------------------- planning

def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC near ``auc`` with n_pos positives, n_neg negatives."""
    if not 0 <= auc <= 1:
        raise bad_arg("auc", "an AUC in [0, 1]", auc, "pass the AUC you expect, e.g. 0.8")
    check_positive_int("n_pos", n_pos)
    check_positive_int("n_neg", n_neg)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return float(np.sqrt(var))


def resolvable_difference(n_pos: int, n_neg: int, auc: float = 0.8, *, r: float = 0.5,
                          alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest AUC gap two models sharing a test set detect with the given power at two-sided ``alpha``.

    (z_{1-α/2} + z_power) · SE_diff, SE_diff = sqrt(2 SE² (1 - r)), SE from Hanley-McNeil and ``r``
    the correlation between the two models' AUC estimates (0.5 is a typical value for two models).
    """
    if not -1 <= r <= 1:
        raise bad_arg("r", "a correlation in [-1, 1]", r, "use r=0.5 if unsure")
    for name, v in (("alpha", alpha), ("power", power)):
        if not 0 < v < 1:
            raise bad_arg(name, "a probability in (0, 1)", v, "use alpha=0.05, power=0.8")
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * np.sqrt(2 * se**2 * (1 - r)))


def approx_paired_from_aucs(aucs_a, aucs_b, n_pos: int, n_neg: int, *, r: float = 0.5,
                            level: float = 0.95) -> PairedComparison:
    """Approximate interval of mean AUC(a) - mean AUC(b) when only per-seed AUCs were kept, not scores.

    Two noise sources add up: the seed-to-seed spread of the paired differences (shrinks with more
    seeds: var / k; seeds paired by position, so pass the same seeds in the same order) and the test
    set's own noise (does not shrink: every seed is scored on the same clips), approximated by
    Hanley-McNeil at each model's mean AUC with correlation ``r`` between the two estimates.
    Prefer ``paired_seeds`` whenever per-clip scores exist; this is for results that lack them.
    """
    a, b = _values(aucs_a, "aucs_a"), _values(aucs_b, "aucs_b")
    if len(a) != len(b):
        raise bad_arg("aucs_b", f"{len(a)} per-seed AUCs, paired with aucs_a", f"{len(b)} values",
                      "pass the AUCs of the same seeds, in the same order")
    _level(level)
    if not -1 <= r <= 1:
        raise bad_arg("r", "a correlation in [-1, 1]", r, "use r=0.5 if unsure")
    d = a - b
    seed_var = d.var(ddof=1) / len(d) if len(d) > 1 else 0.0
    se_a, se_b = hanley_mcneil_se(float(a.mean()), n_pos, n_neg), hanley_mcneil_se(float(b.mean()), n_pos, n_neg)
    se = float(np.sqrt(seed_var + se_a**2 + se_b**2 - 2 * r * se_a * se_b))
    diff = float(d.mean())
    half = norm.ppf((1 + level) / 2) * se
    p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    return PairedComparison(diff, diff - half, diff + half, p, level, f"approximate: seeds + Hanley-McNeil, r={r:g}")


def describe_test_set(y, auc: float = 0.8, *, r: float = 0.5, alpha: float = 0.05, power: float = 0.8) -> str:
    """One sentence on what a test set with labels ``y`` (N,) can resolve; say it before any comparison."""
    y = _labels(y)
    _both_classes(y)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    gap = resolvable_difference(n_pos, n_neg, auc, r=r, alpha=alpha, power=power)
    return (f"{len(y)} test clips ({n_pos} positive, {n_neg} negative): one model's AUC near {auc:.2f} "
            f"has a standard error of about {se:.3f}; two models sharing this test set must differ by "
            f"about {gap:.3f} AUC to be told apart (α = {alpha:g}, power {power:g}, correlation {r:g}).")


# ----------------------------------------------------------------------------- several seeds

def _values(values, name: str = "values") -> np.ndarray:
    v = _numpy(values, name).astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise bad_arg(name, "finite numbers", v.tolist(), "drop failed runs (NaN) before summarising")
    return v


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof=1) of per-seed results; the std is NaN for a single seed."""
    v = _values(values)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def seed_summary(values, level: float = 0.95) -> Interval:
    """Mean over seeds with a t-interval, mean ± t_{(1+level)/2, n-1} · std / sqrt(n).

    It covers seed-to-seed noise only, not test-set noise (see ``pooled_interval``). With one seed
    there is no spread to measure: low and high are NaN.
    """
    _level(level)
    v = _values(values)
    mean, std = mean_std(v)
    if len(v) == 1:
        return Interval(mean, float("nan"), float("nan"), level)
    half = student_t.ppf((1 + level) / 2, len(v) - 1) * std / np.sqrt(len(v))
    return Interval(mean, mean - half, mean + half, level)


def _seed_scores(scores_per_seed, n: int, name: str, probability: bool) -> list[np.ndarray]:
    if isinstance(scores_per_seed, np.ndarray) and scores_per_seed.ndim == 2:
        scores_per_seed = list(scores_per_seed)  # (K, N): one row per seed
    if not isinstance(scores_per_seed, (list, tuple)) or len(scores_per_seed) == 0:
        raise bad_arg(name, "a non-empty list of (N,) score arrays, one per seed",
                      type(scores_per_seed).__name__, "wrap the per-seed scores in a list: [s0, s1, s2]")
    return [_scores(s, n, f"{name}[{i}]", probability=probability) for i, s in enumerate(scores_per_seed)]


def _per_seed(metric, y, scores, idx, threshold) -> tuple[np.ndarray, np.ndarray]:
    """Full-data metric (K,) and per-replicate metric (n_boot, K) with the same clip indices for all seeds."""
    full = np.array([_metric_rows(metric, y[None], s[None], threshold)[0] for s in scores])
    reps = np.stack([_metric_rows(metric, y[idx], s[idx], threshold) for s in scores], 1)
    return full, reps


def pooled_interval(y, scores_per_seed: Sequence, metric: str = "auc", *, n_boot: int = 2000,
                    level: float = 0.95, seed: int = 0, threshold: float = 0.5) -> Interval:
    """Interval for the mean over seeds that counts seed noise AND test-set noise (two-level bootstrap).

    Each replicate resamples test clips (the same clips for every seed, stratified) and then seeds
    with replacement, and averages the metric over the drawn seeds. With one seed it reduces to
    ``bootstrap_ci``. scores_per_seed: a list of (N,) score arrays sharing the labels y (N,).
    """
    y, metric = _check_boot(y, metric, n_boot, level)
    scores = _seed_scores(scores_per_seed, len(y), "scores_per_seed", metric != "auc")
    rng = np.random.default_rng(seed)
    full, reps = _per_seed(metric, y, scores, _resample(y, n_boot, rng, True), threshold)
    pick = rng.integers(0, len(scores), size=(n_boot, len(scores)))
    means = np.take_along_axis(reps, pick, 1).mean(1)
    return Interval(float(full.mean()), *_percentiles(means, level), level)


def paired_seeds(y, scores_a_per_seed: Sequence, scores_b_per_seed: Sequence, metric: str = "auc", *,
                 n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                 threshold: float = 0.5) -> PairedComparison:
    """mean over seeds of metric(a) - mean of metric(b), by the two-level bootstrap of ``pooled_interval``.

    Test clips are shared by both models in every replicate. Seeds are paired by index (seed i of a
    with seed i of b) when both lists have the same length, else resampled independently.
    """
    y, metric = _check_boot(y, metric, n_boot, level)
    prob = metric != "auc"
    a = _seed_scores(scores_a_per_seed, len(y), "scores_a_per_seed", prob)
    b = _seed_scores(scores_b_per_seed, len(y), "scores_b_per_seed", prob)
    rng = np.random.default_rng(seed)
    idx = _resample(y, n_boot, rng, True)
    full_a, reps_a = _per_seed(metric, y, a, idx, threshold)
    full_b, reps_b = _per_seed(metric, y, b, idx, threshold)
    pick_a = rng.integers(0, len(a), size=(n_boot, len(a)))
    pick_b = pick_a if len(a) == len(b) else rng.integers(0, len(b), size=(n_boot, len(b)))
    reps = np.take_along_axis(reps_a, pick_a, 1).mean(1) - np.take_along_axis(reps_b, pick_b, 1).mean(1)
    method = "two-level bootstrap, " + ("paired seeds" if len(a) == len(b) else "independent seeds")
    return PairedComparison(float(full_a.mean() - full_b.mean()), *_percentiles(reps, level),
                            _two_sided_p(reps), level, method)
