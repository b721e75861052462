# %% [markdown]
# # 07 · TimeSformer: divided space-time attention and its alternatives
#
# **What you will learn**
# - five ways to let the tokens of a video talk to each other, all in one backbone: space only, joint
#   space-time, **divided space-time**, sparse local-global and axial attention, and what each costs
#   per token (the paper counts 1569 comparisons against 206);
# - how to build divided space-time attention from scratch with a few `einops` reshapes, and check it
#   against `vtlib.models.timesformer`;
# - what happens to the CLS token (left out of temporal attention, copied into every frame for spatial
#   attention and averaged back), and how the paper's equation differs from the code;
# - why the temporal output projection starts at zero, and why that lets a TimeSformer start life as an
#   image model;
# - the paper's Table 1 at small scale (synthetic motion and AdrenalMNIST3D) and its cost figure, and
#   which of the paper's conclusions hold here; a live run where space-only attention stays at chance.
#
# **Prerequisites:** notebooks 01 (patches, per-frame embedding), 02 (separate space and time
# positions), 03 (the CLS token), 04 (attention, blocks, cost) and 06 (factorised attention in ViViT).
# **Time:** under a minute on a 2-core CPU (most of it trains two small models).
# **Paper:** Bertasius, Wang & Torresani, *Is Space-Time Attention All You Need for Video
# Understanding?*, ICML 2021, <https://arxiv.org/abs/2102.05095>.

# %% [markdown]
# ## Setup

# %%
import copy
import math
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from matplotlib.colors import ListedColormap

from vtlib.cost import measure_flops
from vtlib.data import load_split, sample_frames
from vtlib.experiments.common import format_summary, read_csv
from vtlib.experiments.timesformer import clip_loaders
from vtlib.hf import HFTimesformerClassifier, timesformer_to_hf
from vtlib.models.timesformer import ATTENTIONS, TimeSformer, attention_masks
from vtlib.train import TrainConfig, fit
from vtlib.utils import count_parameters, get_device, seed_everything

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
RESULTS = Path("../results") if Path("../results").exists() else Path("results")
print("vtlib is ready")

# %% [markdown]
# ## 1. Tokens: one image embedding per frame, positions in space and time
#
# TimeSformer treats a clip as a stack of images. Every frame is cut into p × p patches and embedded
# by the **same** 2D convolution (exactly a ViT's patch embedding), so an image model's weights fit.
# We keep 8 evenly spaced slices of each 28-slice AdrenalMNIST3D volume and use 7 × 7 patches: a 4 × 4
# grid, **N = 16 patches per frame, T = 8 frames**, 128 patch tokens, plus one CLS token.
#
# Two position codes, as in the reference code: a learned **spatial** table of N + 1 rows (one for the
# CLS, one per patch position, shared by all frames) and a separate **time** table of T rows, added to
# the patches only and initialised to **zero**. Tokens are kept in the course's (t h w) order.

# %%
x_all, y_all = load_split("adrenal", "train", size=28)
clips = sample_frames(x_all[:4], 8)                              # (B, C, T, H, W) = (4, 1, 8, 28, 28)
model = TimeSformer(num_classes=2, video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4)
tokens = rearrange(model.embed(clips), "b (t n) d -> b t n d", t=8)
print("clips     ", tuple(clips.shape))
print("patches   ", tuple(tokens.shape), "= (B, T, N, D)")
print("space_pos ", tuple(model.space_pos.shape), "= (1, N + 1, D)")
print("time_pos  ", tuple(model.time_pos.shape), "= (1, T, D), all zero:", bool((model.time_pos == 0).all()))
print("encoder input", tuple(model._tokens(clips).shape), "= (B, 1 + T*N, D)")

# %% [markdown]
# ## 2. Five ways to attend, and what they cost per token
#
# With the tokens fixed, the schemes differ only in **which keys each query is compared with**:
#
# | scheme | in every block | comparisons per patch |
# |---|---|---|
# | space only (S) | each frame on its own, like an image model; no time embedding; frames averaged at the end | N + 1 |
# | joint space-time (ST) | every token with every token | N·T + 1 |
# | divided space-time (T+S) | temporal attention (same position, all frames), then spatial attention (same frame) | N + T + 2 |
# | sparse local-global (L+G) | local windows (all frames × a quarter of the grid), then every 2nd patch in t, h, w | T·N/4 + T·N/8 + 1 |
# | axial (T+W+H) | along time, then along the width, then along the height | T + W + H + 1 |
#
# `attention_masks(attention, grid)` draws these patterns as boolean (1 + T·N) × (1 + T·N) matrices,
# one per sub-attention (index 0 is the CLS). Below, for one query patch (frame 3, row 1, column 2),
# the tokens it is compared with, coloured by sub-attention.

