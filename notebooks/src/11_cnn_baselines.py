# %% [markdown]
# # 11 · CNN baselines
#
# **What you will learn**
# - the classic "2D CNN on every frame, then a convolution over time" video network: the broken version
#   that is widely copied from blog posts (a `Conv2d` called on a 5-D clip, then a reshape that hands
#   *time* to the `Conv3d` as its channels), why it fails or silently computes the wrong thing, and the
#   right version in a few lines of `einops`;
# - why the temporal module of such a network is a **convolution** and not attention;
# - **(2+1)D** convolutions (R(2+1)D): a t×d×d kernel factored into a spatial and a temporal one, with
#   an intermediate width that keeps the parameter count of the full 3D kernel;
# - **ACS** convolutions: a 2D kernel split into axial, coronal and sagittal parts, which gives a 3D
#   network with exactly the parameters of a 2D one; ResNet-18 in 3D, 2.5D and ACS form, as in the
#   MedMNIST v2 benchmark;
# - **when to fuse frames** (Karpathy et al.'s single-frame, late, early and slow fusion), measured on a
#   synthetic task where only motion tells the classes apart;
# - the **CNN yardstick** on AdrenalMNIST3D: the course's transformer recipe against a small 3D ResNet
#   trained the same way, with paired intervals, next to the published MedMNIST v2 rows, and why those
#   rows and ours may differ.
#
# **Prerequisites:** notebook 00 (clips as `(B, C, T, H, W)`, AUC next to the majority baseline) and
# notebook 01 (a tubelet embedding is a `Conv3d`). Section 6 uses `vtlib.stats` (bootstrap intervals,
# paired comparisons); notebook 13 (the ablation lab) builds it, and each result here is said in words.
# **Time:** about a minute to run on a 2-core CPU.
# **Papers:** Karpathy et al., *Large-scale Video Classification with Convolutional Neural Networks*,
# CVPR 2014, <https://cs.stanford.edu/people/karpathy/deepvideo/>; Tran et al., *A Closer Look at
# Spatiotemporal Convolutions for Action Recognition* (R(2+1)D), CVPR 2018, <https://arxiv.org/abs/1711.11248>;
# Yang et al., *Reinventing 2D Convolutions for 3D Images* (ACS), IEEE JBHI 2021,
# <https://arxiv.org/abs/1911.10477>; Yang et al., *MedMNIST v2*, Scientific Data 2023,
# <https://arxiv.org/abs/2110.14795>; He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016,
# <https://arxiv.org/abs/1512.03385>.

# %% [markdown]
# ## Setup

# %%
import math
import time
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlib import lab, stats
from vtlib.acs import ACSConv3d, acs_split
from vtlib.baselines import MEDMNIST3D
from vtlib.data import load_split
from vtlib.errors import VtlibError
from vtlib.experiments.common import loaders
from vtlib.models.cnn_temporal import Conv2Plus1d, FrameTemporalCNN, midplanes
from vtlib.models.fusion import FUSIONS, FusionCNN
from vtlib.models.resnet3d import CONVS, RESNET18_WIDTHS, SMALL_WIDTHS, ResNet3D, resnet18_3d
from vtlib.train import TrainConfig, fit
from vtlib.utils import count_parameters, get_device, seed_everything
from vtlib.viz import forest_plot

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
print("vtlib is ready")

# %% [markdown]
# ## 1. The classic video CNN: 2D on every frame, then a convolution over time
#
# Before transformers, a common way to classify a clip was: run a 2D CNN on **every frame on its own**,
# then let a small **temporal convolution** combine the per-frame feature maps of neighbouring frames,
# then pool and classify. Written out for our clips (B clips, C = 1 channel, T = 28 frames of 28 × 28):
#
# | step | operation | shape |
# |---|---|---|
# | clip | | (B, 1, 28, 28, 28) = (B, C, T, H, W) |
# | fold time into the batch | `"b c t h w -> (b t) c h w"` | (B·28, 1, 28, 28): 28·B separate images |
# | 2D stack per frame | [Conv2d 3×3 → BN → ReLU → max-pool 2] × 2 | (B·28, 32, 7, 7) |
# | unfold | `"(b t) c h w -> b c t h w"` | (B, 32, 28, 7, 7): channels back at axis 1, time at axis 2 |
# | temporal conv | Conv3d with kernel (3, 1, 1) | (B, 64, 26, 7, 7) |
# | pool + head | mean over (t, h, w), Linear | (B, 2) |
#
# The two reshapes are the whole difficulty. A version copied from blog post to blog post gets them
# wrong in two ways:
#
# 1. it builds `nn.Conv2d(1, 32, 3)` and calls it on the 5-D clip. A 2D convolution wants `(N, C, H, W)`;
#    PyTorch refuses a 5-D input;
# 2. "fixed" with `x.view(B * T, C, H, W)`, the 2D part runs, and the result is put back with
#    `.view(B, T, 32, H, W)`. That tensor is laid out **(B, T, C', H, W)**, but `nn.Conv3d` reads axis 1 as
#    its channels and axes 2-4 as (depth, height, width). So `Conv3d(32, 64, (3, 1, 1))` finds 28 "channels"
#    (the frames) and refuses; and the usual patch, `Conv3d(28, 64, (3, 1, 1))` (in_channels = T), runs,
#    but now the frames are mixed like colour channels and the "temporal" kernel of 3 slides over the 32
#    **feature channels**.
#
# Each step, with the error caught so we can print what happens:

# %%
B, C, T, H, W = 2, 1, 28, 28, 28
clip = torch.rand(B, C, T, H, W, generator=torch.Generator().manual_seed(0))   # (2, 1, 28, 28, 28)
conv2d = nn.Conv2d(C, 32, 3, padding=1)

try:
    conv2d(clip)                                             # a 5-D input to a 2D convolution
except RuntimeError as err:
    print("1. Conv2d(1, 32, 3) on the clip:", type(err).__name__, "- conv2d takes (N, C, H, W), the clip is 5-D")

frames = conv2d(clip.view(B * T, C, H, W))                   # (56, 32, 28, 28): runs
feats = frames.view(B, T, 32, H, W)                          # (2, 28, 32, 28, 28) = (B, T, C', H, W)
print("2. per-frame features put back with view:", tuple(feats.shape))
try:
    nn.Conv3d(32, 64, (3, 1, 1))(feats)                      # axis 1 holds T = 28, not the 32 features
except RuntimeError as err:
    print("3. Conv3d(32, 64, (3, 1, 1)) on them:", type(err).__name__,
          "- it expects 32 channels on axis 1 and finds 28")

patched = nn.Conv3d(T, 64, (3, 1, 1))(feats)                 # the usual "fix": in_channels = T
print("4. Conv3d(28, 64, (3, 1, 1)) runs:", tuple(patched.shape), "- 30 'time steps' from a 28-frame clip")

# %% [markdown]
# Step 4 is the dangerous one: it trains, and its output even has a time-like axis. But that axis has
# 30 positions because the kernel slid over the 32 feature channels, and the 28 frames were summed with
# separate weights as if they were the colour channels of one image. Whatever it learns, it is not
# "a 2D CNN, then a convolution over time".
#
# Step 2's `view` hides a second trap. It is right here only because C = 1. In `(B, C, T, H, W)` the
# axes C and T are not next to each other, so with C > 1 a `view` to `(B·T, C, H, W)` does not gather
# the channels of one frame: it cuts the memory into pieces of the right size that mix channels and
# frames. `rearrange` names every axis and moves them:

# %%
rgb = torch.rand(2, 3, 4, 5, 5, generator=torch.Generator().manual_seed(1))   # (B, C=3, T=4, H, W)
by_view = rgb.view(2 * 4, 3, 5, 5)                                            # runs, (8, 3, 5, 5)
by_rearrange = rearrange(rgb, "b c t h w -> (b t) c h w")                     # (8, 3, 5, 5)
print("view: row 1 is frame 1 of clip 0:", torch.equal(by_view[1], rgb[0, :, 1]))
print("rearrange: row 1 is frame 1 of clip 0:", torch.equal(by_rearrange[1], rgb[0, :, 1]))

# %% [markdown]
# ### Built right
#
# Fold time into the batch, run the 2D stack, unfold. Two `rearrange` calls, and the temporal
# convolution then sees what its name says: channels on axis 1, time on axis 2.

# %%
def spatial_stack(widths=(16, 32), in_channels=1):
    """[Conv2d 3x3 -> BN -> ReLU -> max-pool 2] per width: (N, C, H, W) -> (N, widths[-1], H/4, W/4)."""
    layers, c = [], in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers)


def frame_features(x, spatial):
    """x (B, C, T, H, W) -> (B, C', T, H', W'): the same 2D stack applied to every frame on its own."""
    b = x.shape[0]
    f = spatial(rearrange(x, "b c t h w -> (b t) c h w"))    # (B*T, C', H', W'): B*T separate images
    return rearrange(f, "(b t) c h w -> b c t h w", b=b)     # (B, C', T, H', W')


ref = FrameTemporalCNN(widths=(16, 32), temporal_width=64, temporal_kernel=3).eval()
mine = spatial_stack().eval()
mine.load_state_dict(ref.spatial.state_dict())               # the same weights as vtlib's model
with torch.no_grad():
    f_mine, f_ref = frame_features(clip, mine), ref.frame_features(clip)
    after_time = ref.temporal(f_mine)                        # Conv3d (3, 1, 1) -> BN -> ReLU
    logits = ref.head(after_time.mean(dim=(2, 3, 4)))
print("frame features:", tuple(f_mine.shape), "| after the temporal conv:", tuple(after_time.shape))
print("matches FrameTemporalCNN.frame_features:", torch.allclose(f_mine, f_ref))
print("and its logits:", torch.allclose(logits, ref(clip), atol=1e-6))

# %% [markdown]
# The 2D stack never mixes frames. Change one frame of one clip and look which frames' features change
# (in eval mode; in training mode BatchNorm's batch statistics are shared by all B·T frames):

# %%
poked = clip.clone()
poked[0, :, 5] = 1.0                                        # clip 0, frame 5 only
with torch.no_grad():
    changed = (frame_features(poked, mine) - f_mine).abs().sum(dim=(1, 3, 4))   # (B, T)
print("(clip, frame) pairs whose features changed:", torch.nonzero(changed > 0).tolist())

