"""Reference solutions for notebook 13's exercises."""
from __future__ import annotations

import numpy as np

from vtlib import stats


def paired_balanced_accuracy(y, s_a, s_b, thr_a, thr_b, n_boot=2000, seed=0):
    y, s_a, s_b = (np.asarray(v) for v in (y, s_a, s_b))
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))  # one draw, both models

    def bal(yy, ss, thr):
        pred, pos = ss > thr, yy == 1
        return ((pred & pos).sum(-1) / pos.sum(-1) + (~pred & ~pos).sum(-1) / (~pos).sum(-1)) / 2

    reps = bal(y[idx], s_a[idx], thr_a) - bal(y[idx], s_b[idx], thr_b)
    low, high = np.percentile(reps, [2.5, 97.5])
    return bal(y, s_a, thr_a) - bal(y, s_b, thr_b), low, high


def positives_needed(gap, auc=0.8, ratio=229 / 69, r=0.5):
    n = 2
    while stats.resolvable_difference(n, max(2, round(ratio * n)), auc, r=r) > gap:
        n += 1
    return n