# %%
grid = model.grid                                                  # (T, nh, nw) = (8, 4, 4)
T, nh, nw = grid
query = 1 + (3 * nh + 1) * nw + 2                                  # index of patch (t=3, h=1, w=2)
colours = ListedColormap(["black", "whitesmoke", "tab:blue", "tab:orange", "tab:green"])   # -1, 0, 1, 2, 3
fig, axes = plt.subplots(len(ATTENTIONS), T, figsize=(8, 5.6))
for row, attention in enumerate(ATTENTIONS):
    masks = attention_masks(attention, grid)
    picture = torch.zeros(T * nh * nw)
    for k, m in enumerate(masks.values()):
        picture = torch.where(m[query, 1:] & (picture == 0), torch.tensor(float(k + 1)), picture)
    picture[query - 1] = -1                                        # the query itself
    picture = rearrange(picture, "(t h w) -> t h w", t=T, h=nh)
    for t in range(T):
        axes[row, t].imshow(picture[t], cmap=colours, vmin=-1.5, vmax=3.5)
        axes[row, t].set_xticks([])
        axes[row, t].set_yticks([])
        if t == 0:
            axes[row, t].set_ylabel(attention, rotation=0, ha="right", va="center")
        if row == 0:
            axes[row, t].set_title(f"t={t}", fontsize=9)
fig.suptitle("keys of the query patch (black): blue = 1st sub-attention, orange = 2nd, green = 3rd, grey = none",
             fontsize=10)
plt.show()

# %% [markdown]
# Count the comparisons, per sub-attention and in total, for our grid and for the paper's
# (224-pixel frames in 16-pixel patches: N = 196, T = 8). The paper's numbers are 1569 and 206.

# %%
for attention in ATTENTIONS:
    masks = attention_masks(attention, grid)
    parts = {name: int(m[query].sum()) for name, m in masks.items()}
    print(f"{attention:>13}: {sum(parts.values()):>3} comparisons per patch  {parts}")
paper_grid = (8, 14, 14)
joint_paper = int(attention_masks("joint", paper_grid)["joint"][1].sum())
divided_paper = sum(int(m[1].sum()) for m in attention_masks("divided", paper_grid, cls_in_time=True).values())
print("paper size, joint vs divided:", joint_paper, "vs", divided_paper)

# %% [markdown]
# Divided attention makes each patch do N + T + 2 = 26 comparisons here instead of 129. The price is
# parameters: every block gets a second attention with its own LayerNorm, q/k/v and output projection,
# plus one more linear layer (`fc`, below). That is the jump from 85.9M to 121.4M parameters in the
# paper (axial has two extra attentions: 156.8M). At our size:

# %%
for attention in ATTENTIONS:
    m = TimeSformer(attention=attention, video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4)
    print(f"{attention:>13}: {count_parameters(m):>6} parameters")

# %% [markdown]
# ## 3. Divided space-time attention from scratch
#
# One divided block on tokens x of shape (B, 1 + T·N, D), CLS first:
#
# 1. **Temporal attention.** Regroup the patch tokens so that each spatial position becomes a sequence
#    of its T frames: `"b (t n) d -> (b n) t d"`, B·N sequences of length T. Attend, pass the result
#    through the extra linear layer `fc`, add it back. The CLS token is left out.
# 2. **Spatial attention.** Regroup by frame: `"b (t n) d -> (b t) n d"`, B·T sequences of N patches.
#    Each frame gets its own copy of the CLS token in front. Attend. The T outputs of the CLS copies
#    are **averaged** into one CLS update; the patches get their own outputs.
# 3. **MLP**, as in every transformer block.
#
# Each step is pre-norm with its own LayerNorm. Reshapes, not loops: the batch axis simply carries
# the positions (step 1) or the frames (step 2). Below, `attend` is notebook 04's multi-head
# attention written with the weights of a given `qkv` and `proj` layer.

# %%
def attend(x, qkv, proj, heads):
    """Multi-head self-attention on sequences x (S, L, D) with the given Linear layers."""
    q, k, v = rearrange(qkv(x), "s l (three h d) -> three s h l d", three=3, h=heads)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)   # (S, h, L, L)
    return proj(rearrange(weights @ v, "s h l d -> s l (h d)"))