# %% [markdown]
# ### Why the temporal module is a convolution, not attention
#
# After the 2D stack every frame is a feature map, and something has to combine frames. A transformer
# would use attention over the T frames (notebook 07's divided attention does exactly that). The classic
# design uses a small convolution along time instead, for four reasons:
#
# - **local**: each output looks at k neighbouring frames (here 3). Motion between neighbouring frames is
#   the signal it is built to catch; longer spans come from stacking layers or from the final pooling;
# - **shared over time**: the same kernel slides along the whole clip, so a pattern is detected wherever
#   it happens, and the layer works for any clip length without change;
# - **few parameters, cost linear in T**: k · C_in · C_out weights, and T − k + 1 outputs, while attention
#   compares every frame with every other one (T² scores);
# - **order is built in**: kernel tap 0 always reads the earlier frame and tap 2 the later one, so the
#   convolution knows which way time runs without a position code. Attention is blind to order until a
#   position code is added (notebooks 02 and 07).
#
# The price is the reverse of those strengths: one layer cannot relate frame 0 to frame 27, and its
# weights do not depend on the content. The weight counts of one temporal layer over 32 channels:

# %%
temporal_conv = nn.Conv3d(32, 32, (3, 1, 1), bias=False)             # k * C_in * C_out weights
attention = nn.MultiheadAttention(32, num_heads=4)                    # Q, K, V, out projections (+ biases)
print("temporal conv, 3 frames, 32 -> 32 channels:", count_parameters(temporal_conv), "weights")
print("self-attention over frames, width 32:", count_parameters(attention), "weights, plus a position code")

# %% [markdown]
# ## 2. (2+1)D convolutions
#
# Tran et al. (CVPR 2018) split a full t×d×d 3D convolution into a **spatial** (1, d, d) convolution to M
# channels, a BatchNorm and ReLU, and a **temporal** (t, 1, 1) convolution to the output channels. The
# receptive field is the same t×d×d block, but there is one more nonlinearity in the middle. To compare
# like with like they pick the intermediate width M so that the two factors hold as many weights as the
# full kernel:
#
# $$t\,d^2 N_{in} N_{out} \;=\; d^2 N_{in} M + t\, M N_{out} \quad\Longrightarrow\quad
# M = \left\lfloor \frac{t\, d^2\, N_{in}\, N_{out}}{d^2 N_{in} + t\, N_{out}} \right\rfloor .$$
#
# The floor makes the (2+1)D pair a little smaller, by less than d²·N_in + t·N_out weights.

# %%
def mid_width(n_in, n_out, t=3, d=3):
    """R(2+1)D intermediate width: the (2+1)D pair holds (at most) the weights of the t x d x d Conv3d."""
    return (t * d * d * n_in * n_out) // (d * d * n_in + t * n_out)


for n_in, n_out in ((64, 64), (1, 16), (16, 32)):
    m = mid_width(n_in, n_out)
    full = nn.Conv3d(n_in, n_out, 3, padding=1, bias=False)                          # 3x3x3
    pair = nn.Sequential(nn.Conv3d(n_in, m, (1, 3, 3), padding=(0, 1, 1), bias=False),  # spatial
                         nn.Conv3d(m, n_out, (3, 1, 1), padding=(1, 0, 0), bias=False))  # temporal
    print(f"{n_in:>2} -> {n_out:<2}  M = {m:<4} 3x3x3 Conv3d: {count_parameters(full):>7,} weights   "
          f"(2+1)D: {count_parameters(pair):>7,} weights")
cases = [(64, 64), (1, 16), (16, 32), (3, 45), (45, 64)]
print("mid_width matches vtlib midplanes:", all(mid_width(a, b) == midplanes(a, b) for a, b in cases))
block = Conv2Plus1d(in_channels=16, out_channels=32)
print("vtlib Conv2Plus1d(16 -> 32): M =", block.mid_channels, "| conv weights:",
      f"{count_parameters(block.spatial) + count_parameters(block.temporal):,}")
print("same output shape as the 3x3x3 Conv3d:",
      block(torch.rand(2, 16, 8, 14, 14)).shape == nn.Conv3d(16, 32, 3, padding=1)(torch.rand(2, 16, 8, 14, 14)).shape)

# %% [markdown]
# At 64 → 64 the two counts are equal; with one input channel (a network's first layer) M is tiny, which
# is why R(2+1)D's stem uses its own widths. (`vtlib.models.cnn_temporal.R2Plus1dCNN` stacks these blocks
# into a small network.)
#
# ## 3. ACS convolutions: a 2D kernel that sees all three axes
#
# A CT volume has three viewing planes. Read as a video (depth = time), they are:
#
# | plane | axes it spans | kernel of a 2D filter placed in it |
# |---|---|---|
# | axial | (H, W): one frame | (1, k, k) |
# | coronal | (D, W): time × width | (k, 1, k) |
# | sagittal | (D, H): time × height | (k, k, 1) |
#
# Yang et al. (IEEE JBHI 2021) keep an ordinary 2D kernel of shape (C_out, C_in, k, k) and **split its
# output channels** into three groups: the first group is used as an axial kernel, the second as a
# coronal one, the third as a sagittal one (equal thirds, the remainder going to the first groups). All
# three read the same input; the outputs are concatenated on channels. The layer holds exactly the
# weights of the 2D layer (so 2D pre-trained weights load unchanged), yet together its output channels
# see all three axes. From scratch, for k = 3 and "same" padding:

# %%
def thirds(c_out):
    """Output channels per plane (axial, coronal, sagittal): equal thirds, remainder to the first."""
    n, r = divmod(c_out, 3)
    return (n + (r > 0), n + (r > 1), n)


