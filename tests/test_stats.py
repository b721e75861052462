"""vtlib.stats agrees with sklearn, scipy and brute-force DeLong, and its intervals cover the truth."""
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import bootstrap as scipy_bootstrap
from scipy.stats import norm
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

from vtlib import stats
from vtlib.errors import VtlibError

M, N = 69, 229  # AdrenalMNIST3D test split: positives, negatives


def binormal(rng, d, m=M, n=N):
    """Labels and scores with negatives ~ N(0, 1), positives ~ N(d, 1): true AUC = Φ(d / √2)."""
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    return y, np.r_[rng.normal(d, 1, m), rng.normal(0, 1, n)]


def tied_case(seed, m=9, n=13, levels=5):
    """Small case with many ties: two correlated models on a coarse score grid."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.r_[np.ones(m, int), np.zeros(n, int)])
    a = np.round(rng.random(m + n) * levels + y, 0) / (levels + 1)
    b = np.round(a * levels + rng.normal(0, 1, m + n), 0) / levels
    return y, a, b


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- point metrics

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # only ~14 distinct values: many ties
    assert stats.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # torch tensors, (N, 1) labels and (N, 2) softmax outputs are accepted
    s2 = np.stack([1 - s / 2, s / 2], 1)
    assert stats.auc(torch.tensor(y)[:, None], torch.tensor(s2)) == pytest.approx(roc_auc_score(y, s))


def test_accuracy_and_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.7, 0.4, 0.9, 0.3])
    assert stats.accuracy(y, s) == pytest.approx(4 / 6)
    assert stats.balanced_accuracy(y, s) == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert stats.balanced_accuracy(y, np.zeros(6)) == 0.5  # "always negative"
    assert stats.accuracy(y, s, threshold=0.05) == pytest.approx(2 / 6)


def test_choose_threshold_maximises_validation_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.05, 0.1, 0.2, 0.3, 0.33, 0.42, 0.38, 0.45, 0.9])  # not separable at 0.5
    t = stats.choose_threshold(y, s)
    grid = np.r_[np.linspace(0, 1, 2001), s]
    best = max(stats.balanced_accuracy(y, s, threshold=g) for g in grid)
    assert stats.balanced_accuracy(y, s, threshold=t) == pytest.approx(best)
    assert best > stats.balanced_accuracy(y, s, threshold=0.5)
    assert 0.3 < t < 0.5
    assert stats.choose_threshold(y, s, "youden") == t
    # a wide gap (0.3, 0.9): every threshold in it is optimal, the tie goes to 0.5 (not the midpoint 0.6)
    assert stats.choose_threshold([0, 0, 1, 1], [0.1, 0.3, 0.9, 0.95]) == 0.5
    assert stats.choose_threshold([0, 0, 1, 1], [0.1, 0.6, 0.9, 0.95]) == pytest.approx(0.75)
    # accuracy on an imbalanced set can prefer "always negative" (t at the top score)
    y2, s2 = np.r_[np.zeros(8, int), 1, 1], np.r_[np.linspace(0.3, 0.9, 8), 0.35, 0.4]
    t2 = stats.choose_threshold(y2, s2, "accuracy")
    assert stats.accuracy(y2, s2, threshold=t2) == 0.8 == max(stats.accuracy(y2, s2, g) for g in grid)


# ----------------------------------------------------------------------------- DeLong

def brute_delong(y, a, b):
    """DeLong's z and p with explicit loops over all positive/negative pairs (no ranks)."""
    def components(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = np.array([[1.0 if x > z else 0.5 if x == z else 0.0 for z in neg] for x in pos])
        return psi.mean(1), psi.mean(0), psi.mean()  # V10 (m,), V01 (n,), AUC

    def cov(u, v):
        return sum((ui - u.mean()) * (vi - v.mean()) for ui, vi in zip(u, v)) / (len(u) - 1)

    (v10a, v01a, auc_a), (v10b, v01b, auc_b) = components(a), components(b)
    m, n = len(v10a), len(v01a)
    var_a = cov(v10a, v10a) / m + cov(v01a, v01a) / n
    var_b = cov(v10b, v10b) / m + cov(v01b, v01b) / n
    cov_ab = cov(v10a, v10b) / m + cov(v01a, v01b) / n
    z = (auc_a - auc_b) / np.sqrt(var_a + var_b - 2 * cov_ab)
    return auc_a - auc_b, var_a, z, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_delong_matches_brute_force_with_ties(seed):
    y, a, b = tied_case(seed)
    diff, var_a, z, p = brute_delong(y, a, b)
    res = stats.delong(y, a, b)
    se = (res.high - res.low) / (2 * norm.ppf(0.975))
    assert res.diff == pytest.approx(diff, abs=1e-12)
    assert res.diff / se == pytest.approx(z, rel=1e-9)
    assert res.p == pytest.approx(p, rel=1e-9)
    assert stats.delong_variance(y, a) == pytest.approx((roc_auc_score(y, a), var_a), rel=1e-9)
    assert res.method == "delong" and "delong" in str(res)


def test_delong_identical_models_zero_variance_no_warning():
    y, a, _ = tied_case(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = stats.delong(y, a, a.copy())
    assert (res.diff, res.low, res.high, res.p) == (0.0, 0.0, 0.0, 1.0)


def test_delong_ci_and_hanley_mcneil_agree_roughly():
    y, s = binormal(np.random.default_rng(0), 1.19)
    a, var = stats.delong_variance(y, s)
    assert np.sqrt(var) == pytest.approx(stats.hanley_mcneil_se(a, M, N), rel=0.25)
    ci = stats.delong_ci(y, s)
    assert ci.low < a < ci.high and ci.high - ci.low == pytest.approx(2 * 1.96 * np.sqrt(var), rel=1e-3)


# ----------------------------------------------------------------------------- bootstrap

def test_bootstrap_matches_scipy_percentile():
    rng = np.random.default_rng(1)
    y, x = binormal(rng, 1.0)
    p = sigmoid(x - 1)
    acc = lambda yy, ss, axis=-1: np.mean((ss > 0.5) == yy, axis=axis)  # noqa: E731
    ref = scipy_bootstrap((y, p), acc, paired=True, vectorized=True, n_resamples=4000,
                          method="percentile", rng=np.random.default_rng(2)).confidence_interval
    ours = stats.bootstrap_ci(y, p, "acc", n_boot=4000, stratified=False)
    assert ours.estimate == pytest.approx(acc(y, p))
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=0.01)
    ref = scipy_bootstrap((y, p), stats.auc, paired=True, vectorized=False, n_resamples=2000,
                          method="percentile", rng=np.random.default_rng(3)).confidence_interval
    ours = stats.bootstrap_ci(y, p, "auc", n_boot=2000, stratified=False)
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=0.01)


