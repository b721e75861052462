# %% [markdown]
# # 00 · Video as data
#
# **What you will learn**
# - what a "video" is in this course: a MedMNIST 3D volume read slice by slice, so depth becomes time;
# - how to load AdrenalMNIST3D at 28³ and 64³ with `vtlib.data`, and look at a clip three ways
#   (frame grid, animation, slider);
# - why accuracy alone misleads on an imbalanced binary set, and what the majority-class baseline and AUC tell you;
# - the classic first steps of a video pipeline: split into frames, sample, resize, normalise, augment;
# - the synthetic motion task that later lessons use, and why a single frame cannot solve it;
# - the MedMNIST v2 3D baseline table every later notebook is compared with.
#
# **Prerequisites:** Python, NumPy and a little PyTorch (tensors, shapes).
# **Time:** under a minute to run on a 2-core CPU.
# **Paper:** Yang et al., *MedMNIST v2*, Scientific Data 10:41 (2023), <https://medmnist.com>.

# %% [markdown]
# ## Setup
#
# Every notebook starts the same way: imports, one seed for everything, and the best available
# device (CUDA, then Apple's MPS, then CPU). This notebook trains nothing heavy, so it runs on the CPU.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vtlib.baselines import baseline_table
from vtlib.data import (
    augment,
    dataset_info,
    load_arrays,
    load_split,
    make_motion_videos,
    motion_x,
    resize,
    sample_frames,
    standardize,
    to_frames,
    train_stats,
)
from vtlib.metrics import evaluate_scores, majority_baseline
from vtlib.utils import get_device, seed_everything
from vtlib.viz import animate, frame_grid, frame_slider, show_frame

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
print("vtlib is ready")

# %% [markdown]
# ## 1. A volume is a video
#
# MedMNIST 3D stores each sample as a cube of voxels, shape `(D, H, W)`. Read the depth axis as
# time and the cube becomes a short grayscale video of `T = D` frames. PyTorch's video layers
# expect `(batch, channels, time, height, width)`, so `vtlib.data` hands clips out in exactly
# that layout, `(N, C=1, T, H, W)`, as `float32` scaled to `[0, 1]` (voxel / 255).
#
# AdrenalMNIST3D holds 3D shape masks of adrenal glands cut from abdominal CT; the label says
# whether the gland is normal (0) or shows hyperplasia (1).

# %%
info = dataset_info("adrenal")
print(info.flag, "|", info.task, "|", info.labels, "|", info.license)
print("clips per split:", info.n_samples)

x28, y28 = load_split("adrenal", "train", size=28)
x64, y64 = load_split("adrenal", "train", size=64)
print("28:", tuple(x28.shape), x28.dtype, "values in", (x28.min().item(), x28.max().item()))
print("64:", tuple(x64.shape), x64.dtype)
print("same labels at both sizes:", torch.equal(y28, y64))

# %% [markdown]
# The voxels are a mask: every value is 0 or 1 after scaling. So what moves from frame to frame
# is the outline of the gland, slice by slice.

# %%
print("distinct voxel values:", torch.unique(x28).tolist())
print(f"share of voxels inside the gland: {x28.mean().item():.3f}")

# %% [markdown]
# ### Looking at a clip
#
# A **frame grid** is the view that works everywhere (GitHub, PDF, a printed handout): one small
# image per frame, in order. Here is one training clip at 28³, every frame, and the same gland at 64³,
# every second frame.

# %%
fig = frame_grid(x28[0], ncols=14, title=f"AdrenalMNIST3D 28³, label {y28[0].item()} ({info.labels[str(y28[0].item())]})")
plt.show()

# %%
fig = frame_grid(x64[0], ncols=16, step=2, size=0.9, title="the same gland at 64³ (every 2nd frame)")
plt.show()