def acs_conv(x, weight):
    """x (B, C_in, D, H, W), weight (C_out, C_in, 3, 3) -> (B, C_out, D, H, W)."""
    a, c, s = weight.split(list(thirds(weight.shape[0])), dim=0)
    axial = F.conv3d(x, a.unsqueeze(2), padding=(0, 1, 1))       # kernel (1, 3, 3): within a frame
    coronal = F.conv3d(x, c.unsqueeze(3), padding=(1, 0, 1))     # kernel (3, 1, 3): time x width
    sagittal = F.conv3d(x, s.unsqueeze(4), padding=(1, 1, 0))    # kernel (3, 3, 1): time x height
    return torch.cat([axial, coronal, sagittal], dim=1)


vol = torch.randn(2, 3, 7, 8, 9, generator=torch.Generator().manual_seed(2))   # unequal sizes catch axis mix-ups
acs = ACSConv3d(in_channels=3, out_channels=10, kernel_size=3, padding=1, bias=False)
with torch.no_grad():
    y_mine, y_ref = acs_conv(vol, acs.weight), acs(vol)
print("split of 10 channels:", thirds(10), "| matches vtlib acs_split:",
      all(thirds(n) == acs_split(n) for n in range(1, 40)))
print("output:", tuple(y_mine.shape), "| matches vtlib ACSConv3d:", torch.allclose(y_mine, y_ref, atol=1e-5))
print("2D weights:", tuple(acs.weight.shape), "=", acs.weight.numel(), "parameters, as many as nn.Conv2d(3, 10, 3)")

# %% [markdown]
# Another way to see it: an ACS layer **is** a 3×3×3 convolution whose kernel is zero everywhere except in
# one middle slice, a different slice for each group of output channels. `ACSConv3d.as_conv3d_weight()`
# builds that kernel:

# %%
with torch.no_grad():
    k3 = acs.as_conv3d_weight()                                 # (10, 3, 3, 3, 3), mostly zeros
    same = torch.allclose(F.conv3d(vol, k3, padding=1), y_ref, atol=1e-5)
print("equivalent 3x3x3 kernel:", tuple(k3.shape), f"| non-zero share: {(k3 != 0).float().mean():.3f}",
      "| gives the same output:", same)

# %% [markdown]
# MedMNIST v2's 3D baselines take the small-image (CIFAR-style) ResNet-18 of He et al. (a 3×3 stem with
# stride 1 and no max-pool, widths 64-128-256-512, two basic blocks per stage) and make every convolution
# 3D in one of three ways: full 3×3×3 kernels ("3D"), (1, 3, 3) kernels that never mix slices except
# through the 1×1×1 shortcuts and the final pooling ("2.5D"), or ACS. `vtlib.models.resnet3d` builds all
# three; at the full width they are far too slow for a 2-core CPU, so the course also uses the same
# network at widths 8-16-32-64, and the `cnn` configuration of section 6 keeps one block per stage.

# %%
for label, widths in (("full width 64-512", RESNET18_WIDTHS), ("small 8-64", SMALL_WIDTHS)):
    counts = {conv: count_parameters(resnet18_3d(conv=conv, widths=widths)) for conv in CONVS}
    print(f"ResNet-18, {label:<17}" + "".join(f"  {conv}: {n:>10,}" for conv, n in counts.items()),
          f"| 3D / 2.5D = {counts['3d'] / counts['2.5d']:.2f}")
    print(f"  2.5D and ACS hold the same parameters: {counts['2.5d'] == counts['acs']}")
yardstick = ResNet3D(conv="3d", widths=SMALL_WIDTHS, blocks=(1, 1, 1, 1))
print(f"the sweep's `cnn` (3D, widths 8-64, one block per stage): {count_parameters(yardstick):,} parameters")

# %% [markdown]
# A 3×3×3 kernel holds 27 weights per (input, output) pair and a 2D one 9, so the 3D network is close to
# three times larger; the 1×1×1 shortcuts, BatchNorms and the head keep the ratio a little under 3.
#
# ## 4. When should a CNN combine frames? Karpathy et al.'s fusion variants
#
# Karpathy et al. (CVPR 2014) asked where in a CNN the frames of a clip should meet. Their four answers,
# scaled down in `vtlib.models.fusion.FusionCNN` to one small tower (three 3×3 convolutions with
# BatchNorm, two max-pools that halve each frame's height and width, global average pooling, then a fully connected layer), on 10-frame clips:
#
# | fusion | frames the tower reads | temporal kernel (stride) per conv | where frames meet |
# |---|---|---|---|
# | single | the middle frame | 1, 1, 1 | never |
# | late | the first and the last, one tower each (shared weights) | 1, 1, 1 | in the fully connected layer |
# | early | all 10 at once | 10, 1, 1 | in the first convolution, over the whole clip |
# | slow | all 10 | 4 (2), 2 (2), 2 (2) | gradually: 4 → 6 → 10 frames per output |
#
# Slow fusion's strided temporal kernels cover a clip with no frame left over only for 10, 18, 26, ...
# frames (10 + 8m), so we use 10 frames. On Sports-1M the paper found that motion helped only a little
# (slow fusion 60.9 % video hit@1 against 59.3 % for a single frame <!-- from: paper: Karpathy et al. 2014, Table 1 -->): a sports frame already shows most
# of the class. So test the idea where motion is *all* there is: the synthetic **direction** task of
# notebook 00, where every class-1 clip is a class-0 clip played backwards. Both classes contain the same
# frames, so a model that never compares frames is at chance by construction.
#
# Before running: which of the four can solve it? Each tower here is tiny; the four train in a few
# seconds each (1024 training clips of 10 × 28 × 28, 3 epochs).

