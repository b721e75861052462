"""Notebook 13's checks: the solution passes, the stub and typical slips get a hint."""
import numpy as np
from exercise_helpers import stub

from vtlib import stats
from vtlib.exercises import nb13
from vtlib.exercises.solutions import nb13 as sol


def test_paired_balanced_accuracy(capsys):
    assert nb13.check_paired_balanced_accuracy(sol.paired_balanced_accuracy)
    assert capsys.readouterr().out.strip() == "check_paired_balanced_accuracy: correct"
    assert not nb13.check_paired_balanced_accuracy(stub)
    assert "not yet - write the function first" in capsys.readouterr().out

    def unpaired(y, s_a, s_b, thr_a, thr_b, n_boot=2000, seed=0):   # the typical slip
        rng = np.random.default_rng(seed)
        ia, ib = rng.integers(0, len(y), (2, n_boot, len(y)))

        def bal(yy, ss, thr):
            pred, pos = ss > thr, yy == 1
            return ((pred & pos).sum(-1) / pos.sum(-1) + (~pred & ~pos).sum(-1) / (~pos).sum(-1)) / 2
        reps = bal(y[ia], s_a[ia], thr_a) - bal(y[ib], s_b[ib], thr_b)
        return (bal(y, s_a, thr_a) - bal(y, s_b, thr_b), *np.percentile(reps, [2.5, 97.5]))

    assert not nb13.check_paired_balanced_accuracy(unpaired)
    assert "resampled independently" in capsys.readouterr().out

    def one_threshold(y, s_a, s_b, thr_a, thr_b, n_boot=2000, seed=0):
        return sol.paired_balanced_accuracy(y, s_a, s_b, 0.5, 0.5, n_boot, seed)

    assert not nb13.check_paired_balanced_accuracy(one_threshold)
    assert "not yet" in capsys.readouterr().out


def test_positives_needed(capsys):
    assert nb13.check_positives_needed(sol.positives_needed)
    assert "correct" in capsys.readouterr().out
    assert not nb13.check_positives_needed(stub)

    def one_model_se(gap, auc=0.8, ratio=229 / 69, r=0.5):     # slip: one model's SE, not the difference's
        n = 2
        while 1.96 * stats.hanley_mcneil_se(auc, n, round(ratio * n)) > gap:
            n += 1
        return n

    assert not nb13.check_positives_needed(one_model_se)
    assert "expected" in capsys.readouterr().out
    assert not nb13.check_positives_needed(lambda *a: 69.0)
    assert "int" in capsys.readouterr().out


def test_resolved(capsys):
    y, s_a, s_b = nb13._case(0)
    res = stats.delong(y, s_a, s_b)
    truth = bool(res.low > 0 or res.high < 0)
    assert nb13.check_resolved(truth, y, s_a, s_b)
    assert not nb13.check_resolved(not truth, y, s_a, s_b)
    assert not nb13.check_resolved(None, y, s_a, s_b)
    assert "set `resolved`" in capsys.readouterr().out