def test_coverage_on_simulated_test_sets():
    d = 1.19
    truth = norm.cdf(d / np.sqrt(2))  # ≈ 0.80
    rng = np.random.default_rng(1)
    hits_delong = hits_boot = 0
    for i in range(500):  # DeLong is cheap: 500 test sets; the bootstrap on the first 200
        y, s = binormal(rng, d)
        ci = stats.delong_ci(y, s)
        hits_delong += ci.low <= truth <= ci.high
        if i < 200:
            ci = stats.bootstrap_ci(y, s, n_boot=300, seed=i)
            hits_boot += ci.low <= truth <= ci.high
    # at 69/229 both run a little under 95% (about 93%): Wald and percentile intervals are approximate
    assert 0.90 <= hits_delong / 500 <= 0.99
    assert 0.88 <= hits_boot / 200 <= 0.99


def test_paired_bootstrap_agrees_with_delong_and_is_deterministic():
    rng = np.random.default_rng(4)
    y, x = binormal(rng, 1.2)
    a, b = x, x + rng.normal(0, 1.2, len(x))  # b is a noisier copy of a
    boot, dl = stats.paired_bootstrap(y, a, b, seed=7), stats.delong(y, a, b)
    assert boot.diff == pytest.approx(dl.diff)
    assert boot.high - boot.low == pytest.approx(dl.high - dl.low, rel=0.2)
    assert boot.p < 0.05 and dl.p < 0.05
    mild = x + rng.normal(0, 0.2, len(x))  # a small gap: p well away from 0 and 1
    boot_mild, dl_mild = stats.paired_bootstrap(y, a, mild, seed=7), stats.delong(y, a, mild)
    assert 0.02 < dl_mild.p < 0.8 and boot_mild.p == pytest.approx(dl_mild.p, abs=0.04)
    assert stats.paired_bootstrap(y, a, b, seed=7) == boot
    assert stats.paired_bootstrap(y, a, a, seed=7).p == 1.0
    assert stats.bootstrap_ci(y, a, seed=3) == stats.bootstrap_ci(y, a, seed=3)
    assert stats.bootstrap_ci(y, a, seed=3) != stats.bootstrap_ci(y, a, seed=4)
    # stratified: every replicate keeps both classes, even with 2 positives in 52 clips
    y2, s2 = np.r_[1, 1, np.zeros(50, int)], rng.random(52)
    assert np.isfinite(stats.bootstrap_ci(y2, s2, n_boot=200)).all()