# %%
FRAMES = 10
motion = loaders("direction", n_train=1024, size=28, frames=FRAMES, seed=0)   # clips (B, 1, 10, 28, 28)
print("train / val / test clips:", [len(motion[s].dataset) for s in ("train", "val", "test")])
probe = torch.zeros(1, 1, FRAMES, 28, 28)
for fusion in FUSIONS:
    m = FusionCNN(fusion=fusion, frames=FRAMES, width=8)
    print(f"{fusion:<6} parameters {count_parameters(m):>6,} | the tower reads {tuple(m.select_frames(probe).shape)}")

# %%
fusion_cfg = TrainConfig(epochs=3, lr=3e-3, seed=0, progress=False)
fusion_runs = {}
for fusion in FUSIONS:
    seed_everything(0)
    t0 = time.perf_counter()
    result = fit(FusionCNN(fusion=fusion, frames=FRAMES, width=8), motion["train"], motion["val"], fusion_cfg,
                 test_loader=motion["test"])
    fusion_runs[fusion] = (result, time.perf_counter() - t0)

# %% tags=["nbval-ignore-output"]
for fusion, (r, seconds) in fusion_runs.items():
    print(f"{fusion:<6} test AUC {r.test['auc']:.3f}  ACC {r.test['acc']:.3f}  (best epoch {r.best_epoch}, "
          f"{seconds:.1f} s, seed 0, {device})")

# %%
fusion_auc = {fusion: r.test["auc"] for fusion, (r, _) in fusion_runs.items()}
print("single-frame at chance (test AUC < 0.65):", fusion_auc["single"] < 0.65)
print("late fusion at chance too (test AUC < 0.65):", fusion_auc["late"] < 0.65)
print("early fusion sees the motion (test AUC >= 0.9):", fusion_auc["early"] >= 0.9)
print("slow fusion sees the motion (test AUC >= 0.9):", fusion_auc["slow"] >= 0.9)

# %% [markdown]
# Single-frame fusion fails, as it must. Early and slow fusion solve the task: their first convolution
# already reads several frames, so it can respond to an edge that moves one way and not the other.
#
# **Late fusion fails too**, although it sees two frames. Each tower ends in a *global average pool*, so
# what reaches the fully connected layer says what each frame contains, not **where**: the displacement
# between the first and the last frame, the only clue, has been averaged away. Karpathy et al.'s
# AlexNet-style towers flatten their last feature map into the fully connected layers, which keeps the
# layout and lets late fusion compare positions; ours do not, and the synthetic task shows what that
# design choice costs. (Even with
# positions, two frames of a clip on a screen that wraps around are ambiguous when the object has
# travelled about half the width; many frames are not.)
#
# ## 5. Live on AdrenalMNIST3D: per-frame 2D + temporal conv against one slice
#
# Back to real data. AdrenalMNIST3D volumes are binary shapes of adrenal glands, some with hyperplasia
# (a share of 0.218 of the training clips and 0.232 of the test clips <!-- from: notebook 00 -->); depth
# slices are the frames. Two small CNNs, 2 epochs each, one seed:
#
# - `FrameTemporalCNN` of section 1: the 2D stack on all 28 slices, a temporal conv over 3 slices, pooling;
# - `FusionCNN(fusion="single")`: one tower on the middle slice only.
#
# This is a smoke test that both learn something, not a comparison: one seed and two epochs cannot rank
# two models on 298 test clips (section 6 says how large a difference this test set can resolve).

# %%
adrenal = loaders("adrenal", seed=0)                                       # 1188 / 98 / 298 clips (B, 1, 28, 28, 28)
adrenal_models = {"frame + temporal conv": lambda: FrameTemporalCNN(widths=(16, 32), temporal_width=64),
                  "single slice": lambda: FusionCNN(fusion="single", frames=28, width=16)}
for name, build in adrenal_models.items():
    print(f"{name:<22} parameters {count_parameters(build()):>6,}")

# %%
adrenal_cfg = TrainConfig(epochs=2, lr=3e-3, seed=0, progress=False)
adrenal_runs = {}
for name, build in adrenal_models.items():
    seed_everything(0)
    t0 = time.perf_counter()
    result = fit(build(), adrenal["train"], adrenal["val"], adrenal_cfg, test_loader=adrenal["test"])
    adrenal_runs[name] = (result, time.perf_counter() - t0)

# %% tags=["nbval-ignore-output"]
for name, (r, seconds) in adrenal_runs.items():
    print(f"{name:<22} test AUC {r.test['auc']:.3f}  ACC {r.test['acc']:.3f}  (best epoch {r.best_epoch} of 2, "
          f"{seconds:.1f} s, seed 0, {device})")

# %%
print("both CNNs learn something (test AUC > 0.6):", all(r.test["auc"] > 0.6 for r, _ in adrenal_runs.values()))