# %% [markdown]
# In a live notebook you can also play the clip as an **animation**, or scrub through it with a
# **slider**. The slider needs a running kernel and the animation a browser that runs its script; on
# a static page such as GitHub, the frame grid above shows the same clip.

# %% tags=["nbval-ignore-output"]
animate(x64[0, :, ::2])

# %% tags=["nbval-ignore-output"]
_ = frame_slider(x64[0])

# %% [markdown]
# The slider calls a plain function for each position; calling it yourself gives the same picture:

# %%
fig = show_frame(x64[0], t=32)
plt.show()

# %% [markdown]
# ## 2. Labels, imbalance, and why accuracy alone misleads
#
# Count the labels in each split before training anything.

# %%
counts = {}
for split in ["train", "val", "test"]:
    _, labels = load_arrays("adrenal", split)
    counts[split] = np.bincount(labels, minlength=2)
    print(f"{split:>5}: normal={counts[split][0]:4d}  hyperplasia={counts[split][1]:4d}  "
          f"positive share={counts[split][1] / counts[split].sum():.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 2.5))
splits = list(counts)
ax.bar(np.arange(3) - 0.2, [counts[s][0] for s in splits], width=0.4, label="normal (0)")
ax.bar(np.arange(3) + 0.2, [counts[s][1] for s in splits], width=0.4, label="hyperplasia (1)")
ax.set_xticks(range(3), splits)
ax.set_ylabel("clips")
ax.legend()
plt.show()

# %% [markdown]
# About three in four glands are normal. A "model" that answers *normal* for every clip is
# therefore right about three times in four without looking at a single voxel. That is the
# **majority-class baseline**. It scores AUC 0.5 by construction: AUC measures how well the scores
# *rank* positives above negatives, and a constant score ranks nothing.

# %%
_, ytr = load_arrays("adrenal", "train")
_, yte = load_arrays("adrenal", "test")
majority = majority_baseline(ytr, yte, num_classes=2, task="binary-class")
print(f"majority-class baseline on test: ACC={majority.acc:.3f}  AUC={majority.auc:.3f}")

# %% [markdown]
# Now read the published MedMNIST v2 numbers for AdrenalMNIST3D. Several trained models have a
# *lower* test ACC than this do-nothing baseline (ResNet-18 + 3D: 0.721), while their AUC of about
# 0.83 shows they did learn to rank. This is why the course always reports **AUC and ACC together,
# next to the majority baseline**.

# %%
print(baseline_table("adrenal"))

# %% [markdown]
# A baseline one step up from "always normal": one hand-made number per clip. Glands with
# hyperplasia are enlarged, so try the gland's **volume** (the count of mask voxels). The direction
# of the rule comes from the training split only; the test split is used once, to report.

# %% tags=["nbval-ignore-output"]
vol_tr = torch.as_tensor(load_arrays("adrenal", "train")[0]).float().mean(dim=(1, 2, 3)).numpy()
vol_te = torch.as_tensor(load_arrays("adrenal", "test")[0]).float().mean(dim=(1, 2, 3)).numpy()
clf = LogisticRegression().fit(vol_tr[:, None] * 10, ytr)
volume_metrics = evaluate_scores(yte, clf.predict_proba(vol_te[:, None] * 10), "binary-class")
print(f"gland-volume logistic regression, test: AUC={volume_metrics.auc:.3f}  ACC={volume_metrics.acc:.3f}")

# %%
print("volume alone ranks better than chance (AUC > 0.6):", volume_metrics.auc > 0.6)
print("its ACC stays within 0.02 of the majority baseline:", abs(volume_metrics.acc - majority.acc) <= 0.02)

# %% [markdown]
# ## 3. The first steps of a video pipeline
#
# 1. **Split into frames.** `(B, C, T, H, W) → (B, T, C, H, W)` gives a stack of images, the view a
#    2D image model needs (notebook 07 embeds each frame on its own).
# 2. **Sample frames.** Keep `n` evenly spaced frames: the cheapest way to shorten a clip.
# 3. **Resize.** Trilinear interpolation in space, and optionally in time.
# 4. **Normalise.** Subtract the *training* mean and divide by the *training* standard deviation;
#    statistics from val or test would leak information about them.
# 5. **Augment** (training only). Random in-plane flips, 90° rotations and intensity scaling, drawn
#    per clip from a seeded generator. We do **not** flip time by default: for a volume it does no
#    harm, but for a motion video it swaps the label (section 4).

# %%
clips = x64[:4]
print("clips          ", tuple(clips.shape))
print("as frames      ", tuple(to_frames(clips).shape))
print("8 frames       ", tuple(sample_frames(clips, 8).shape))
print("resized to 28³ ", tuple(resize(clips, 28, frames=28).shape))
mean, std = train_stats("adrenal", size=64)
print(f"train mean={mean:.4f} std={std:.4f}")
z = standardize(clips, mean, std)
print("standardised   ", tuple(z.shape), "min", round(z.min().item(), 2), "max", round(z.max().item(), 2))

# %% [markdown]
# Resizing 64³ down to 28³ should land close to the official 28³ release, which was made the same way
# (centre crop, then resize). Not identical: the official files were binarised again after resizing.

# %%
down = resize(x64[:50], 28, frames=28)
agree = ((down > 0.5).float() == x28[:50]).float().mean().item()
print(f"voxels that agree with the official 28³ file after thresholding: {agree:.3f}")
print("agreement above 95%:", agree > 0.95)

# %%
g = torch.Generator().manual_seed(0)
aug = augment(x28[:1].repeat(6, 1, 1, 1, 1), g)
fig, axes = plt.subplots(1, 6, figsize=(9, 1.8))
for ax, clip in zip(axes, aug):
    ax.imshow(clip[0, 14], cmap="gray", vmin=0, vmax=1.2)
    ax.axis("off")
fig.suptitle("one clip, six augmentations (middle frame)")
plt.show()

# %%
a = augment(x28[:8], torch.Generator().manual_seed(7))
b = augment(x28[:8], torch.Generator().manual_seed(7))
print("same seed, same augmented batch:", torch.equal(a, b))

# %% [markdown]
# ## 4. A task only time can solve: synthetic motion videos
#
# MedMNIST volumes have no real motion: slices change smoothly, and a model that looks at the
# frames as an unordered bag does well. To *test* temporal modelling, the course also generates
# videos in code. `make_motion_videos` draws an object gliding across the frame:
#
# - `task="direction"`: label 0 moves left to right, label 1 right to left. Every class-1 clip is a
#   class-0 clip **played backwards**: the two classes contain the same frames, only in another order.
# - `task="shape"` (the control): label 0 is a disk, 1 a square, moving either way.
#
# Same shape as a MedMNIST clip, deterministic under a seed, and fast.

# %%
import time

t0 = time.perf_counter()
xs, ys = make_motion_videos(2000, task="direction", seed=0)
elapsed = time.perf_counter() - t0
print(tuple(xs.shape), xs.dtype, "labels:", torch.bincount(ys).tolist())

# %% tags=["nbval-ignore-output"]
print(f"generated 2000 clips in {elapsed:.2f} s")

# %%
fig = frame_grid(xs[ys == 0][0], ncols=14, step=2, title="class 0: left to right (every 2nd frame)")
plt.show()
fig = frame_grid(xs[ys == 1][0], ncols=14, step=2, title="class 1: right to left")
plt.show()

# %% [markdown]
# **Can one frame tell the classes apart?** Fit logistic regressions on what a single frame offers:
# its raw pixels, or four hand-made numbers (the object's centre x and y, its mass, and how much of
# its bounding box it fills). Then on the clip averaged over time (a "bag of frames"). Then on a
# feature that uses order: `motion_x`, the object's frame-to-frame displacement summed over the
# clip. The frame wraps around at its edges (an object leaving on the right comes back on the
# left), so the object's position in any single frame is uniform for both classes.
# Train on 1500 clips, test on 500 new ones.

# %%
def fit_and_score(features_train, features_test, y_train, y_test):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    clf.fit(features_train, y_train)
    return evaluate_scores(y_test, clf.predict_proba(features_test), "binary-class")


xs_test, ys_test = make_motion_videos(500, task="direction", seed=1)
w = torch.arange(28.0)
single = lambda x: x[:, 0, 14].flatten(1).numpy()            # middle frame, raw pixels
bag = lambda x: x[:, 0].mean(1).flatten(1).numpy()           # average over time
def frame_features(x):                                       # middle frame, 4 numbers
    f = (x[:, 0, 14] > 0.5).float()                          # (N, H, W) object mask
    mass = f.sum((1, 2)).clamp_min(1)
    cx, cy = (f.sum(1) * w).sum(1) / mass, (f.sum(2) * w).sum(1) / mass
    fill = mass / (f.sum(2).amax(1) * f.sum(1).amax(1)).clamp_min(1)   # square 1.0, disk ~0.79
    return torch.stack([cx, cy, mass, fill], 1).numpy()
order_feature = lambda x: motion_x(x)[:, None].numpy()       # summed frame-to-frame displacement

features = {"frame pixels": single, "frame features": frame_features, "bag of frames": bag,
            "frame order": order_feature}
results = {name: fit_and_score(f(xs[:1500]), f(xs_test), ys[:1500], ys_test) for name, f in features.items()}

# %% tags=["nbval-ignore-output"]
for name, m in results.items():
    print(f"{name:>14}: test AUC={m.auc:.3f} ACC={m.acc:.3f}")

# %%
print("frame pixels near chance (AUC < 0.6):", results["frame pixels"].auc < 0.6)
print("frame features near chance (AUC < 0.6):", results["frame features"].auc < 0.6)
print("bag of frames near chance (AUC < 0.6):", results["bag of frames"].auc < 0.6)
print("frame order solves it (AUC > 0.99):", results["frame order"].auc > 0.99)

# %% [markdown]
# The control task is the opposite: the same four numbers from one frame suffice, because the
# shape is visible in every frame (a square fills its bounding box, a disk about 79 % of it).

# %%
xc, yc = make_motion_videos(2000, task="shape", seed=0)
xc_test, yc_test = make_motion_videos(500, task="shape", seed=1)
shape_single = fit_and_score(frame_features(xc[:1500]), frame_features(xc_test), yc[:1500], yc_test)
shape_order = fit_and_score(order_feature(xc[:1500]), order_feature(xc_test), yc[:1500], yc_test)
print("shape task, frame features solve it (AUC > 0.9):", shape_single.auc > 0.9)
print("shape task, motion tells nothing (AUC < 0.6):", shape_order.auc < 0.6)

# %% [markdown]
# These two tasks carry the lessons on temporal modelling later: a model that ignores time
# (space-only attention in notebook 07, average pooling over frames in notebook 06) must be at
# chance on `direction` and fine on `shape`.
#
# ## 5. The table to beat
#
# The full MedMNIST v2 3D benchmark (test split, AUC / ACC). Later notebooks put their own numbers
# next to the AdrenalMNIST3D column.

# %%
print(baseline_table())

# %% [markdown]
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb00` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb00.py`; try first.)
#
# 1. **Balanced accuracy.** Plain accuracy lets the large class dominate. *Balanced accuracy* is the mean,
#    over the two classes, of the class's recall: the share of its test clips predicted as that class.
#    Compute the test balanced accuracy of the majority rule (always the most frequent **train** label)
#    and of the gland-volume logistic regression `clf` of section 2 (its `clf.predict` on
#    `vol_te[:, None] * 10`). A Python number, a NumPy scalar or a one-element tensor all work.
#    Compare each with the rule's plain ACC: what does the volume rule add over "always normal"?
# 2. **A frame strip.** Write `frame_strip(x, ncols)`: each clip of `x` (B, C, T, H, W) as ONE image
#    (B, C, (T / ncols)·H, ncols·W) holding its frames, `ncols` per row, time running left to right and
#    then top to bottom (frame t at row t // ncols, column t % ncols), with every channel kept apart. It is
#    the frame grid of section 1 as a tensor, ready to save or to log as one picture.
# 3. **How far apart may two frames be? (an experiment).** Write `two_frame_score(x, k)`: one score per
#    clip of the `direction` task, higher for right-to-left motion, that reads **only frames 0 and k**.
#    (`vtlib.data.centroid_x` gives the object's horizontal position in each frame as an angle on the
#    wrapped frame.) Measure its test AUC on `xs_test, ys_test` (section 4) for every gap k in `gaps`,
#    with `auc_score(ys_test, torch.sigmoid(score), "binary-class")`, and look at the numbers. Then set
#    `first_failing_gap`, the smallest k in `gaps` whose AUC is below 0.9, and `max_move_px`: the largest
#    move, in pixels, between the two frames that the 28-pixel-wide wrapped frame can still show the
#    right way round.