# ----------------------------------------------------------------------------- planning

def test_hanley_mcneil_and_resolvable_difference():
    assert stats.hanley_mcneil_se(0.8, 69, 229) == pytest.approx(0.0339, abs=0.0005)
    for a, se in [(0.70, 0.038), (0.80, 0.034), (0.85, 0.030), (0.90, 0.026)]:
        assert stats.hanley_mcneil_se(a, 69, 229) == pytest.approx(se, abs=0.0006)
    assert stats.resolvable_difference(69, 229, 0.8) == pytest.approx(0.094, abs=0.003)
    assert stats.resolvable_difference(69, 229, 0.8, r=0.8) < stats.resolvable_difference(69, 229, 0.8)
    y = np.r_[np.ones(69, int), np.zeros(229, int)]
    assert stats.describe_test_set(y) == (
        "298 test clips (69 positive, 229 negative): one model's AUC near 0.80 has a standard error "
        "of about 0.034; two models sharing this test set must differ by about 0.095 AUC to be told "
        "apart (α = 0.05, power 0.8, correlation 0.5).")


# ----------------------------------------------------------------------------- seeds

def test_seed_summary_and_mean_std():
    v = [0.774, 0.81, 0.73]
    iv = stats.seed_summary(v)
    half = student_t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((np.mean(v), np.mean(v) - half, np.mean(v) + half))
    assert stats.mean_std(v) == pytest.approx((np.mean(v), np.std(v, ddof=1)))
    one = stats.seed_summary([0.8])
    assert one.estimate == 0.8 and np.isnan(one.low) and np.isnan(one.high)
    assert str(iv) == f"{np.mean(v):.3f} [{np.mean(v) - half:.3f}, {np.mean(v) + half:.3f}]"


def test_pooled_interval_and_paired_seeds():
    rng = np.random.default_rng(5)
    y, x = binormal(rng, 1.2)
    seeds = [x + rng.normal(0, 0.7, len(x)) for _ in range(3)]
    # identical seeds: the seed level adds nothing, and the clip indices equal bootstrap_ci's
    assert stats.pooled_interval(y, [x, x, x], seed=1) == stats.bootstrap_ci(y, x, seed=1)
    pooled = stats.pooled_interval(y, seeds, seed=1)
    assert pooled.estimate == pytest.approx(np.mean([stats.auc(y, s) for s in seeds]))
    assert pooled == stats.pooled_interval(y, seeds, seed=1)
    # seeds that disagree a lot (AUC about 0.80, 0.68, 0.57): the seed level must widen the interval
    spread = [x + rng.normal(0, sd, len(x)) for sd in (0.2, 1.5, 5.0)]
    wide = stats.pooled_interval(y, spread, n_boot=1000)
    single = max(np.subtract(*stats.bootstrap_ci(y, s, n_boot=1000)[2:0:-1]) for s in spread)
    assert wide.high - wide.low > 1.3 * single and wide.low < wide.estimate < wide.high
    same = stats.paired_seeds(y, seeds, seeds, n_boot=500)
    assert (same.diff, same.low, same.high, same.p) == (0.0, 0.0, 0.0, 1.0)
    worse = [s + rng.normal(0, 2.0, len(x)) for s in seeds]
    cmp = stats.paired_seeds(y, seeds, worse, n_boot=500)
    assert cmp.diff > 0 and cmp.low > 0 and cmp.p < 0.05 and "paired seeds" in cmp.method
    assert "independent" in stats.paired_seeds(y, seeds, worse[:2], n_boot=200).method
    acc = stats.pooled_interval(y, [sigmoid(s) for s in seeds], "acc", n_boot=300)
    assert acc.low <= acc.estimate <= acc.high