# %% [markdown]
# The single slice learns something too: part of the signal of this dataset is visible in the middle
# slice alone, so "uses the whole volume" is not the same as "needs the whole volume". The fair
# comparison needs several seeds and the same training budget for every model, which is what the sweeps
# of the next section provide.
#
# ## 6. The CNN yardstick on AdrenalMNIST3D
#
# A transformer recipe is only worth its complexity if it beats a plain CNN trained just as carefully.
# `vtlib.lab` trains both with the **same recipe** (30 epochs, AdamW with warm-up and cosine decay, flips,
# 90° rotations and a random intensity scale of the volume, label smoothing, weights chosen on validation
# AUC, test read once):
#
# | config | model | sweep |
# |---|---|---|
# | `cnn` | the small 3D ResNet of section 3 (widths 8-64, one block per stage), no test-time flips | `baselines` |
# | `recipe` | the course's transformer recipe: a 3D conv tokenizer + ViT, averaged over 8 flips at test time | `recipe` |
# | `no_tta` | the same without the test-time flips, so at the CNN's inference cost per pass | `ingredients` |
# | `patch_tokens` | a plain ViViT with 4×7×7 tubelet tokens instead of the conv tokenizer | `ingredients` |
#
# (also `cnn_25d` and `cnn_acs`, the 2.5D and ACS versions of the `cnn`, if that sweep holds them.)
# The commands, one thread per run:
#
# ```
# python -m vtlib.lab sweep --name baselines --configs cnn cnn_25d cnn_acs --seeds 0 1 2
# python -m vtlib.lab recipe                                        # seeds 0-4
# python -m vtlib.lab sweep --name ingredients --configs no_tta patch_tokens --seeds 0 1 2
# ```
#
# Each run is one file in `results/lab/<sweep>/` holding its row and its per-clip test scores, so the
# intervals below are computed from the stored scores without retraining. First, **what this test set
# can resolve**, said before any comparison:

# %%
y_test = load_split("adrenal", "test")[1]                        # (298,) labels, in the order the sweeps store
print(stats.describe_test_set(y_test))

# %%
WANTED = {"baselines": ("cnn", "cnn_25d", "cnn_acs"), "recipe": ("recipe",), "ingredients": ("no_tta", "patch_tokens")}
ORDER = ["cnn", "cnn_25d", "cnn_acs", "recipe", "no_tta", "patch_tokens"]


def sweep_records(name, configs):
    """The stored runs of ``configs`` in results/lab/<name>/, or [] when that sweep has not been run."""
    try:
        return [r for r in lab.load_sweep(name) if r["row"]["config"] in configs]
    except VtlibError:
        return []


records = [r for name, configs in WANTED.items() for r in sweep_records(name, configs)]
rows = sorted(lab.summarize(records), key=lambda r: ORDER.index(r["config"])) if records else []
for name, configs in WANTED.items():
    have = sorted({r["row"]["config"] for r in records} & set(configs))
    print(f"{name:<12} configs found: {', '.join(have) or 'none yet'}")
print(f"{len(records)} runs in all; every run scored the same test clips in the same order:",
      all(torch.equal(torch.as_tensor(lab.positive_scores(r)[0]), y_test) for r in records))

# %% [markdown]
# The table: mean ± std over seeds, and the **pooled 95 % interval**, which counts both the seed-to-seed
# spread and the test-set noise (a two-level bootstrap: resample test clips, then seeds). Balanced
# accuracy uses the threshold chosen on validation; MFLOPs are per forward pass, and "per clip" multiplies
# by 8 for the configurations that average 8 flips at test time. The published MedMNIST v2 rows follow:
# one run each, no interval.

# %%
def eval_passes(config):
    return 8 if lab.config(config)["tta"] else 1


def table_line(name, seeds, auc, pooled, acc, bal_acc="", params="", mflops="", minutes=""):
    line = f"{name:<18}{seeds:>5}  {auc:<15}{pooled:<17}{acc:>6}{bal_acc:>8}{params:>10}{mflops:>12}{minutes:>9}"
    return line.rstrip()


print(table_line("config", "seeds", "test AUC", "pooled 95 %", "ACC", "bal.ACC", "params", "MFLOPs/clip", "min/seed"))
for r in rows:
    spread = f" ± {r['test_auc_std']:.3f}" if r["seeds"] > 1 else " (1 seed)"
    print(table_line(r["config"], r["seeds"], f"{r['test_auc_mean']:.3f}{spread}",
                     f"[{r['auc_low']:.3f}, {r['auc_high']:.3f}]", f"{r['test_acc_mean']:.3f}",
                     f"{r['test_bal_acc_mean']:.3f}", f"{r['params']:,}",
                     f"{r['mflops'] * eval_passes(r['config']):.1f}", f"{r['train_minutes']:.1f}"))
if not rows:
    print("(no runs stored yet: run the commands above)")
print("published in MedMNIST v2 (full-width networks, 100 epochs, one run each, no interval):")
for method in ("ResNet-18 + 2.5D", "ResNet-18 + 3D", "ResNet-18 + ACS", "ResNet-50 + 3D"):
    auc, acc = MEDMNIST3D[method]["adrenal"]
    print(table_line(method, 1, f"{auc:.3f}", "-", f"{acc:.3f}"))

# %% [markdown]
# Now the comparison that matters: each configuration **minus the CNN**, on the seeds both have, with
# `stats.paired_seeds`. Seed i of one is paired with seed i of the other and both are scored on the same
# resampled test clips, which removes the noise they share. The sentences are computed from the
# intervals:

# %%
by_config = {}
for rec in records:
    by_config.setdefault(rec["row"]["config"], {})[rec["row"]["seed"]] = lab.positive_scores(rec)[1]
differences = {}
if "cnn" not in by_config:
    print("no `cnn` runs stored yet: run python -m vtlib.lab sweep --name baselines --configs cnn --seeds 0 1 2")