def divided_block(x, blk, T, heads):
    """x (B, 1 + T*N, D), CLS first, patches in (t n) order -> (B, 1 + T*N, D)."""
    B = x.shape[0]
    cls, patches = x[:, :1], x[:, 1:]
    # 1. temporal: every spatial position attends over its T frames; no CLS
    tm = blk.mixers["time"]
    seqs = rearrange(tm.norm(patches), "b (t n) d -> (b n) t d", t=T)              # (B*N, T, D)
    out = rearrange(attend(seqs, tm.attn.qkv, tm.attn.proj, heads), "(b n) t d -> b (t n) d", b=B)
    patches = patches + tm.fc(out)
    # 2. spatial: every frame attends over its N patches and a copy of the CLS
    frames = rearrange(blk.norm1(patches), "b (t n) d -> (b t) n d", t=T)          # (B*T, N, D)
    cls_copies = repeat(blk.norm1(cls), "b 1 d -> (b t) 1 d", t=T)                 # (B*T, 1, D)
    out = attend(torch.cat([cls_copies, frames], dim=1), blk.attn.qkv, blk.attn.proj, heads)
    cls = cls + reduce(out[:, :1], "(b t) 1 d -> b 1 d", "mean", b=B)              # average the T copies
    patches = patches + rearrange(out[:, 1:], "(b t) n d -> b (t n) d", b=B)
    x = torch.cat([cls, patches], dim=1)
    # 3. MLP
    return x + blk.mlp(blk.norm2(x))

# %% [markdown]
# Compare with the library's block. Its `fc` starts at zero (section 5), which would hide any mistake
# in the temporal step, so first give it random weights.

# %%
blk = copy.deepcopy(model.blocks[0]).eval()
with torch.no_grad():
    torch.nn.init.normal_(blk.mixers["time"].fc.weight, std=0.1)
x = model._tokens(clips).detach()
with torch.no_grad():
    ours, theirs = divided_block(x, blk, T=8, heads=4), blk(x)
print("shape", tuple(ours.shape))
print("matches vtlib.models.timesformer.FactorisedBlock:", torch.allclose(ours, theirs, atol=1e-5))

# %% [markdown]
# The other two factorised schemes use the same machinery with other groupings, listed in
# `vtlib.models.timesformer.GROUPINGS`: axial uses `"b (t h w) d -> (b t h) w d"` (along the width) and
# `"... -> (b t w) h d"` (height); local-global uses 2 × 2 windows of the patch grid over all frames,
# then groups of patches that share (t mod 2, h mod 2, w mod 2), a stride of 2 in every axis. Our
# local-global is a small-scale reading of the paper's: its windows do not overlap, so both steps stay
# plain reshapes (the tests check each grouping against masked joint attention).

# %% [markdown]
# ## 4. The CLS token: the code versus the paper's equation
#
# The CLS token belongs to no frame and no position. The reference code (and Hugging Face's port)
# leaves it out of temporal attention and lets it into spatial attention by copying it into every
# frame and averaging the T results. The paper's equation for temporal attention lists the CLS key
# too, so there a patch compares with T + 1 keys in time. The issue is open on the official repository
# (#125, #74) without an answer. `cls_in_time=True` implements the equation: same parameters, one more
# key per temporal sequence.

# %%
ref = TimeSformer(video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4).eval()
paper = TimeSformer(video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4, cls_in_time=True).eval()
paper.load_state_dict(ref.state_dict())
print("comparisons per patch, code vs equation:", ref.comparisons_per_patch(), "vs", paper.comparisons_per_patch())
with torch.no_grad():
    diff_init = (ref(clips) - paper(clips)).abs().max().item()
print("max |logit difference| at init:", diff_init)

# %% [markdown]
# At init the difference is exactly zero: the temporal branch's `fc` is zero, so whatever temporal
# attention computes (with or without the CLS key) is multiplied by zero. Once `fc` has learned
# something the two differ. Here we put random weights in it, as training would:

# %%
with torch.no_grad():
    for m in (ref, paper):
        for b in m.blocks:
            b.mixers["time"].fc.weight.copy_(0.1 * torch.randn(b.mixers["time"].fc.weight.shape,
                                                               generator=torch.Generator().manual_seed(1)))
    diff_mixed = (ref(clips) - paper(clips)).abs().max().item()
print("logits differ once time is mixed (> 1e-4):", diff_mixed > 1e-4)

# %% [markdown]
# Whether it matters after training is an empirical question; the experiment command trains both
# (`divided` and `divided-cls`, 3 seeds each) and section 7 shows the numbers.
#
# ## 5. Zero init: a TimeSformer starts as an image model
#
# The reference code initialises the temporal branch's last layer, `temporal_fc` (vtlib:
# `block.mixers["time"].fc`), to zero, and the time embedding to zero. The authors' reason (issues #29,
# #7, #66): start from an ImageNet ViT and the first step of video training computes exactly what the
# image model computed; temporal features are then learned gradually "without destroying" the spatial
# ones. Three checks with numbers:
#
# **(a) The temporal branch adds exactly zero.** Delete it from every block and the logits do not move.

# %%
model.eval()
no_time = copy.deepcopy(model)
for b in no_time.blocks:
    del b.mixers["time"]                                           # the temporal branch switched off
with torch.no_grad():
    print("max |logit difference| without the temporal branch:", (model(clips) - no_time(clips)).abs().max().item())

# %% [markdown]
# **(b) On a still clip it is the image model.** Load the same weights into a space-only model (its
# blocks have the same names; only the temporal parts are left over) and into a one-frame model, a ViT
# on a single image. Show all three a clip that repeats one frame 8 times.