# %%
from vtlib.exercises.nb00 import check_balanced_accuracy, check_frame_strip, check_two_frame_motion

majority_bacc = None          # test balanced accuracy of "always the most frequent train label"
volume_bacc = None            # test balanced accuracy of clf.predict(vol_te[:, None] * 10)
_ = check_balanced_accuracy(majority_bacc, volume_bacc)

# %%
def frame_strip(x, ncols):
    """(B, C, T, H, W) -> (B, C, (T // ncols) * H, ncols * W); frame t at row t // ncols, column t % ncols."""
    raise NotImplementedError


_ = check_frame_strip(frame_strip)

# %%
from vtlib.data import centroid_x
from vtlib.metrics import auc_score

print("centroid_x: clips", tuple(xs_test[:2].shape), "-> angles (N, T) in radians:", tuple(centroid_x(xs_test[:2]).shape))
print(f"for comparison, every frame step (-motion_x): test AUC "
      f"{auc_score(ys_test, torch.sigmoid(-motion_x(xs_test)), 'binary-class'):.3f}")


def two_frame_score(x, k):
    """(N, 1, T, H, W) -> (N,) scores from frames 0 and k only; higher = right to left."""
    raise NotImplementedError


gaps = (1, 4, 9, 14, 18, 23, 27)
aucs = None                   # {k: test AUC of two_frame_score(xs_test, k)} for every k in gaps
first_failing_gap = None      # the smallest k in gaps whose AUC is below 0.9
max_move_px = None            # the largest move (pixels) a 28-pixel wrapped frame shows the right way round
_ = check_two_frame_motion(two_frame_score, aucs, first_failing_gap, max_move_px)

# %% [markdown]
# ## Summary
#
# - A MedMNIST 3D volume is a clip `(C=1, T, H, W)`; `vtlib.data` loads all six 3D sets by name at
#   28 or 64, checks each file's MD5, and scales voxels to `[0, 1]`.
# - AdrenalMNIST3D is imbalanced (about 23 % positives): always answering "normal" gets test ACC 0.768
#   and AUC 0.5. Report AUC and ACC together, and the baseline next to them.
# - A video pipeline splits frames, samples, resizes, normalises with training statistics, and
#   augments training clips reproducibly.
# - On the synthetic `direction` task, single frames and bags of frames are at chance by construction;
#   only frame order separates the classes. On the `shape` control, one frame is enough.
#
# **Next:** notebook 01 cuts clips into patches and tubelets, the tokens of a video transformer.
#
# **References**
# - J. Yang et al., MedMNIST v2, *Scientific Data* 10:41, 2023.
# - MedMNIST 3D baselines: the official `MedMNIST/experiments` repository.