for config in ORDER[1:]:
    if config not in by_config or "cnn" not in by_config:
        continue
    seeds = sorted(set(by_config[config]) & set(by_config["cnn"]))
    if not seeds:
        continue
    cmp = stats.paired_seeds(y_test, [by_config[config][s] for s in seeds], [by_config["cnn"][s] for s in seeds])
    differences[config] = cmp
    if cmp.low > 0:
        verdict = f"{config} is better than the CNN on this test set"
    elif cmp.high < 0:
        verdict = f"{config} is worse than the CNN on this test set"
    else:
        verdict = "this test set cannot tell them apart"
    print(f"{config} minus the CNN (seeds {', '.join(map(str, seeds))}): {cmp.diff:+.3f} "
          f"[{cmp.low:+.3f}, {cmp.high:+.3f}]: {verdict}")

# %%
if rows:
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 1.4), gridspec_kw={"wspace": 0.95})
    pooled = [(f"{r['config']} (n={r['seeds']})", stats.Interval(r["test_auc_mean"], r["auc_low"], r["auc_high"], 0.95))
              for r in rows]
    forest_plot(pooled, ax=axes[0], reference=MEDMNIST3D["ResNet-18 + 3D"]["adrenal"][0])
    axes[0].set_title("pooled 95 % interval (dashed: published ResNet-18 + 3D)", fontsize=9)
    if differences:
        forest_plot(list(differences.items()), ax=axes[1], reference=0.0, xlabel="test AUC minus the CNN")
        axes[1].set_title("paired difference against the CNN", fontsize=9)
    else:
        axes[1].axis("off")
    plt.show()

# %% [markdown]
# ### Why our numbers and the published rows may differ
#
# The MedMNIST v2 rows and ours are not the same experiment, so read a gap between them with care:
#
# - **another protocol**: the published networks are full-width ResNets (tens of millions of parameters,
#   section 3) trained for 100 epochs with Adam at a fixed learning rate divided by 10 at 50 % and 75 %,
#   voxels multiplied by a random factor in [0, 1] in training and by 0.5 at evaluation, no flips or
#   rotations. Ours are small networks trained for 30 epochs with the course recipe;
# - **which epoch was kept**: the reference training script once saved its "best" model with
#   `best_model = model`, which stores a reference to the live network, not a copy, so the model reported
#   was really the last epoch's; it was changed to a true copy in 2023, and the paper does not say which
#   version produced its table. `vtlib.train.fit` keeps a true copy of the best-validation weights;
# - **data files**: the paper's runs used the 2021 release of the data; the current `medmnist` 3.x package
#   (and so this course) downloads the 2024 release, the one that added the 64³ versions. We have not
#   compared the two 28³ files byte by byte;
# - **one run, no interval**: each published cell is a single training run. On this test set the seed
#   spread is in the table above: a single run can land anywhere inside an interval like ours.
#
# Their protocol is in `vtlib.lab` too (configs `medmnist_r18_3d`, `medmnist_r18_25d`, `medmnist_r18_acs`:
# full-width ResNet-18, 100 epochs, Adam, the multistep schedule, the ×U(0, 1) / ×0.5 voxel scaling):
#
# ```
# python -m vtlib.lab sweep --name medmnist --configs medmnist_r18_3d medmnist_r18_25d medmnist_r18_acs --seeds 0 1 2
# ```
#
# It reproduces the table's recipe with three seeds and intervals, but not on a laptop. How long would
# it take here? Time two training steps of the full-width 3D ResNet-18 on one thread (the sweep's
# default), on a batch of 8 to keep this cell short, and scale to batch 32 (convolution cost grows about
# linearly with the batch):