# %%
space = TimeSformer(attention="space", video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4).eval()
missing, unexpected = space.load_state_dict(model.state_dict(), strict=False)
image = TimeSformer(attention="space", video_shape=(1, 28, 28), patch=7, dim=48, depth=2, heads=4).eval()
image.load_state_dict(space.state_dict())
print("only temporal weights are left over:", missing == [] and all("time" in k for k in unexpected))
frame = clips[:, :, 3:4]                                           # (B, 1, 1, 28, 28)
still = frame.expand(-1, -1, 8, -1, -1)                            # the same frame 8 times
with torch.no_grad():
    print("divided TimeSformer on a still clip == image ViT:", torch.allclose(model(still), image(frame), atol=1e-5))

# %% [markdown]
# **(c) The price.** At the first step the gradient reaches `fc` but nothing behind it: the temporal
# attention's weights get exactly zero gradient until `fc` has moved away from zero. Users of other
# implementations found zero-initialised temporal blocks learning slowly (lucidrains/TimeSformer-pytorch
# #8). Hugging Face draws `temporal_dense` at random instead, which only matters if you start from an
# image model.

# %%
model.train()
F.cross_entropy(model(clips), torch.tensor([0, 1, 0, 1])).backward()
tm = model.blocks[0].mixers["time"]
print("fc gets a gradient:", tm.fc.weight.grad.norm().item() > 0)
print("gradient norm of the temporal attention:", tm.attn.qkv.weight.grad.norm().item())
model.zero_grad()

# %% [markdown]
# ## 6. Same function as Hugging Face's TimeSformer
#
# `vtlib.hf.timesformer` copies the weights to and from `transformers`' `TimesformerForVideoClassification`
# (divided, joint and space-only; no download, the config is built locally). Hugging Face keeps the
# reference's (h w t) token order and its space-only model returns one prediction per frame, which the
# wrapper averages. The tests check several configs in both directions; here one, with random weights
# everywhere (including `fc`).

# %%
check = copy.deepcopy(ref)                                         # fc already random (section 4)
hf = timesformer_to_hf(check)
with torch.no_grad():
    same = torch.allclose(HFTimesformerClassifier(hf)(clips), check(clips), atol=1e-4)
print(type(hf).__name__, hf.config.attention_type, "| same logits:", same)

# %% [markdown]
# Same function, same speed? `python -m vtlib.bench --model timesformer --preset course fine --threads 1 2`
# times both with the same weights (median of 9 repeats, vtlib and Hugging Face alternating), at the
# course size (every 4th frame, 7 × 16 = 112 patch tokens, dim 64, depth 4) and a fine one (every 2nd
# frame in 4 × 4 patches: 14 × 49 = 686 tokens), on 1 and on 2 CPU threads. Ratios above 1 mean vtlib is
# faster.

# %%
bench_path = RESULTS / "bench_timesformer.csv"
bench = read_csv(bench_path) if bench_path.exists() else []
for r in bench:
    print(f"{r['config']:>6}, {r['tokens']} tokens, {r['threads']} thread(s): inference {float(r['infer_clips_s_vtlib']):6.1f} vs "
          f"{float(r['infer_clips_s_ref']):6.1f} clips/s (x{float(r['infer_clips_s_ratio']):.3f}), training "
          f"{float(r['train_clips_s_vtlib']):5.1f} vs {float(r['train_clips_s_ref']):5.1f} "
          f"(x{float(r['train_clips_s_ratio']):.3f}), same FLOPs: {r['gflops_fwd_per_clip_ratio'] in ('1', '1.0')}")

# %% [markdown]
# **What we measured** (an AMD EPYC CPU on a quiet 2-core machine; every FLOPs ratio is 1). vtlib trains
# at 1.038 and 1.026 of Hugging Face's speed on 1 thread and at 0.962 and 0.991 on 2
# <!-- from: results/bench_timesformer.csv -->: level, within the few percent that separate two runs of
# the command. Its inference is faster on 1 thread (1.176 at the course size, 1.256 at 686 tokens) and
# level on 2 (0.936 and 1.041) <!-- from: results/bench_timesformer.csv -->. Its peak training memory is
# at most Hugging Face's (ratios 0.918 to 0.987) <!-- from: results/bench_timesformer.csv -->.
#
# Training was not always level. Hugging Face computes TimeSformer's attention explicitly, two batched
# matrix products and a softmax, while vtlib's `MultiHeadAttention` calls the fused SDPA kernel, and
# every sequence here is short: 17 tokens in a frame with the CLS, 7 along a patch's time line. With
# SDPA on every sequence, vtlib trained at 0.868 of Hugging Face's speed on 1 thread and 0.834 on 2 <!-- from: results/bench_timesformer_sdpa.csv -->
# at the course size, and the fused kernel alone took 24.1 ms of a 2-thread step <!-- from: results/bench_timesformer_sdpa.csv -->,
# several times what the explicit form costs for the same attention. Notebook 04 (section 6) times the
# two forms on sequences this short: with gradients, which one is cheaper depends on the length and the
# threads, and the fused kernel's backward gains little from a second thread, or even loses. Over whole
# training steps the explicit form won, so a `MultiHeadAttention` that trains on a CPU uses it for
# sequences of at most `SHORT_SEQUENCE` = 64 tokens. That makes vtlib level with Hugging Face,
# not faster: both then run the same matrix products.
#
# ## 7. Table 1 at small scale: results of the experiment command
#
# `python -m vtlib.experiments.timesformer` trains every scheme at the same width and depth (dim 48,
# 2 blocks, 4 heads, 8 frames of 28 × 28, patch 7), 3 seeds each, selects each run's epoch on the
# validation split and evaluates the test split once. It also measures parameters, FLOPs per clip
# (`vtlib.cost.measure_flops`) and single-thread CPU throughput. One change from the reference code:
# the time embedding starts from a small random draw instead of zero (the results below show why).
# Rows marked `divided-cls` use the paper's equation for the CLS.

