"""Exercise checks for notebook 13 (the ablation lab). Each prints one fixed line and returns a bool."""
from __future__ import annotations

import numpy as np

from vtlib import stats
from vtlib.exercises.common import call, compare_number, verdict


def _reference_paired_bal_acc(y, s_a, s_b, thr_a, thr_b, n_boot, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))

    def bal(yy, ss, thr):
        pred = ss > thr
        pos = yy == 1
        return ((pred & pos).sum(-1) / pos.sum(-1) + (~pred & ~pos).sum(-1) / (~pos).sum(-1)) / 2

    reps = bal(y[idx], s_a[idx], thr_a) - bal(y[idx], s_b[idx], thr_b)
    return bal(y, s_a, thr_a) - bal(y, s_b, thr_b), np.percentile(reps, [2.5, 97.5])


def _case(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    shared = rng.normal(size=n)                                  # both models see the same clips
    s_a = 1 / (1 + np.exp(-(1.6 * y + shared + 0.4 * rng.normal(size=n) - 1)))
    s_b = 1 / (1 + np.exp(-(1.2 * y + shared + 0.4 * rng.normal(size=n) - 1)))
    return y, s_a, s_b


def check_paired_balanced_accuracy(fn) -> bool:
    """``fn(y, s_a, s_b, thr_a, thr_b, n_boot, seed) -> (diff, low, high)``: a PAIRED percentile bootstrap
    of balanced accuracy(a at thr_a) - balanced accuracy(b at thr_b)."""
    name = "check_paired_balanced_accuracy"
    hint = ("draw ONE array of clip indices per replicate and use it for both models; "
            "balanced accuracy = (sensitivity + specificity) / 2, each model at its own threshold")
    for seed, (thr_a, thr_b) in enumerate(((0.3, 0.4), (0.5, 0.25))):
        y, s_a, s_b = _case(seed)
        got, problem = call(fn, (y, s_a, s_b, thr_a, thr_b, 2000, seed), "fn(y, s_a, s_b, ...)")
        if problem:
            return verdict(name, problem, hint)
        try:
            diff, low, high = (float(v) for v in got)
        except (TypeError, ValueError):
            return verdict(name, f"expected (diff, low, high), got {type(got).__name__}", hint)
        want, (w_low, w_high) = _reference_paired_bal_acc(y, s_a, s_b, thr_a, thr_b, 2000, seed)
        problem = compare_number(diff, want, "diff", 1e-9)
        if problem:
            return verdict(name, problem, hint)
        if (high - low) > 1.3 * (w_high - w_low):
            return verdict(name, f"the interval is {(high - low) / (w_high - w_low):.1f}x too wide: "
                                 "the two models were resampled independently", hint)
        if abs(low - w_low) > 0.02 or abs(high - w_high) > 0.02:
            return verdict(name, f"interval [{low:.3f}, {high:.3f}], expected about [{w_low:.3f}, {w_high:.3f}]", hint)
    return verdict(name, None, hint)


def _positives_needed(gap: float, auc: float, ratio: float, r: float) -> int:
    n = 2
    while stats.resolvable_difference(n, max(2, round(ratio * n)), auc, r=r) > gap:
        n += 1
    return n


def check_positives_needed(fn) -> bool:
    """``fn(gap, auc=0.8, ratio=229/69, r=0.5) -> int``: the fewest positives (negatives = round(ratio *
    positives)) for which two correlated models that differ by ``gap`` AUC can be told apart."""
    name = "check_positives_needed"
    hint = ("loop n = 2, 3, ... until vtlib.stats.resolvable_difference(n, round(ratio * n), auc, r=r) <= gap; "
            "the gap is between TWO models, so use the difference's standard error, not one model's")
    for gap, auc, ratio, r in ((0.05, 0.8, 229 / 69, 0.5), (0.03, 0.85, 3.0, 0.6), (0.1, 0.75, 1.0, 0.5)):
        got, problem = call(fn, (gap, auc, ratio, r), f"fn({gap}, {auc}, ...)")
        if problem:
            return verdict(name, problem, hint)
        want = _positives_needed(gap, auc, ratio, r)
        if not isinstance(got, (int, np.integer)):
            return verdict(name, f"expected an int number of positives, got {type(got).__name__}", hint)
        if got != want:
            return verdict(name, f"for a gap of {gap} expected {want} positives, got {got}", hint)
    return verdict(name, None, hint)


def check_resolved(answer, y, s_a, s_b) -> bool:
    """``answer``: True if DeLong's 95 % interval of AUC(a) - AUC(b) on these clips excludes 0, else False."""
    name = "check_resolved"
    hint = "run vtlib.stats.delong(y, s_a, s_b) and look whether low > 0 or high < 0"
    if answer is None:
        return verdict(name, "set `resolved` to True or False", hint)
    if not isinstance(answer, (bool, np.bool_)):
        return verdict(name, f"expected True or False, got {type(answer).__name__}", hint)
    res = stats.delong(y, s_a, s_b)
    truth = bool(res.low > 0 or res.high < 0)
    if bool(answer) != truth:
        return verdict(name, "look at the interval again: it " + ("excludes" if truth else "contains") + " 0", hint)
    return verdict(name, None, hint)