# ----------------------------------------------------------------------------- errors

def test_clear_errors():
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.3, 0.6])
    with pytest.raises(VtlibError, match=r"^y: expected integer 0/1 labels.*0\.3"):
        stats.auc([0, 0.3, 1, 1], s)
    with pytest.raises(VtlibError, match=r"^y: expected binary labels"):
        stats.auc([0, 1, 2, 1], s)
    with pytest.raises(VtlibError, match=r"^s: expected probabilities.*logits.*softmax"):
        stats.accuracy(y, [-2.0, 3.1, 0.2, 1.5])
    with pytest.raises(VtlibError, match=r"^s: expected probabilities.*logits"):
        stats.bootstrap_ci(y, [-2.0, 3.1, 0.2, 1.5], "balanced_accuracy")
    with pytest.raises(VtlibError, match=r"^y: expected at least 1 clip\(s\) of each class"):
        stats.auc([1, 1, 1, 1], s)
    with pytest.raises(VtlibError, match=r"^s_a: expected 4 scores.*got 3"):
        stats.paired_bootstrap(y, s[:3], s)
    with pytest.raises(VtlibError, match=r"^s_b: expected 4 scores"):
        stats.delong(y, s, s[:2])
    with pytest.raises(VtlibError, match=r"^s: expected finite scores"):
        stats.auc(y, [0.1, np.nan, 0.3, 0.4])
    with pytest.raises(VtlibError, match=r"^metric: "):
        stats.bootstrap_ci(y, s, "f1")
    with pytest.raises(VtlibError, match=r"^scores_per_seed\[1\]: expected 4 scores"):
        stats.pooled_interval(y, [s, s[:3]])
    assert stats.auc(y, [-2.0, 3.1, 0.2, 1.5]) == 1.0  # AUC is rank-based: logits are fine


# ----------------------------------------------------------------------------- plot

def test_forest_plot_one_line_per_row():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vtlib.viz import forest_plot

    rows = [("model A", stats.Interval(0.8, 0.75, 0.85, 0.95)),
            ("model B", stats.Interval(0.77, 0.70, 0.83, 0.95)),
            ("A - B", stats.PairedComparison(0.03, -0.02, 0.08, 0.3, 0.95, "delong"))]
    ax = forest_plot(rows, reference=0.827)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == len(rows) + 1  # one per row, then the reference line
    assert list(ax.lines[0].get_xdata()) == [0.75, 0.85] and ax.lines[-1].get_xdata()[0] == 0.827
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    assert [ticks[k] for k in sorted(ticks, reverse=True)] == ["model A", "model B", "A - B"]  # top down
    assert len(forest_plot(rows[:2]).lines) == 2
    with pytest.raises(VtlibError, match=r"^rows: "):
        forest_plot([])
    plt.close("all")


def test_approx_paired_from_aucs_adds_seed_and_test_noise():
    se = stats.hanley_mcneil_se(0.8, 69, 229)
    # identical seeds: only the test-set part is left, sqrt(2 SE^2 (1 - r))
    res = stats.approx_paired_from_aucs([0.8, 0.8, 0.8], [0.8, 0.8, 0.8], 69, 229, r=0.5)
    assert res.diff == 0 and res.p == 1.0
    assert res.high - res.low == pytest.approx(2 * 1.959964 * np.sqrt(2 * se**2 * 0.5), rel=1e-4)
    # seed spread widens it; more agreement (r) narrows it
    noisy = stats.approx_paired_from_aucs([0.85, 0.80, 0.75], [0.80, 0.80, 0.80], 69, 229)
    assert noisy.high - noisy.low > res.high - res.low
    tight = stats.approx_paired_from_aucs([0.85, 0.80, 0.75], [0.80, 0.80, 0.80], 69, 229, r=0.9)
    assert tight.high - tight.low < noisy.high - noisy.low
    assert "approximate" in noisy.method
    with pytest.raises(VtlibError, match="aucs_b"):
        stats.approx_paired_from_aucs([0.8, 0.7], [0.8], 69, 229)