# %%
summary_path = RESULTS / "timesformer_summary.csv"
summary = read_csv(summary_path) if summary_path.exists() else []
if not summary:
    print("results/timesformer_summary.csv not found: run python -m vtlib.experiments.timesformer")

# %% tags=["nbval-ignore-output"]
for ds in dict.fromkeys(r["dataset"] for r in summary):
    rows = [r for r in summary if r["dataset"] == ds]
    print(f"{ds} ({rows[0]['epochs']} epochs, {rows[0]['n']} seeds, CPU):")
    print(format_summary([{**r, "n": int(r["n"]), **{k: float(r[k]) for k in r if k.endswith(("_mean", "_std"))}}
                          for r in rows], keys=("test_auc", "test_acc")))
    for r in rows:
        print(f"   {r['config']:>13}: {int(r['params']):>6} params, {float(r['mflops']):6.1f} MFLOPs/clip, "
              f"{int(r['comparisons_per_patch']):>3} comparisons/patch, {float(r['clips_per_cpu_s']):6.1f} clips/CPU-s")

# %%
table = {(r["dataset"], r["config"]): float(r["test_auc_mean"]) for r in summary}
runs_path = RESULTS / "timesformer.csv"
runs = read_csv(runs_path) if runs_path.exists() else []
if table and runs:
    print("direction, space-only at chance (mean AUC < 0.6):", table["direction", "space"] < 0.6)
    print("direction, joint at chance in 8 epochs (mean AUC < 0.6):", table["direction", "joint"] < 0.6)
    print("direction, divided with a random temporal fc solves it (mean AUC > 0.95):",
          table["direction", "divided-fc-random"] > 0.95)
    for config in ("divided", "divided-cls", "divided-time-zero", "divided-fc-random"):
        solved = sum(float(r["test_auc"]) > 0.95 for r in runs if r["dataset"] == "direction" and r["config"] == config)
        print(f"direction, {config}: seeds with test AUC > 0.95: {solved} of 3")
    adrenal = [v for (ds, c), v in table.items() if ds == "adrenal"]
    print("adrenal, every scheme between AUC 0.7 and 0.8:", all(0.7 < v < 0.8 for v in adrenal))
    print("adrenal, best minus worst scheme < 0.05 AUC:", max(adrenal) - min(adrenal) < 0.05)