# %% tags=["nbval-ignore-output"]
threads = torch.get_num_threads()
torch.set_num_threads(1)
seed_everything(0)
r18 = resnet18_3d(conv="3d")                                     # full width, on the CPU
opt = torch.optim.Adam(r18.parameters(), lr=1e-3)
xb, yb = torch.rand(8, 1, 28, 28, 28), torch.randint(0, 2, (8,))
step_s = []
for _ in range(2):                                               # the first step also warms up
    t0 = time.perf_counter()
    loss = F.cross_entropy(r18(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step_s.append(time.perf_counter() - t0)
torch.set_num_threads(threads)
step32 = min(step_s) * 32 / 8
epoch_min = (math.ceil(1188 / 32) + 1) * step32 / 60          # 38 training steps + about one step of validation
print(f"one step, batch 8: {min(step_s):.1f} s -> batch 32: about {step32:.0f} s on one thread")
print(f"one epoch: about {epoch_min:.0f} min; one 100-epoch run: about {100 * epoch_min / 60:.0f} h")
print(f"3 configs x 3 seeds, two runs at a time on 2 cores: about {4.5 * 100 * epoch_min / 60 / 24:.1f} days "
      "(if every run cost what the 3D one does)")
del r18, opt

# %% [markdown]
# That is why the course's own CNN is the small one, and why its results are files you can read rather
# than a cell you wait for.
#
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb11` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb11.py`; try first.)
#
# 1. **ACS for any kernel and any split.** Section 3 wrote ACS for a 3×3 kernel split in thirds. Write
#    `acs_conv3d(x, weight, split, stride)` for any odd kernel size k, any split `(a, c, s)` of the output
#    channels (say `(2, 2, 1)` for a 5×5 kernel with 5 outputs) and a stride, with padding k // 2 on the
#    axes each kernel spans and none on its unit axis, no bias.
# 2. **Channels-last clips.** Some libraries store clips as `(B, T, H, W, C)`. Write `to_frames(x)`, giving
#    the `(B·T, C, H, W)` frames a `Conv2d` wants (clip 0's frames first), and `from_frames(f, b)`, giving
#    `(B, T, H', W', C')` back for any channel count and frame size.
# 3. **A scrambled clip.** Put the 10 frames of *every* direction clip (train, val and test) in the one
#    fixed order `SCRAMBLE = (3, 7, 0, 9, 5, 1, 8, 2, 6, 4)` with `x[:, :, order]`, train early and slow
#    fusion as in section 4, and return the test AUC. Before you run it, guess: does each still solve the
#    task (test AUC ≥ 0.9)? Put your answers, from your own numbers, in `answers`.

# %%
from vtlib.exercises.nb11 import check_acs_conv, check_channels_last_frames, check_scrambled_fusion


def acs_conv3d(x, weight, split, stride=1):
    """x (B, C_in, D, H, W), weight (C_out, C_in, k, k), split (a, c, s) with a + c + s = C_out
    -> (B, C_out, D', H', W'): ACS convolution, padding k // 2, no bias."""
    raise NotImplementedError


_ = check_acs_conv(acs_conv3d)

# %%
def to_frames(x):
    """(B, T, H, W, C) -> (B*T, C, H, W), clip 0's T frames first."""
    raise NotImplementedError


def from_frames(f, b):
    """(B*T, C, H, W) -> (B, T, H, W, C)."""
    raise NotImplementedError


_ = check_channels_last_frames(to_frames, from_frames)

# %%
def scrambled_test_auc(fusion, order):
    """Train FusionCNN(fusion=fusion, frames=10, width=8) as in section 4 on direction clips whose frames
    are x[:, :, order] in train, val and test alike; return the test AUC (a float)."""
    raise NotImplementedError


answers = {"early": None, "slow": None}       # True or False: does each still reach test AUC >= 0.9?
_ = check_scrambled_fusion(scrambled_test_auc, answers)

# %% [markdown]
# ## Summary
#
# - The classic video CNN runs a 2D CNN on every frame and then a convolution over time. Written right
#   it is two `rearrange` calls: `"b c t h w -> (b t) c h w"` before the 2D stack and
#   `"(b t) c h w -> b c t h w"` after. The widely copied version calls `Conv2d` on the 5-D clip, then
#   `view`s the features to `(B, T, C', H, W)`; patched with `in_channels = T`, it runs, mixes frames like
#   colour channels and slides its "temporal" kernel over the features. A `view` from `(B, C, T, H, W)` to
#   frames is only right when C = 1.
# - The temporal module is a convolution because it is local, shared over time, cheap (linear in T) and
#   knows the order of frames without a position code; attention relates far frames in one layer but
#   needs a position code to know which came first.
# - (2+1)D factors a t×d×d kernel into (1, d, d) and (t, 1, 1) with an intermediate width
#   M = ⌊t d² N_in N_out / (d² N_in + t N_out)⌋, chosen so that the parameters match the full kernel; the
#   gain is the extra nonlinearity, not extra weights.
# - ACS splits a 2D kernel's output channels into axial, coronal and sagittal kernels: a 3D layer with
#   the parameters of a 2D one, equal to a 3×3×3 kernel that is zero outside one middle slice per group.
#   ResNet-18 has about three times the parameters in 3D as in 2.5D or ACS.
# - Where frames meet decides what a CNN can see: on a task where only the direction of motion differs,
#   single-frame fusion is at chance, early and slow fusion solve it, and late fusion over globally pooled
#   towers is at chance too, because pooling removed the positions it needed to compare.
# - On AdrenalMNIST3D, a transformer recipe has to beat a small 3D CNN trained the same way; section 6
#   reads the sweeps and says, with paired intervals, whether this test set can tell them apart. The
#   published MedMNIST v2 rows used another protocol, full-width networks, possibly the last epoch, other
#   data files and one run each.
#
# **Next:** notebook 13 (the ablation lab) builds the statistics used here and the recipe the CNN was measured against; notebook 12 (transfer and features) reuses pre-trained models and their features.
#
# **References**
# - A. Karpathy, G. Toderici, S. Shetty, T. Leung, R. Sukthankar, L. Fei-Fei, Large-scale Video
#   Classification with Convolutional Neural Networks, CVPR 2014 (single-frame, early, late and slow fusion;
#   Sports-1M).
# - D. Tran, H. Wang, L. Torresani, J. Ray, Y. LeCun, M. Paluri, A Closer Look at Spatiotemporal
#   Convolutions for Action Recognition, CVPR 2018 (R(2+1)D; the intermediate width M).
# - J. Yang, X. Huang, Y. He, J. Xu, C. Yang, G. Xu, B. Ni, Reinventing 2D Convolutions for 3D Images,
#   IEEE Journal of Biomedical and Health Informatics 25(8), 2021 (ACS convolutions).
# - J. Yang, R. Shi, D. Wei, Z. Liu, L. Zhao, B. Ke, H. Pfister, B. Ni, MedMNIST v2: A Large-Scale
#   Lightweight Benchmark for 2D and 3D Biomedical Image Classification, Scientific Data 10:41, 2023
#   (the 3D benchmark and its ResNet-18 / ResNet-50 baselines in 2.5D, 3D and ACS form).
# - K. He, X. Zhang, S. Ren, J. Sun, Deep Residual Learning for Image Recognition, CVPR 2016 (ResNet; the
#   small-image variant used by MedMNIST).
# - The MedMNIST experiments repository (`MedMNIST/experiments`, `MedMNIST3D/train_and_eval_pytorch.py`):
#   the training protocol, and the `best_model = model` reference that was later replaced by a copy.
