# %% [markdown]
# # 13 · The ablation lab
#
# **What you will learn**
# - what one small test set can and cannot tell you: the standard error of an AUC (Hanley & McNeil),
#   and the smallest difference two models sharing a test set can be told apart by;
# - three interval tools, written from scratch and checked against `vtlib.stats`: the percentile
#   bootstrap for one model, DeLong's test for two models scored on the same clips, and a two-level
#   bootstrap that counts training-seed noise and test-set noise together;
# - why a comparison on a shared test set must be **paired**, and how much narrower that makes it;
# - the **course recipe**: a video transformer with a convolutional tokenizer, trained with 3D flips,
#   label smoothing, stochastic depth and flip test-time averaging, from `python -m vtlib.lab recipe`;
#   its 5-seed result on AdrenalMNIST3D, what each ingredient contributes (an ablation in the spirit of
#   ViViT's Table 4) and how it compares with a 3D CNN trained the same way;
# - accuracy that means something on an imbalanced set: a threshold chosen on validation, balanced
#   accuracy, and the majority-class rate next to every ACC;
# - how to add your own ablation to the lab and read its verdict.
#
# **Prerequisites:** notebooks 05 (the training loop `fit`) and 06 (ViViT variants); the CNN chapter,
# notebook 11, for the 3D ResNet.
# **Time:** about a minute on a 2-core CPU (one live sweep of two short runs); the long sweeps are
# commands whose results this notebook reads.
# **Papers:** Hanley & McNeil, *Radiology* 143:29, 1982; DeLong, DeLong & Clarke-Pearson, *Biometrics*
# 44:837, 1988; Sun & Xu, *IEEE Signal Processing Letters* 21:1389, 2014 (fast DeLong); Hassani et al.,
# *Escaping the Big Data Paradigm with Compact Transformers*, 2021, <https://arxiv.org/abs/2104.05704>;
# Arnab et al., *ViViT*, ICCV 2021, <https://arxiv.org/abs/2103.15691>.

# %% [markdown]
# ## Setup

# %%
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import norm, rankdata

from vtlib import lab, stats
from vtlib.baselines import MEDMNIST3D
from vtlib.utils import seed_everything
from vtlib.viz import forest_plot

warnings.filterwarnings("ignore")
seed_everything(0)
records = {name: lab.load_sweep(name) for name in ("recipe", "ingredients", "baselines")}
for name, recs in records.items():
    print(f"results/lab/{name}: {len(recs)} runs")

# %% [markdown]
# ## 1. What one test set can resolve
#
# AdrenalMNIST3D's test split is small. Before comparing anything, count it and ask how precise one AUC
# on it can be. Hanley and McNeil (1982) gave an approximation of the AUC's standard error from the AUC
# itself and the two class counts: with $A$ the AUC, $n_A$ positives and $n_N$ negatives,
#
# $$\mathrm{SE}^2 = \frac{A(1-A) + (n_A - 1)(Q_1 - A^2) + (n_N - 1)(Q_2 - A^2)}{n_A\, n_N},\qquad
# Q_1 = \frac{A}{2-A},\quad Q_2 = \frac{2A^2}{1+A}.$$

# %%
y_test = np.asarray(records["recipe"][0]["test"]["labels"])
n_pos, n_neg = int(y_test.sum()), int(len(y_test) - y_test.sum())


def hanley_mcneil(a, n_pos, n_neg):
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return np.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg))


print(f"test clips: {len(y_test)} ({n_pos} positive, {n_neg} negative)")
for a in (0.75, 0.80, 0.85, 0.90):
    print(f"AUC {a:.2f}: SE {hanley_mcneil(a, n_pos, n_neg):.3f}")
print("matches vtlib.stats.hanley_mcneil_se:",
      np.isclose(hanley_mcneil(0.8, n_pos, n_neg), stats.hanley_mcneil_se(0.8, n_pos, n_neg)))

# %% [markdown]
# Two models scored on the same clips make correlated errors, so the standard error of their
# *difference* is smaller than the two SEs added: $\mathrm{SE}_\Delta = \sqrt{\mathrm{SE}_1^2 + \mathrm{SE}_2^2 -
# 2r\,\mathrm{SE}_1\mathrm{SE}_2}$. With a correlation $r = 0.5$, a two-sided test at α = 0.05 and 80 %
# power, the smallest gap this test set detects is $(z_{0.975} + z_{0.8})\,\mathrm{SE}_\Delta$. That is
# the sentence every comparison in the course should start with:

# %%
se = hanley_mcneil(0.8, n_pos, n_neg)
gap = (norm.ppf(0.975) + norm.ppf(0.8)) * np.sqrt(2 * se**2 * (1 - 0.5))
print(f"smallest resolvable AUC gap: {gap:.3f}")
print("matches vtlib.stats.resolvable_difference:", np.isclose(gap, stats.resolvable_difference(n_pos, n_neg, 0.8)))
print(stats.describe_test_set(y_test))

# %% [markdown]
# Most gaps the earlier notebooks measured between variants were a few hundredths of AUC. This test set
# cannot resolve them: that is not a failure of the experiments, it is the size of the data. The tools
# below make that explicit for each comparison instead of leaving it to "within seed noise".

# %% [markdown]
# ## 2. One model: the percentile bootstrap
#
# Resample the test clips with replacement, recompute the AUC, repeat a few thousand times: the middle
# 95 % of those AUCs is an interval for the AUC of this model on clips like these. Resampling positives
# and negatives separately (*stratified*) keeps both classes in every replicate. We use the course
# recipe's seed-0 test scores.

# %%
s0 = np.asarray(records["recipe"][0]["test"]["scores"])[:, 1]          # P(positive) per test clip


def auc_midrank(y, s):
    """Mann-Whitney AUC: the chance that a random positive scores above a random negative (ties 1/2)."""
    r = rankdata(s)
    m, n = y.sum(), len(y) - y.sum()
    return (r[y == 1].sum() - m * (m + 1) / 2) / (m * n)


def bootstrap_auc(y, s, n_boot=2000, seed=0):
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    reps = [auc_midrank(y[i], s[i]) for i in
            (np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]) for _ in range(n_boot))]
    return auc_midrank(y, s), *np.percentile(reps, [2.5, 97.5])


mine = bootstrap_auc(y_test, s0)
ref = stats.bootstrap_ci(y_test, s0)
print(f"from scratch: {mine[0]:.3f} [{mine[1]:.3f}, {mine[2]:.3f}]   vtlib.stats: {ref}")
print("same point estimate:", np.isclose(mine[0], ref.estimate), "| bounds within 0.01:",
      bool(abs(mine[1] - ref.low) < 0.01 and abs(mine[2] - ref.high) < 0.01))

# %% [markdown]
# ## 3. Two models on the same clips: DeLong's test
#
# DeLong et al. (1988) showed that an AUC is an average of per-clip "placement" values, so the variance
# and covariance of two AUCs computed on the same clips follow from those values. For a positive clip $i$
# its placement is the share of negatives it outscores; for a negative clip $j$, the share of positives
# that outscore it. Sun & Xu (2014) compute them from three sets of midranks in $O(N \log N)$:

# %%
def delong_from_scratch(y, s_a, s_b):
    """AUC(a) - AUC(b), its standard error and the two-sided p-value."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()
    v_pos, v_neg, aucs = [], [], []
    for s in (s_a, s_b):
        r_all, r_pos, r_neg = rankdata(s), rankdata(s[pos]), rankdata(s[neg])
        v_pos.append((r_all[pos] - r_pos) / n)          # (m,) share of negatives below each positive
        v_neg.append(1 - (r_all[neg] - r_neg) / m)      # (n,) share of positives above each negative
        aucs.append(v_pos[-1].mean())
    cov = np.cov(v_pos) / m + np.cov(v_neg) / n          # (2, 2)
    diff = aucs[0] - aucs[1]
    se_diff = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return diff, se_diff, 2 * norm.sf(abs(diff) / se_diff)


no_tta = {r["row"]["seed"]: r for r in records["ingredients"] if r["row"]["config"] == "no_tta"}
s_no_tta = np.asarray(no_tta[0]["test"]["scores"])[:, 1]
diff, se_diff, p = delong_from_scratch(y_test, s0, s_no_tta)
ref = stats.delong(y_test, s0, s_no_tta)
print(f"recipe minus recipe-without-TTA, seed 0: from scratch {diff:+.3f} (SE {se_diff:.3f}, p = {p:.3f})")
print(f"vtlib.stats.delong: {ref}")
print("matches vtlib.stats.delong:", bool(np.isclose(diff, ref.diff) and np.isclose(p, ref.p)))

# %% [markdown]
# **Why pairing matters.** Had the two models been scored on *different* test sets, the difference's
# standard error would be the two single-model SEs added in quadrature. On the same clips their errors
# move together, and DeLong's covariance term removes the shared part:

# %%
se_a = np.sqrt(stats.delong_variance(y_test, s0)[1])
se_b = np.sqrt(stats.delong_variance(y_test, s_no_tta)[1])
print(f"SE of the difference, unpaired: {np.hypot(se_a, se_b):.3f}   paired: {se_diff:.3f}")
print("paired is narrower:", bool(se_diff < np.hypot(se_a, se_b)))

# %% [markdown]
# ## 4. Seeds and clips together
#
# A training seed changes the initial weights, the shuffling and the augmentation; the test set is one
# draw of patients. A claim like "the recipe reaches AUC X" is about both. `vtlib.stats.pooled_interval`
# resamples both: in each replicate it draws test clips (the same clips for every seed), then seeds with
# replacement, and averages. `paired_seeds` does the same for the difference of two configurations
# trained with the same seeds.

# %% [markdown]
# ## 5. The course recipe
#
# Everything before this notebook trained transformers whose tokens are linear maps of 4×7×7 blocks. On
# 1,188 training volumes such a model has to learn from scratch that neighbouring voxels belong together,
# which is the one thing a convolution knows before it sees any data. The recipe keeps the transformer
# and hands it that prior through its tokenizer:
#
# | ingredient | what it does | why it should help on small data |
# |---|---|---|
# | convolutional tokenizer (`vtlib.models.convvit`) | three 3×3×3 conv + BatchNorm + ReLU + max-pool stages turn 28³ into a 4×4×4 grid of 64 tokens | locality and translation equivariance for free (Hassani et al. 2021; Xiao et al. 2021) |
# | attention pooling | a learned query reads the 64 output tokens | notebook 03 |
# | 3D flips and in-plane 90° rotations | a mirrored or turned gland is still a gland: 16 orientations of each volume (8 in-plane × 2 along depth) | the label does not depend on orientation |
# | label smoothing 0.1, stochastic depth 0.1, weight decay 0.05 <!-- from: config: the recipe of vtlib.lab, printed in section 5 --> | regularisers of ViViT's Table 4 | fewer over-confident fits to 1,188 volumes <!-- from: notebook 00 --> |
# | warm-up + cosine over 30 epochs, AdamW | the training loop of notebook 05 | |
# | flip test-time averaging | the logits of the 8 mirrored copies are averaged at evaluation | lowers the variance of each prediction; costs 8 forward passes per clip, at inference only |
#
# The ingredients were fixed before any test number was read, from the published evidence in the table;
# each run keeps the epoch with the best **validation** AUC, and the test split is read once per run.

# %%
print(lab.config("recipe"))
model = lab.build_model(lab.config("recipe"), num_classes=2, size=28)
print("tokens:", model.num_tokens, "| token grid:", model.grid,
      "| parameters:", sum(p.numel() for p in model.parameters()))
print("logits:", tuple(model(torch.rand(2, 1, 28, 28, 28)).shape))

# %% [markdown]
# The 5 seeds were trained with `python -m vtlib.lab recipe --dataset adrenal --size 28` (one CPU thread
# per process). Each row below is one seed; `bal.ACC` uses the threshold that maximised balanced accuracy
# on the validation split.

# %%
for rec in records["recipe"]:
    lab.add_threshold_metrics(rec)
    r = rec["row"]
    print(f"seed {r['seed']}: best epoch {r['best_epoch']:>2}  val AUC {r['val_auc']:.3f}  test AUC {r['test_auc']:.3f}"
          f"  ACC {r['test_acc']:.3f}  bal.ACC {r['test_bal_acc']:.3f}  ({r['train_minutes']:.1f} min, {r['device']})")
summary = {row["config"]: row for row in lab.summarize(records["recipe"] + records["ingredients"] + records["baselines"],
                                                        reference="recipe")}
rec_row = summary["recipe"]
print(f"\nrecipe over {rec_row['seeds']} seeds: AUC {rec_row['test_auc_mean']:.3f} ± {rec_row['test_auc_std']:.3f}, "
      f"95 % interval (seeds and clips) [{rec_row['auc_low']:.3f}, {rec_row['auc_high']:.3f}]")

# %% [markdown]
# Against the published MedMNIST v2 rows: those are single runs with no interval, so the fair question
# is whether each published AUC lies inside or outside our interval.

# %%
print(f"target 0.86 reached (mean of seeds): {rec_row['test_auc_mean'] >= 0.86}")
for method in ("ResNet-18 + 3D", "ResNet-18 + ACS", "ResNet-50 + 3D", "auto-sklearn"):
    auc, acc = MEDMNIST3D[method]["adrenal"]
    where = ("below" if auc < rec_row["auc_low"] else "above" if auc > rec_row["auc_high"] else "inside")
    print(f"{method:<16} AUC {auc:.3f} / ACC {acc:.3f}: {where} the recipe's interval; "
          f"recipe mean {'ahead' if rec_row['test_auc_mean'] > auc else 'behind'} by {abs(rec_row['test_auc_mean'] - auc):.3f}")

# %% [markdown]
# ## 6. The yardstick: a 3D CNN trained the same way
#
# The CNN chapter's small 3D ResNet (one residual block per stage, widths 8 to 64, the MedMNIST
# small-image design) trained with the same loop, schedule, augmentation and selection; it is scored
# without test-time flips (they would multiply its already higher inference cost by 8), so it is compared with
# both the recipe and the recipe without flips. Paired on the seeds both have.

# %%
for name in ("cnn", "no_tta", "patch_tokens"):
    row = summary.get(name)
    if row is None:
        print(f"{name}: not in results/lab yet")
        continue
    print(f"{name:<13} n={row['seeds']}  AUC {row['test_auc_mean']:.3f} ± {row['test_auc_std']:.3f} "
          f"[{row['auc_low']:.3f}, {row['auc_high']:.3f}]  params {row['params']:,}  MFLOPs {row['mflops']:.0f}  "
          f"{row['train_minutes']:.1f} min/seed")


def paired(a: str, b: str) -> stats.PairedComparison:
    """Mean-over-seeds AUC(a) - AUC(b) on the seeds both configs have, test clips shared."""
    sa = {r["row"]["seed"]: r for recs in records.values() for r in recs if r["row"]["config"] == a}
    sb = {r["row"]["seed"]: r for recs in records.values() for r in recs if r["row"]["config"] == b}
    seeds = sorted(set(sa) & set(sb))
    return stats.paired_seeds(y_test, [lab.positive_scores(sa[k])[1] for k in seeds],
                              [lab.positive_scores(sb[k])[1] for k in seeds])


def say(a: str, b: str) -> None:
    c = paired(a, b)
    verdict = ("resolved: " + a + (" ahead" if c.low > 0 else " behind")) if (c.low > 0 or c.high < 0) \
        else "not resolved: the interval contains 0"
    print(f"{a} minus {b}: {c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}] -> {verdict}")


say("recipe", "cnn")
say("no_tta", "cnn")
say("recipe", "patch_tokens")

# %% [markdown]
# ## 7. What each ingredient contributes
#
# Each `no_*` configuration is the recipe with one ingredient removed, trained on seeds 0-2 (the stored
# `no_smoothing` runs cover seeds 0 and 1 only; an ablation with no stored runs is skipped); the forest
# plot shows the paired difference "recipe minus ablation" with its 95 % interval (seeds and clips). A
# line entirely right of 0 means the ingredient helps, and the data can tell.

# %%
ablations = [c for c in ("no_tta", "no_aug3d", "no_smoothing", "no_drop_path", "patch_tokens")
             if c in summary]
rows = [(f"recipe − {c}", paired("recipe", c)) for c in ablations]
for label, c in rows:
    print(f"{label:<24} {c}")
forest_plot(rows, reference=0.0, xlabel="test AUC difference (recipe minus ablation)")
plt.show()

# %% [markdown]
# ## 8. Accuracy on an imbalanced set
#
# 23 % of the test clips are positive, so "always normal" already scores a high ACC (printed below), and
# ACC at the default threshold of 0.5 rewards a model for leaning towards "normal". Balanced accuracy,
# the mean of sensitivity and specificity, is 0.5 for any constant answer. Choosing the threshold that
# maximises balanced accuracy on the *validation* split, then reporting balanced accuracy on test, asks
# how well a model detects positives at an operating point picked without the test set.

# %%
r = rec_row
print(f"majority-class ACC on test: {r['majority_acc']:.3f}")
print(f"recipe: ACC at 0.5 {r['test_acc_mean']:.3f}, balanced ACC at the validation threshold {r['test_bal_acc_mean']:.3f}")
print("balanced ACC above 0.5 (better than a constant):", r["test_bal_acc_mean"] > 0.5)

# %% [markdown]
# ## 9. Learning curves
#
# The validation AUC of each recipe seed over the epochs, with the selected epoch marked. 98 validation
# clips make these curves jumpy; that noise is why the selected epoch differs between seeds.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
for rec in records["recipe"]:
    h = rec["history"]
    ax.plot([e["epoch"] for e in h], [e["val_auc"] for e in h], lw=1, label=f"seed {rec['row']['seed']}")
    best = rec["row"]["best_epoch"]
    ax.scatter([best], [h[best - 1]["val_auc"]], s=15)
ax.set_xlabel("epoch")
ax.set_ylabel("validation AUC")
ax.legend(fontsize=7, ncol=5)
plt.show()

# %% [markdown]
# ## 10. A live sweep: add your own ablation
#
# A configuration is a name and the changes it makes to the recipe. Add two to `lab.CONFIGS`, list the
# runs, and `lab.sweep` trains whatever is not yet on disk (here into a temporary folder; drop `root=`
# to write under `results/lab`). Three epochs without test-time flips keep this under two minutes; the
# point is the workflow, not the number.

# %%
lab.CONFIGS["quick"] = {"epochs": 3, "tta": False}
lab.CONFIGS["quick_no_aug"] = {"epochs": 3, "tta": False, "augment": None}
live_root = Path(tempfile.mkdtemp())
runs = [lab.Run("quick", seed=0), lab.Run("quick_no_aug", seed=0)]
print([run.id for run in runs])

# %% tags=["nbval-ignore-output"]
live = lab.sweep("live", runs, root=live_root, progress=False)
live_rows = lab.summarize(live, reference="quick")
print(lab.format_table(live_rows))
y_live = lab.positive_scores(live[0])[0]
live_cmp = stats.delong(y_live, lab.positive_scores(live[0])[1], lab.positive_scores(live[1])[1])
print("quick minus quick_no_aug:", live_cmp)

# %%
print("two runs on disk:", len(list(live_root.glob("live/*.json"))) == 2)
print("quick learns (test AUC >= 0.65):", live_rows[0]["test_auc_mean"] >= 0.65)
print("the interval of the difference is wider than 0.05 AUC:", live_cmp.high - live_cmp.low > 0.05)

# %% [markdown]
# ## 11. The earlier notebooks, revisited
#
# Notebooks 01-09 each ended their AdrenalMNIST3D comparison with means and standard deviations over
# three seeds. Their sweeps kept each run's test AUC but not its per-clip scores, so an exact paired
# interval cannot be computed afterwards. `lab.revisit()` gives an approximate one: the seed-to-seed
# spread of the paired differences (which shrinks with more seeds) plus the test set's own noise
# (which does not: every seed sees the same 298 clips), taken from Hanley-McNeil with a correlation of
# 0.5 between the two models. The lab's own rows above are exact; these are the right order of size.

# %%
for r in lab.revisit(n_pos, n_neg):
    print(f"notebook {r['notebook']}: {r['a']:>17} minus {r['b']:<16} {r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
          f"  {'resolved' if r['resolved'] else 'not resolved'}")
print("comparisons the test set resolves:", sum(r["resolved"] for r in lab.revisit(n_pos, n_neg)), "of", len(lab.REVISIT))

# %% [markdown]
# Only the largest effect of the course so far, uniform frame sampling against tubelets in notebook 01,
# is resolved. Every other gap is smaller than about 0.1 AUC and its interval contains zero: with this
# test set those experiments could not have concluded either way, however many seeds they ran. Compare
# the verdict lines of section 6: there the recipe is set against a plain ViViT on the same clips.

# %% [markdown]
# ## 12. Leaderboard
#
# The course's configurations next to the published MedMNIST v2 table on AdrenalMNIST3D. Our rows have
# intervals (seeds and clips); the published rows are one run each. CPU minutes are per seed, one thread.

# %%
print(f"{'model':<30}{'AUC':>7}{'95 % interval':>18}{'ACC':>7}{'bal.ACC':>9}{'params':>10}{'MFLOPs':>8}{'min':>6}")
board = sorted(summary.values(), key=lambda row: -row["test_auc_mean"])
for row in board:
    print(f"{'course: ' + row['config']:<30}{row['test_auc_mean']:>7.3f}    [{row['auc_low']:.3f}, {row['auc_high']:.3f}]"
          f"{row['test_acc_mean']:>7.3f}{row['test_bal_acc_mean']:>9.3f}{row['params']:>10,}{row['mflops']:>8.0f}"
          f"{row['train_minutes']:>6.1f}")
for method, by_dataset in MEDMNIST3D.items():
    auc, acc = by_dataset["adrenal"]
    print(f"{'MedMNIST v2: ' + method:<30}{auc:>7.3f}{'(one run)':>18}{acc:>7.3f}{'-':>9}")

# %% [markdown]
# ## Exercises
#
# Each check from `vtlib.exercises.nb13` prints a verdict; the cells hold stubs until you write them.
# Reference solutions are in `vtlib/exercises/solutions/nb13.py`: try first.
#
# 1. `vtlib.stats.paired_bootstrap` uses one threshold for both models. Write a **paired** bootstrap of
#    the balanced-accuracy difference where each model has its own threshold (say, each chosen on
#    validation), returning `(diff, low, high)`.
# 2. How big would a test set need to be? Write `positives_needed(gap, auc, ratio, r)`: the fewest
#    positives (with `round(ratio * positives)` negatives) at which two models `gap` AUC apart can be
#    told apart (α = 0.05, power 0.8, correlation `r`). How many positives would AdrenalMNIST3D need to
#    resolve 0.02?
# 3. (Experiment) Add a configuration to `lab.CONFIGS` that changes one ingredient of `quick` (for
#    example `"mixup_alpha": 0.2`, or `"augment": None` with `"label_smoothing": 0.0`), run it for seed 0
#    into `live_root`, compare it with `quick` by `stats.delong`, and set `resolved` to whether the
#    interval excludes 0. What would you need to run to make the answer trustworthy?

# %%
from vtlib.exercises.nb13 import check_paired_balanced_accuracy, check_positives_needed, check_resolved


def paired_balanced_accuracy(y, s_a, s_b, thr_a, thr_b, n_boot=2000, seed=0):
    """Paired percentile bootstrap of bal.ACC(a at thr_a) - bal.ACC(b at thr_b) -> (diff, low, high)."""
    raise NotImplementedError


_ = check_paired_balanced_accuracy(paired_balanced_accuracy)

# %%
def positives_needed(gap, auc=0.8, ratio=229 / 69, r=0.5):
    """Fewest positives for which a `gap` AUC difference between two correlated models is resolvable."""
    raise NotImplementedError


_ = check_positives_needed(positives_needed)

# %%
# your config here, e.g. lab.CONFIGS["quick_mixup"] = {"epochs": 3, "tta": False, "mixup_alpha": 0.2}
# mine = lab.sweep("live", [lab.Run("quick_mixup", seed=0)], root=live_root, progress=False)
resolved = None   # True if DeLong's interval of (your config minus quick) excludes 0
_ = check_resolved(resolved, y_live, lab.positive_scores(live[0])[1], lab.positive_scores(live[1])[1])

# %% [markdown]
# ## Summary
#
# - On 298 test clips an AUC near 0.8 has a standard error of about 0.03, and two models sharing the
#   clips must differ by about 0.1 before the data can tell them apart. Say so before every comparison.
# - Intervals for one model: the percentile bootstrap; for two models on the same clips: DeLong or the
#   paired bootstrap, which are narrower than unpaired comparisons because the errors are shared; over
#   several training seeds: the two-level bootstrap of `pooled_interval` / `paired_seeds`.
# - The recipe (convolutional tokenizer, 3D flips, regularisers, flip averaging) and its ablation are
#   printed above from `results/lab`; the verdict lines say which differences the data resolves.
# - Report AUC with balanced accuracy at a validation-chosen threshold and the majority rate: ACC alone
#   rewards a model for saying "normal".
# - `python -m vtlib.lab sweep --name NAME --configs ... --seeds ...` runs any ablation, resumably;
#   `python -m vtlib.lab report --name NAME --reference recipe` prints the table with paired intervals.
#
# **References**
# - J. A. Hanley, B. J. McNeil, The meaning and use of the area under a ROC curve, *Radiology*, 1982.
# - E. R. DeLong, D. M. DeLong, D. L. Clarke-Pearson, Comparing the areas under two or more correlated
#   ROC curves, *Biometrics*, 1988; X. Sun, W. Xu, Fast implementation of DeLong's algorithm, *IEEE SPL*, 2014.
# - B. Efron, R. Tibshirani, *An Introduction to the Bootstrap*, 1993.
# - A. Hassani et al., Escaping the Big Data Paradigm with Compact Transformers, 2021; T. Xiao et al.,
#   Early Convolutions Help Transformers See Better, NeurIPS 2021.
# - A. Arnab et al., ViViT, ICCV 2021 (Table 4: regularisers). J. Yang et al., MedMNIST v2, *Scientific Data*, 2023.