# %% [markdown]
# What the numbers say (3 seeds, 8 epochs, single-thread CPU; `train_seconds` in the CSV is wall time on
# a shared machine, use the CPU throughput column for speed):
#
# - **Space-only attention is at chance on the direction task** (test AUC 0.52 ± 0.03), as it must be: it
#   sees each frame alone and averages them. The paper's version of this lesson is SSv2, where space-only
#   loses 23 points (36.6 against 59.5) while on appearance-driven Kinetics it loses 1. <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 1 -->
# - **Divided attention can solve it, but how reliably depends on its initialisation.** With the
#   reference's zero-initialised temporal `fc`, one seed of three reached test AUC 1.00 within 8 epochs
#   and two stayed near chance (mean 0.70 ± 0.26). The same model with a random `fc` solved all three
#   (0.99 ± 0.01). With the reference's zero time embedding as well, none did. Zero init preserves an
#   image model; trained from scratch it means that at first the temporal attention adds nothing and
#   learns nothing (section 5c), only the small time embedding tells frames apart, and leaving that
#   point can take many epochs. (The random-`fc` runs' accuracy, 0.78 ± 0.25, lags their AUC: in one
#   seed the selected epoch ranks every clip correctly but puts its threshold on one side of all of them.)
# - **Joint space-time attention stayed at chance** (0.49 ± 0.02), in all 3 seeds. Its training loss never
#   left ln 2 = 0.693: it did not even memorise the training clips. The paper trains joint attention
#   from an ImageNet model and finds it only 1 point behind divided on SSv2; from scratch, on 1024 clips,
#   the same-position-across-time comparison that divided attention hard-wires must be discovered among
#   129 keys, and here it was not. (ViViT's tubelets, notebook 01, see motion inside one token instead.)
#   The probes below try other settings. So of the expectation "divided and joint near perfect", only
#   divided holds here, and only with a random `fc`.
# - **The paper's equation for the CLS** (`divided-cls`) made no measurable difference: on AdrenalMNIST3D
#   0.754 ± 0.036 against 0.756 ± 0.046; on direction it behaves like divided with a zero `fc` (0 of 3).
# - **On AdrenalMNIST3D all five schemes land between test AUC 0.722 and 0.756**, a spread well
#   inside one seed-to-seed standard deviation (up to 0.046), with ACC at the majority level (0.77). Divided
#   has the highest mean and local-global the lowest, but 3 seeds cannot separate them.
#   A volume's slices carry no motion, so, as on Kinetics, space-only attention loses nothing.
# - **With the test set's own noise counted** (notebook 13: approximate 95 % intervals of the paired difference; these sweeps kept per-seed AUCs, not per-clip scores): divided minus space-only +0.027 [-0.069, +0.123], not resolved. <!-- from: notebook 13 -->
# - **Cost at 8 frames:** divided has more parameters than joint (84 098 against 60 386: the extra
#   attention and `fc`) and, at only 129 tokens, slightly *more* FLOPs (22.3M against 21.3M per clip) and lower CPU
#   throughput (1147 against 1560 clips per CPU-second): when N·T is small the extra projections cost more
#   than the attention they save. Axial is the slowest (813 clips/s; three attentions per block).
#
# Is joint attention's failure a matter of tuning? `python -m vtlib.experiments.timesformer --part probes`
# retrains it on the direction task (seed 0) with other learning rates, four times the clips, 2 × 2
# instead of 4 × 4 patches per frame, a sin-cos time code large enough to steer attention from the
# first step, and a wider, deeper model:

# %%
probes_path = RESULTS / "timesformer_probes.csv"
probes = read_csv(probes_path) if probes_path.exists() else []
for r in probes:
    print(f"{r['probe']:>32}: test AUC {float(r['test_auc']):.3f} | train loss per epoch {r['train_loss_per_epoch']}")
print("every probe at chance (|AUC - 0.5| < 0.1):", bool(probes) and all(abs(float(r["test_auc"]) - 0.5) < 0.1 for r in probes))

# %% [markdown]
# No. Every probe (seed 0, CPU) ended between test AUC 0.47 and 0.51, and no training loss went below
# 0.688: a third of the learning rate or ten times less, four times the data, 33 instead of 129 tokens,
# a sin-cos time code of row norm 4.9 where the learned one starts from entries of standard deviation
# 0.02 <!-- from: config: vtlib.models.timesformer, time_init="normal" -->, and a wider, deeper model
# (dim 64, depth 4: more than three times the parameters). The
# model stays at the point where every clip gets the same score. What these probes do not rule out: a
# much longer schedule, or a start from a trained image model as in the paper.
#
# **Cost against clip length (the paper's Figure 3).** The command also measured every scheme on random
# clips of 4 to 128 frames (28 × 28) and of 28 to 112 pixels (8 frames): FLOPs counted by
# `measure_flops`, and CPU milliseconds per clip on one thread.

# %%
cost_path = RESULTS / "timesformer_cost.csv"
cost = read_csv(cost_path) if cost_path.exists() else []
if cost:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for attention in ATTENTIONS:
        rows = [r for r in cost if r["axis"] == "frames" and r["config"] == attention]
        f = [int(r["frames"]) for r in rows]
        axes[0].plot(f, [float(r["mflops"]) for r in rows], marker="o", label=attention)
        axes[1].plot(f, [float(r["cpu_ms_per_clip"]) for r in rows], marker="o", label=attention)
    for ax, label in zip(axes, ("MFLOPs per clip", "CPU ms per clip (1 thread)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frames (28 x 28, patch 7)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    plt.show()
else:
    print("results/timesformer_cost.csv not found: run python -m vtlib.experiments.timesformer --part cost")

# %% [markdown]
# FLOPs do not depend on the machine, so we can also count them live and check them: one clip, joint
# against divided, at 8 and at 64 frames.

# %%
flops = {}
for frames in (8, 64):
    for attention in ("joint", "divided"):
        m = TimeSformer(attention=attention, video_shape=(frames, 28, 28), patch=7, dim=48, depth=2, heads=4).eval()
        flops[attention, frames] = measure_flops(m, torch.zeros(1, 1, frames, 28, 28))
        print(f"{attention:>8}, {frames:>2} frames: {flops[attention, frames] / 1e6:8.1f} MFLOPs")
print("joint grows faster than divided from 8 to 64 frames:",
      flops["joint", 64] / flops["joint", 8] > 2 * flops["divided", 64] / flops["divided", 8])

# %% [markdown]
# Joint attention's cost grows with the square of the token count, divided attention's roughly linearly
# (its temporal part grows with T², but T is small next to N·T). Measured on one CPU thread: at 8 frames
# joint and divided cost about the same (21 against 22 MFLOPs); divided is cheaper from 16 frames on, and
# at 128 frames (2049 tokens) joint needs 1848 against 450 MFLOPs and 54.1 against 14.8 ms of CPU time per clip <!-- from: results/timesformer_cost.csv -->.
# Growing the frames to 112 pixels at 8 frames (also 2049 tokens) gives 1848 against 540 MFLOPs and 55.2 against 18.8 ms <!-- from: results/timesformer_cost.csv -->.
# Local-global's windows span all frames, so it grows faster than divided with T; at 112 pixels axial needs
# the fewest FLOPs of the four schemes that attend across frames (463 MFLOPs <!-- from: results/timesformer_cost.csv -->). This is the
# shape of the paper's Figure 3, where joint attention runs out of GPU memory at 448-pixel frames or 32
# frames: its (1 + N·T)² score matrix per head and layer (here 33 587 208 scores per clip over 4 heads and 2 layers <!-- from: results/timesformer_cost.csv -->)
# is what divided attention never builds.
#
# ## 8. Live: space-only attention cannot see motion
#
# The synthetic `direction` task of notebook 00: an object glides left or right across the frame, and
# every class-1 clip is a class-0 clip played backwards. Both classes contain the same frames, so a
# model that ignores frame order must be at chance. Space-only attention processes each frame alone
# and averages the frames: it *is* such a model. Divided attention needs both of its temporal parts:
# the time embedding labels each frame with its index, and temporal attention compares the labelled
# frames (attention alone, without the labels, cannot tell one order from another: exercise 4 measures it).
#
# Same sizes as the experiment (dim 48, 2 blocks, 8 frames, 1024 training clips, 8 epochs, seed 0),
# one run per scheme. One change: we start the temporal `fc` at random (`temporal_init="default"`).
# Trained from scratch there is no image model to protect, and a random `fc` lets gradient reach the
# temporal attention from the first step; the experiment measures what the zero init costs here.

# %%
data = clip_loaders("direction", frames=8, n_train=1024)
xb, yb = next(iter(data["train"]))
print("direction clips", tuple(xb.shape), "| train / val / test:", [len(d.dataset) for d in data.values()])
live, seconds = {}, {}
for name, kw in {"space": dict(attention="space"), "divided": dict(attention="divided", temporal_init="default")}.items():
    seed_everything(0)
    net = TimeSformer(video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4, time_init="normal", **kw)
    t0 = time.perf_counter()
    live[name] = fit(net, data["train"], data["val"], TrainConfig(epochs=8, lr=1e-3, seed=0, progress=False),
                     test_loader=data["test"])
    seconds[name] = time.perf_counter() - t0

# %% tags=["nbval-ignore-output"]
for name, r in live.items():
    print(f"{name:>8}: val AUC per epoch {[round(h['val_auc'], 2) for h in r.history]} | "
          f"test AUC {r.test['auc']:.3f} ACC {r.test['acc']:.3f} | {seconds[name]:.0f} s on {device}")
print("temporal fc weight norm after training:",
      [round(b.mixers['time'].fc.weight.norm().item(), 3) for b in live["divided"].model.blocks])

# %%
print("space-only at chance (test AUC < 0.65):", live["space"].test["auc"] < 0.65)
print("divided solves it (test AUC >= 0.9):", live["divided"].test["auc"] >= 0.9)
print("the temporal fc grew away from zero:",
      all(b.mixers["time"].fc.weight.norm().item() > 0.1 for b in live["divided"].model.blocks))

# %% [markdown]
# In our run (seed 0, CPU, 8 epochs) the space-only model never left chance (test AUC about 0.5), while
# divided attention jumped from chance to a validation AUC near 1.0 around epoch 5 and reached test AUC
# 1.0. The temporal `fc` layers that start at zero in the reference (random here) are clearly in use.
# What this does not show: that divided attention beats joint attention in general (the paper's margin
# is one point on SSv2), or that these models are good on real medical volumes; section 7 has the
# multi-seed numbers.
#
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb07` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb07.py`; try first.)
#
# 1. **A temporal window.** Long clips make even divided attention's temporal part grow with T². A cheaper
#    variant lets a patch look only at nearby frames. Write `time_window_mask(grid, w)`: the
#    (1 + T·N) × (1 + T·N) bool pattern of that temporal attention for a `(T, nh, nw)` grid, in the format of
#    `attention_masks` (index 0 the CLS, patches in (t h w) order, row = query, column = key): a patch sees
#    the patches at its own position in the frames at most `w` before or after its own, and the CLS takes no
#    part, as in the reference code.
# 2. **Score entries of one block.** Section 2 counted the keys of one query. Write
#    `score_entries(attention, T, nh, nw)`: the entries of every score matrix that one block computes for
#    one head and one clip, for each of the five schemes, with the reference code's handling of the CLS
#    (every group of the last sub-attention gets its own copy).
# 3. **The reference code's token order.** The official code and Hugging Face store the patch tokens as
#    (h w t). Write `group_hwt(x, name, grid)`: for patch tokens `(B, T·N, D)` in that order, return exactly
#    the sequences that `vtlib.models.timesformer.group` makes from the same tokens in (t h w) order, in the
#    same order, for `name` = "time", "space", "width" and "height".
# 4. **Who notices the frame order? (an experiment)** Write `order_change(model, clip, order)`: the largest
#    absolute change of the logits when the frames of `clip` (B, C, T, H, W) are put in `order`. Run it on
#    four TimeSformers (8 frames of 28 × 28, patch 7, dim 48, 2 blocks, 4 heads): the divided model as the
#    reference code initialises it; with a random temporal `fc` (`temporal_init="default"`); with a random
#    time embedding (`time_init="normal"`); and the joint model. Before you run it, guess. Then fill in
#    `answers` from your numbers: True where the logits move by more than 1e-5. What, in these models,
#    tells the frames apart?

# %%
from vtlib.exercises.nb07 import check_frame_order, check_group_hwt, check_score_entries, check_time_window_mask


def time_window_mask(grid, w):
    """grid (T, nh, nw) -> (1 + T*N, 1 + T*N) bool: each patch sees its position in frames at most w away."""
    raise NotImplementedError


_ = check_time_window_mask(time_window_mask)

# %%
def score_entries(attention, T, nh, nw):
    """Entries of all score matrices of one block and one head for one clip."""
    raise NotImplementedError


_ = check_score_entries(score_entries)

# %%
def group_hwt(x, name, grid):
    """x (B, T*N, D) patch tokens in (h w t) order -> the (B*G, L, D) groups of group(x in (t h w), name, grid)."""
    raise NotImplementedError


_ = check_group_hwt(group_hwt)

# %%
def order_change(model, clip, order):
    """max |logits(clip) - logits(clip with its frames in `order`)|, a float."""
    raise NotImplementedError


# try: order_change(TimeSformer(video_shape=(8, 28, 28), patch=7, dim=48, depth=2, heads=4).eval(), clips,
#                   [3, 0, 6, 1, 7, 2, 4, 5])
answers = {"divided": None, "divided_random_fc": None, "divided_random_time": None, "joint": None}
_ = check_frame_order(order_change, answers)

# %% [markdown]
# ## Summary
#
# - One TimeSformer backbone, five attention schemes: only the grouping of tokens changes. Per patch,
#   joint attention compares with N·T + 1 keys, divided with N + T + 2 (paper) or N + T + 1 (code):
#   129 against 26 here, 1569 against 206 at the paper's size.
# - Divided attention = temporal attention over `(b n) t d`, then spatial attention over `(b t) n d`,
#   each with its own norm and projections; it equals Hugging Face's TimeSformer with the same weights.
# - The CLS token skips temporal attention in the code (the paper's equation includes it), is copied
#   into every frame for spatial attention and averaged back. At init the two versions are identical.
# - `temporal_fc` starts at zero, so a divided TimeSformer starts as its image model (exactly, on a
#   still clip); the first gradient reaches only `fc`.
# - At small scale (3 seeds, 8 epochs, CPU): on the direction task space-only and joint attention stay at
#   chance, divided attention solves it reliably only with a random `fc` (0.99 ± 0.01 test AUC; 1 seed of
#   3 with the zero init). On AdrenalMNIST3D the five schemes land between AUC 0.72 and 0.76, inside
#   the seed noise. Divided attention is cheaper than joint from 16 frames on (450 against 1848 MFLOPs <!-- from: results/timesformer_cost.csv -->
#   at 128 frames), slightly dearer at 8.
#
# **Next:** notebook 08 (VideoMAE) pre-trains a video transformer by reconstructing masked tubes.
#
# **References**
# - G. Bertasius, H. Wang, L. Torresani, Is Space-Time Attention All You Need for Video Understanding?,
#   ICML 2021, arXiv 2102.05095; official code `facebookresearch/TimeSformer` (`timesformer/models/vit.py`),
#   issues #125, #74 (CLS in temporal attention), #29, #7, #66 (zero init).
# - Hugging Face `transformers`, `models/timesformer/modeling_timesformer.py` (v5.23).
# - lucidrains/TimeSformer-pytorch, issue #8 (zero-initialised temporal attention learning slowly).
