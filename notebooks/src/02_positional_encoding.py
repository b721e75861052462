# %% [markdown]
# # 02 · Positional encoding
#
# **What you will learn**
# - why a transformer without position codes cannot tell frame order: it is *permutation-equivariant*,
#   and once its tokens are pooled (mean or CLS) the clip vector is *permutation-invariant*;
# - four ways to tell the model where and when a token comes from, each written from scratch and checked
#   against `vtlib.position`: learned embeddings, a fixed 1D sinusoid over the flattened token index
#   (VideoMAE), a factorised 3D sin-cos code (separate frequencies for t, h, w), and separate learned
#   space and time tables (TimeSformer);
# - what these codes look like, as maps of cosine similarity over the (t, h, w) token grid;
# - a small-scale reproduction of TimeSformer's Table 4 (no / space-only / space-time positions) on the
#   synthetic motion task and on AdrenalMNIST3D, and which of the paper's conclusions hold here;
# - how to run a trained model on clips with another number of frames: interpolate or slice the time code.
#
# **Prerequisites:** notebooks 00 (clips, the `direction` task) and 01 (tubelets, token order `(t h w)`).
# **Time:** about 2 minutes on a 2-core CPU (most of it trains five small models).
# **Papers:** Bertasius, Wang & Torresani, *Is Space-Time Attention All You Need for Video Understanding?*
# (TimeSformer), ICML 2021, <https://arxiv.org/abs/2102.05095>; Tong et al., *VideoMAE*, NeurIPS 2022,
# <https://arxiv.org/abs/2203.12602>.

# %% [markdown]
# ## Setup

# %%
import copy
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.block import Transformer
from vtlib.data import make_motion_videos, resize, sample_frames
from vtlib.errors import VtlibError
from vtlib.experiments.common import RESULTS, read_csv
from vtlib.experiments.positions import SETTINGS, build, setting_loaders
from vtlib.models.vivit import ViViT
from vtlib.pooling import ClsToken
from vtlib.position import LearnedPosition, SpaceTimePosition, make_position, sincos_1d, sincos_3d
from vtlib.train import TrainConfig, evaluate, fit
from vtlib.utils import count_parameters, get_device, seed_everything
from vtlib.viz import slider

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
print("vtlib is ready")

# %% [markdown]
# ## 1. Why positions? A transformer cannot see order
#
# Self-attention mixes tokens with weights computed from the tokens themselves; the MLP, the
# LayerNorms and the residual connections act on each token separately. Nothing in a block knows *where*
# a token sits in the sequence. So if you shuffle the input tokens, every block computes exactly the same
# things, just in the shuffled order: the outputs come out **shuffled the same way**. That is
# *permutation equivariance*: `f(x[:, perm]) == f(x)[:, perm]`.
#
# Check it on a small `vtlib.block.Transformer` (2 blocks, width 32) and 12 random tokens.

# %%
encoder = Transformer(dim=32, depth=2, heads=4).eval()
x = torch.randn(2, 12, 32)                                  # (B, N, D)
perm = torch.randperm(12)
with torch.no_grad():
    out, out_shuffled = encoder(x), encoder(x[:, perm])     # (B, N, D) each
print("outputs are shuffled the same way (equivariant):", torch.allclose(out_shuffled, out[:, perm], atol=1e-5))

# %% [markdown]
# A classifier needs one vector per clip. **Mean pooling** averages the output tokens, and an average does
# not care about order: the pooled vector is *permutation-invariant*. A **CLS token** is no different: it is
# prepended at a fixed place and reads the other tokens through attention, which is a weighted sum over
# them, so shuffling the patch tokens leaves its output unchanged.

# %%
cls = ClsToken(dim=32)
with torch.no_grad():
    mean_a, mean_b = out.mean(1), out_shuffled.mean(1)                               # (B, D)
    cls_a = encoder(cls.prepend(x))[:, 0]                                            # (B, D)
    cls_b = encoder(cls.prepend(x[:, perm]))[:, 0]
print("mean-pooled vector unchanged by the shuffle:", torch.allclose(mean_a, mean_b, atol=1e-5))
print("CLS output unchanged by the shuffle:", torch.allclose(cls_a, cls_b, atol=1e-5))

# %% [markdown]
# Add a position code, one vector per *slot* (not per token), and the symmetry is gone: after the shuffle
# a token sits in another slot and receives another code.

# %%
pos_code = torch.randn(1, 12, 32)
with torch.no_grad():
    p_out, p_out_shuffled = encoder(x + pos_code), encoder(x[:, perm] + pos_code)
print("with positions, still equivariant:", torch.allclose(p_out_shuffled, p_out[:, perm], atol=1e-5))
print("with positions, pooled vector unchanged:", torch.allclose(p_out.mean(1), p_out_shuffled.mean(1), atol=1e-5))

# %% [markdown]
# ### What this means for video
#
# Take the `direction` task of notebook 00: label 0 moves left to right, label 1 right to left, and every
# class-1 clip is a class-0 clip played backwards. Play a clip backwards and the label flips, but a model
# blind to frame order gives the *same* answer. Such a model is at chance, whatever its size and however
# long it trains.
#
# Which models are blind depends on what one token sees. Build two untrained ViViTs with **no position
# code** and mean pooling:
#
# - `embed="frame"` with `tubelet=(2, 28, 28)`: keep every 2nd frame (frames 1, 3, ..., 27) and embed each
#   kept frame whole, one token per frame. 14 tokens, and no token sees motion.
# - the course's default `4x7x7` tubelets: each token is a Conv3d over **4 consecutive frames**.
#
# We reverse a clip in two ways: reverse the order of the blocks of frames that make one token (2 frames
# for the first model, 4 for the second; each block keeps its own frame order), or reverse every frame.

# %%
def reverse_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """(B, C, T, H, W): reverse the order of the T/block blocks of frames; frames inside a block keep their order."""
    blocks = rearrange(x, "b c (n s) h w -> b c n s h w", s=block)
    return rearrange(blocks.flip(2), "b c n s h w -> b c (n s) h w")


clips, labels = make_motion_videos(8, "direction", seed=3)           # (8, 1, 28, 28, 28)
torch.manual_seed(0)
frame_model = ViViT(embed="frame", tubelet=(2, 28, 28), dim=48, position="none", pool="mean").eval()
tube_model = ViViT(embed="tubelet", tubelet=(4, 7, 7), dim=48, position="none", pool="mean").eval()
print("frame model token grid (nt, nh, nw):", frame_model.grid, "| tubelet model:", tube_model.grid)
with torch.no_grad():
    same = lambda m, a, b: torch.allclose(m(a), m(b), atol=1e-5)
    print("frame tokens, frame order reversed -> same logits:", same(frame_model, clips, reverse_blocks(clips, 2)))
    print("4x7x7 tubelets, block order reversed -> same logits:", same(tube_model, clips, reverse_blocks(clips, 4)))
    print("4x7x7 tubelets, every frame reversed -> same logits:", same(tube_model, clips, clips.flip(2)))

# %% [markdown]
# The frame-token model without positions gives identical logits for a clip and its reversal: it **cannot**
# learn the direction task. The tubelet model is blind to the order of its tubelets too, but a tubelet
# spans 4 frames and sees the motion inside them. Reversing every frame also reverses the motion inside
# each tubelet, so its logits change, and it *can* learn direction without any position code, from local
# motion alone. Keep this in mind for the experiment in section 4: to test what position codes add, a token
# must hold a single moment in time (tubelet depth 1, or one sampled frame per token).
#
# ## 2. Four position codes, written from scratch
#
# Every code here is a table `pos` of shape `(N, D)`, one row per token slot in `(t h w)` order, added to
# the tokens: `x + pos`. They differ in how the table is made. The running example is the token grid of a
# 28³ clip cut into `4x7x7` tubelets, `(nt, nh, nw) = (7, 4, 4)`, so `N = 112`, at width `D = 48`.

# %%
grid, dim = (7, 4, 4), 48
nt, nh, nw = grid
N = nt * nh * nw
print("grid:", grid, "tokens N:", N, "width D:", dim)

# %% [markdown]
# ### 2.1 Learned: one free vector per token (ViViT, the Keras example, Hugging Face ViViT)
#
# The simplest code is a parameter of shape `(1, N, D)`, drawn small at the start and trained with the
# rest. It can learn anything, but it starts with **no notion of neighbourhood** (slot 5 is no closer to
# slot 6 than to slot 100) and it only exists for the `N` slots it was built for.

# %%
learned = nn.Parameter(torch.zeros(1, N, dim))
nn.init.trunc_normal_(learned, std=0.02)
print("learned table:", tuple(learned.shape), "parameters:", learned.numel())
print("same count as vtlib LearnedPosition:", learned.numel() == count_parameters(LearnedPosition(num_tokens=N, dim=dim)))

# %% [markdown]
# ### 2.2 Fixed 1D sinusoid over the flattened token index (Transformer, VideoMAE)
#
# The code of the original Transformer gives slot `n` the vector
#
# `angle[n, j] = n / 10000^(2·(j // 2) / D)`, channel `j` = `sin(angle)` if `j` is even, `cos(angle)` if odd.
#
# Channel pairs `(2i, 2i+1)` are a point on a circle that turns at frequency `ω_i = 10000^(-2i/D)`: fast for
# the first pairs, very slow for the last. VideoMAE uses this table unchanged for video: it flattens the
# `(t, h, w)` grid into one index `n = t·nh·nw + h·nw + w` and never trains the table.

# %%
def my_sincos_1d(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim): sin on even channels, cos on odd ones (computed in float64)."""
    n = torch.arange(num_positions, dtype=torch.float64)[:, None]      # (N, 1)
    j = torch.arange(dim, dtype=torch.float64)                         # (D,)
    angle = n / 10000 ** (2 * torch.div(j, 2, rounding_mode="floor") / dim)  # (N, D)
    return torch.where(j.remainder(2) == 0, angle.sin(), angle.cos()).float()


table_1d = my_sincos_1d(N, dim)
print("table:", tuple(table_1d.shape))
print("matches vtlib.position.sincos_1d:", torch.allclose(table_1d, sincos_1d(N, dim), atol=1e-6))

# %% [markdown]
# The same table in Hugging Face's VideoMAE (`get_sinusoid_encoding_table`, written with NumPy):

# %%
from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

print("matches Hugging Face VideoMAE:", torch.allclose(table_1d, get_sinusoid_encoding_table(N, dim)[0], atol=1e-6))

# %% [markdown]
# Two properties make the sinusoid attractive. Every row has the same length, `sqrt(D/2)`, since each
# channel pair contributes `sin² + cos² = 1`. And the dot product of two rows depends only on their
# **offset**: `pos[n]·pos[m] = Σ_i cos(ω_i (n − m))`. Attention scores are dot products, so a model can
# read relative positions from this code.

# %%
gram = table_1d @ table_1d.T                                            # (N, N)
print("row length:", round(table_1d.norm(dim=1).mean().item(), 4), "= sqrt(D/2) =", round((dim / 2) ** 0.5, 4))
print("dot products depend only on the offset:",
      all(torch.allclose(gram.diagonal(k)[0].expand(N - k), gram.diagonal(k), atol=1e-4) for k in range(N)))

# %% [markdown]
# ### 2.3 Factorised 3D sin-cos: separate frequencies for t, h and w
#
# Flattening throws away the grid: slot `(t, h, w)` and slot `(t, h, w+1)` are neighbours at offset 1, but
# `(t+1, h, w)` is 16 slots away, so the 1D code calls a step in time much "farther" than a step in width.
# The factorised code splits the width into three equal blocks, `[time | height | width]`, and fills each
# with the 1D code (at width `D/3`) of one coordinate. `D/3` must itself be even (whole sin/cos pairs), so
# `D` must be divisible by 6.

# %%
def my_sincos_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """(nt*nh*nw, dim) in (t h w) order: [1D code of t | of h | of w], each dim // 3 wide."""
    t, h, w = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")   # (nt, nh, nw) each
    blocks = [my_sincos_1d(n, dim // 3)[coord.flatten()] for n, coord in zip(grid, (t, h, w))]
    return torch.cat(blocks, dim=-1)                                            # (N, D)


table_3d = my_sincos_3d(grid, dim)
print("table:", tuple(table_3d.shape))
print("matches vtlib.position.sincos_3d:", torch.allclose(table_3d, sincos_3d(grid, dim), atol=1e-6))

# %% [markdown]
# `vtlib` refuses a width that does not split into three blocks of sin/cos pairs, and says how to fix it:

# %%
try:
    sincos_3d(grid, 64)
except VtlibError as e:
    print(e)

# %% [markdown]
# ### 2.4 Separate learned space and time tables (TimeSformer)
#
# TimeSformer learns a **space** table `(nh·nw, D)`, shared by all frames, and a **time** table `(nt, D)`,
# shared by all patches, and gives token `(t, n)` the sum `time[t] + space[n]`. Fewer parameters, and the
# time table can be stretched to another number of frames on its own (section 5). Dropping the time table
# gives the "space-only" code of the paper's Table 4: every frame gets the same codes.

# %%
def my_spacetime_table(space: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """space (nh*nw, D), time (nt, D) -> (nt*nh*nw, D) in (t h w) order: row t*N + n = time[t] + space[n]."""
    return rearrange(time[:, None, :] + space[None, :, :], "t n d -> (t n) d")


st = SpaceTimePosition(num_frames=nt, num_patches=nh * nw, dim=dim)
table_st = my_spacetime_table(st.space.detach(), st.time.detach())
print("space:", tuple(st.space.shape), "time:", tuple(st.time.shape), "-> table:", tuple(table_st.shape))
print("matches vtlib SpaceTimePosition.table():", torch.allclose(table_st, st.table().detach()))

# %% [markdown]
# All of these are one call to `vtlib.position.make_position(kind, grid, dim)`. The fixed codes are
# buffers (saved with the model, never trained); the others are parameters:

# %%
for kind in ("none", "learned", "sincos1d", "sincos3d", "space", "spacetime"):
    m = make_position(kind, grid, dim)
    buffers = sum(b.numel() for b in m.buffers())
    print(f"{kind:>9}: {type(m).__name__:<17} learned parameters {count_parameters(m):5d}   fixed values {buffers:5d}")

# %% [markdown]
# ## 3. What the codes look like
#
# A position code is useful if nearby slots get similar vectors and far slots different ones (or at least
# distinguishable ones). Pick one token, here `(t, h, w) = (3, 1, 2)`, compute the cosine similarity of its
# code with the code of every slot, and draw it on the grid: one 4×4 map per token-frame.

# %%
QUERY = (3, 1, 2)


def similarity_map(table: torch.Tensor, grid, query=QUERY) -> torch.Tensor:
    """Cosine similarity of slot ``query``'s code with every slot: (N, D) -> (nt, nh, nw)."""
    nt, nh, nw = grid
    q = (query[0] * nh + query[1]) * nw + query[2]                  # flat index in (t h w) order
    sim = F.cosine_similarity(table[q][None], table, dim=-1)        # (N,)
    return sim.reshape(nt, nh, nw)


def plot_similarity(tables: dict, grid, query=QUERY, title=None):
    """One row of nt maps (nh x nw) per table; each row has its own colour scale."""
    nt = grid[0]
    fig, axes = plt.subplots(len(tables), nt, figsize=(1.25 * nt + 1, 1.35 * len(tables)), squeeze=False)
    for i, (row, (name, table)) in enumerate(zip(axes, tables.items())):
        sim = similarity_map(table.detach(), grid, query)
        low = sim.min().item()
        for t, ax in enumerate(row):
            im = ax.imshow(sim[t], vmin=low, vmax=1, cmap="viridis")
            ax.set_xticks([]), ax.set_yticks([])
            if t == query[0]:
                ax.plot(query[2], query[1], "r*", markersize=8)
            if i == 0:
                ax.set_title(f"t={t}", fontsize=9)
        row[0].set_ylabel(name, fontsize=9)
        fig.colorbar(im, ax=list(row), shrink=0.9, pad=0.02)
    if title:
        fig.suptitle(title)
    return fig


torch.manual_seed(0)
fig = plot_similarity({"learned (init)": make_position("learned", grid, dim).pos[0],
                       "sincos1d": table_1d, "sincos3d": table_3d,
                       "space+time (init)": make_position("spacetime", grid, dim).table()},
                      grid, title="similarity of token (3, 1, 2)'s code (star) with every slot")
plt.show()

# %% [markdown]
# How to read it (each row has its own colour scale; the sinusoids are fairly similar everywhere, because
# their slow channel pairs hardly turn over a few dozen slots, so the structure is in the differences):
#
# - **learned, at initialisation**: noise. The token is similar only to itself; any structure must be
#   learned from data.
# - **sincos1d**: similarity falls off along the *flattened* index. The neighbours in width (offset 1) are
#   the most similar, then the neighbours in height (offset 4), and the same patch one token-frame earlier
#   or later (offset 16) less still. Time looks like the "farthest" axis only because it is flattened last.
# - **sincos3d**: a step along t, h or w costs the same, and similarity falls off smoothly along all three axes.
# - **space + time, at initialisation**: slots in the same frame share `time[t]` and slots at the same place
#   share `space[n]`, so the query's frame and its patch in every other frame stand out (about 0.5);
#   the rest is noise.
#
# The numbers behind two of these statements:

# %%
s1, s3 = similarity_map(table_1d, grid), similarity_map(table_3d, grid)
t, h, w = QUERY
print("sincos1d: w-neighbour more similar than h-neighbour, h more than t:",
      bool(s1[t, h, w + 1] > s1[t, h + 1, w] > s1[t + 1, h, w]))
print("sincos3d: one step along t, h or w gives the same similarity:",
      torch.allclose(s3[t + 1, h, w], s3[t, h + 1, w]) and torch.allclose(s3[t, h + 1, w], s3[t, h, w + 1]))

# %% [markdown]
# ### Move the query yourself
#
# One query token shows one slice of the picture. Both sinusoids give similarities that depend only on the
# offset between two slots (section 2.2), so as the query moves the pattern moves with it: on the grid for
# sincos3d, along the flattened index for sincos1d (wrapping from the end of one row of patches to the
# start of the next). `draw(i)` redraws the two maps for token `i` (its flat index in `(t h w)` order), and
# `vtlib.viz.slider` calls it for the token you pick. The slider needs a running kernel: on a page that
# only shows stored outputs it is empty, and the figures after it show two fixed tokens instead.

# %%
def draw(i: int) -> plt.Figure:
    """Similarity maps of token i's sincos1d and sincos3d codes with every slot of the (7, 4, 4) grid."""
    query = tuple(int(c) for c in torch.unravel_index(torch.tensor(i), grid))   # flat index -> (t, h, w)
    return plot_similarity({"sincos1d": table_1d, "sincos3d": table_3d}, grid, query=query,
                           title=f"token {i} = (t, h, w) {query}: cosine similarity with every slot")


# %% tags=["nbval-ignore-output"]
_ = slider(draw, N, "token")

# %% [markdown]
# The same function at the first token, a corner of the grid, and at the last one, the opposite corner.
# Since only the offset counts, and `cos` is even, the second picture is the first one turned around
# (every axis reversed):

# %%
for i in (0, N - 1):
    fig = draw(i)
    plt.show()
corner, last = (0, 0, 0), tuple(n - 1 for n in grid)
print("last token's maps = first token's, every axis reversed:",
      all(torch.allclose(similarity_map(t, grid, corner).flip(0, 1, 2), similarity_map(t, grid, last), atol=1e-5)
          for t in (table_1d, table_3d)))

# %% [markdown]
# ## 4. TimeSformer Table 4 at small scale
#
# TimeSformer (divided space-time attention, ViT-B, ImageNet-21k pre-training, 8 frames) was trained
# with three position codes. Top-1 accuracy (%):
#
# | position code | Kinetics-400 | Something-Something-v2 |
# |---|---|---|
# | none | 75.4 | 45.8 <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 --> |
# | space only | 77.8 | 52.5 <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 --> |
# | space + time | **78.0** | **59.5** <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 --> |
#
# Kinetics is recognisable largely from appearance, and position codes add only 2.6 points there (75.4 → 78.0). <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 -->
# SSv2 labels depend on *how* things move ("pushing something from left to right"), and time codes add 7 points on top
# of space codes. The "none" model is not at chance on SSv2: without any position code TimeSformer is
# blind to frame order (section 1), but many SSv2 classes can be guessed from appearance alone.
#
# Our version uses the small ViViT of this course (width 48, depth 4, 4 heads, mean pooling; width 48
# so that the sin-cos 3D code fits) in three settings:
#
# - **direction-frame**: the `direction` task, one token per sampled frame (`embed="frame"`,
#   `tubelet=(2, 28, 28)`: frames 1, 3, ..., 27, each embedded whole: 14 tokens). No token sees motion, so
#   order can only come from positions. "Space-only" here is a single learned vector added to every token,
#   since a frame is one patch; either way it is the same for every frame. This column also has the
#   fixed sin-cos 3D code. 4096 training clips, 8 epochs.
# - **direction-tubelet**: the same task with the default `4x7x7` tubelets (112 tokens), which see motion
#   inside each tubelet (section 1). 1024 clips, 3 epochs.
# - **adrenal**: AdrenalMNIST3D at 28³, `4x7x7` tubelets, 6 epochs. Nothing suggests that this label
#   depends on slice order as such (in notebook 00 the gland's volume alone gave test AUC 0.69 <!-- from: notebook 00 -->).
#
# The full sweep, three seeds per cell, is a command: 27 runs, whose median took 145.5 s <!-- from: results/positions.csv -->
# on one CPU thread, so plan for about an hour:
#
# ```
# python -m vtlib.experiments.positions
# ```
#
# It writes `results/positions.csv` (one row per seed: test AUC and ACC of the weights chosen on the
# validation split) and `results/positions_summary.csv`. Here is the summary, test AUC mean ± std over
# the seeds:

# %%
summary_path = RESULTS / "positions_summary.csv"
sweep = {}
if summary_path.exists():
    for r in read_csv(summary_path):
        setting, position = r["config"].split("/")
        sweep[setting, position] = (float(r["test_auc_mean"]), float(r["test_auc_std"]), int(r["n"]))
    positions = ["none", "space", "spacetime", "sincos3d"]
    print(f"{'position':>10}" + "".join(f"{s:>22}" for s in SETTINGS))
    for p in positions:
        cells = [f"{sweep[s, p][0]:.3f} ± {sweep[s, p][1]:.3f} (n={sweep[s, p][2]})" if (s, p) in sweep else "-"
                 for s in SETTINGS]
        print(f"{p:>10}" + "".join(f"{c:>22}" for c in cells))
else:
    print("results/positions_summary.csv not found: run `python -m vtlib.experiments.positions` to make it.")

# %% [markdown]
# The checks below read the file (they print `False` if it is missing):

# %%
auc = lambda s, p: sweep.get((s, p), (float("nan"),))[0]
print("direction-frame: none and space within 0.05 of chance:",
      abs(auc("direction-frame", "none") - 0.5) < 0.05 and abs(auc("direction-frame", "space") - 0.5) < 0.05)
print("direction-frame: space+time solves the task (AUC > 0.95):", auc("direction-frame", "spacetime") > 0.95)
print("direction-tubelet: no positions at all already solves it (AUC > 0.95):", auc("direction-tubelet", "none") > 0.95)
adrenal_aucs = [auc("adrenal", p) for p in ("none", "space", "spacetime")]
print("adrenal: the three codes within 0.05 of each other:", max(adrenal_aucs) - min(adrenal_aucs) < 0.05)

# %% [markdown]
# **What the sweep shows** (3 seeds, CPU, one thread; epochs as listed above):
#
# - **direction-frame.** No code: 0.500 ± 0.004. Space-only: 0.503 ± 0.006. Both are at chance for every
#   seed, as section 1 says they must be. Space + time: 1.000 ± 0.000, and the fixed sin-cos 3D code
#   gets 1.000 ± 0.000 too. A fixed code with nothing to learn orders the frames just as well.
# - **direction-tubelet.** No code: 1.000 ± 0.000, after a single epoch. With 4-frame tubelets, "no
#   position code" does *not* mean "blind to time", because each token sees motion. (In the CSV some of
#   these runs show ACC 0.5 next to AUC 1.0. Selection keeps the first epoch with the best validation AUC,
#   and at epoch 1 the scores already rank every clip correctly but are not yet on the right side of 0.5.
#   That is why this table shows AUC.)
# - **adrenal.** No code 0.784 ± 0.028, space-only 0.807 ± 0.017, space + time 0.774 ± 0.015. All three
#   means lie between 0.774 and 0.807, a range of one to two seed standard deviations with 3 seeds and a
#   298-clip test set <!-- from: notebook 00 -->. There is no reliable ranking.
#
# **Which of the paper's conclusions hold here.**
#
# - *A time code is what lets the model use frame order* (SSv2: 52.5 → 59.5 <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 -->): **holds**, in the most
#   extreme form. Our task is pure order, so the gap is 0.5 → 1.0 rather than 7 points.
# - *Space-only beats no code* (both datasets in the paper): **does not hold on direction-frame**. It cannot:
#   a space code is the same for every frame, and here a frame is one token. On AdrenalMNIST3D space-only
#   has the highest mean, but by less than the seed spread. Not shown.
# - *On appearance-driven data the code matters little* (K400: 2.6 points in all <!-- from: paper: TimeSformer (Bertasius et al. 2021), Table 4 -->): **consistent** with
#   AdrenalMNIST3D, where no code is within noise of the others.
# - **With the test set's own noise counted** (notebook 13: approximate 95 % intervals of the paired difference; these sweeps kept per-seed AUCs, not per-clip scores): space-only minus no code +0.023 [-0.050, +0.096], not resolved; space + time minus no code -0.010 [-0.087, +0.066], not resolved. <!-- from: notebook 13 -->
#   Gaps of this size are below what 298 test clips can resolve.
# - Not comparable: the paper trains an ImageNet-pre-trained ViT-B with divided attention on hundreds of
#   thousands of videos and reports top-1 accuracy. We train ViViTs of 122,738 to 151,682 parameters <!-- from: results/positions.csv --> from
#   scratch on 1-4 thousand clips and report AUC.
#
# ### A live, smaller version
#
# Now re-run one seed of the direction-frame column here (a minute or two on a 2-core CPU). The
# functions `build` and `setting_loaders` from `vtlib.experiments.positions` build exactly the models and
# data of the sweep.

# %%
data = setting_loaders("direction-frame")
x_test, y_test = data["test"].dataset.tensors
print("train clips:", len(data["train"].dataset), "| test clips:", tuple(x_test.shape))
cfg = TrainConfig(epochs=SETTINGS["direction-frame"]["epochs"], lr=1e-3, seed=0)
live = {}
for position in ("none", "space", "spacetime"):
    seed_everything(0)
    live[position] = fit(build("direction-frame", position), data["train"], data["val"], cfg, test_loader=data["test"])

# %% tags=["nbval-ignore-output"]
for position, r in live.items():
    print(f"{position:>9}: best epoch {r.best_epoch}  val AUC {r.best_val['auc']:.3f}  "
          f"test AUC {r.test['auc']:.3f}  ACC {r.test['acc']:.3f}   (seed 0, {cfg.epochs} epochs, {device})")

# %%
print("none at chance (|AUC - 0.5| < 0.1):", abs(live["none"].test["auc"] - 0.5) < 0.1)
print("space at chance (|AUC - 0.5| < 0.1):", abs(live["space"].test["auc"] - 0.5) < 0.1)
print("space+time solves it (AUC > 0.9):", live["spacetime"].test["auc"] > 0.9)

# %% [markdown]
# On this CPU the three live runs reproduce the sweep's seed-0 rows (the same code, data and seed). On
# another device the numbers can move a little, but the verdicts above should not.
#
# The two models at chance are not unlucky: they are *exactly* invariant to the order of the frames they
# see, trained or not. Reversing the frame order of every test clip leaves their logits unchanged, while
# the space-time model's prediction flips.

# %%
x_rev = reverse_blocks(x_test[:64], 2)            # the 14 kept frames in reverse order
for position, r in live.items():
    m = r.model.eval().cpu()
    with torch.no_grad():
        a, b = m(x_test[:64]), m(x_rev)
    flipped = (a.argmax(1) != b.argmax(1)).float().mean().item()
    print(f"{position:>9}: same logits after reversal: {torch.allclose(a, b, atol=1e-4)}"
          f" | predictions flipped on more than 90% of clips: {flipped > 0.9}")

# %% [markdown]
# What did the trained time table learn? Its 14 rows are the codes of the 14 kept frames. At
# initialisation they are unrelated (similarity near 0 off the diagonal). After training (seed 0, CPU),
# the first half of the frames share one direction and the second half the opposite one, with a short
# switch in the middle. The table has become a coarse clock that tells "early" from "late", which is all
# this task needs. It is not a fine-grained ordering.

# %%
time_table = live["spacetime"].model.pos.time.detach()              # (14, D)
seed_everything(0)
init_table = build("direction-frame", "spacetime").pos.time.detach()  # the same run's initial table
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for ax, (name, tab) in zip(axes, {"time table at init": init_table, "after training": time_table}.items()):
    sim = F.cosine_similarity(tab[:, None], tab[None], dim=-1)
    im = ax.imshow(sim, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("kept frame"), ax.set_ylabel("kept frame")
fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")
plt.show()

# %% [markdown]
# ### The same on AdrenalMNIST3D
#
# One seed each of "none" and "space + time" with 4x7x7 tubelets, 6 epochs (about a minute), then the
# learned space and time tables of the second model on the (7, 4, 4) grid.

# %%
adrenal = setting_loaders("adrenal")
cfg_adrenal = TrainConfig(epochs=SETTINGS["adrenal"]["epochs"], lr=1e-3, seed=0)
live_adrenal = {}
for position in ("none", "spacetime"):
    seed_everything(0)
    live_adrenal[position] = fit(build("adrenal", position), adrenal["train"], adrenal["val"], cfg_adrenal,
                                 test_loader=adrenal["test"])

# %% tags=["nbval-ignore-output"]
for position, r in live_adrenal.items():
    print(f"{position:>9}: best epoch {r.best_epoch}  val AUC {r.best_val['auc']:.3f}  "
          f"test AUC {r.test['auc']:.3f}  ACC {r.test['acc']:.3f}   (seed 0, {cfg_adrenal.epochs} epochs, {device})")

# %%
print("both learn something (test AUC > 0.65):", all(r.test["auc"] > 0.65 for r in live_adrenal.values()))

# %% [markdown]
# The trained space + time code of the second model next to its own initial values (the same seed rebuilds
# the same initial model), and how far the two tables moved:

# %%
seed_everything(0)
pos_init = build("adrenal", "spacetime").pos                       # the initial tables of that run
pos_adrenal = live_adrenal["spacetime"].model.pos.cpu()
fig = plot_similarity({"trained": pos_adrenal.table(), "initial": pos_init.table()}, grid,
                      title="AdrenalMNIST3D: space+time code of token (3, 1, 2), trained and initial")
plt.show()

# %% tags=["nbval-ignore-output"]
for name in ("space", "time"):
    before, after = getattr(pos_init, name).detach(), getattr(pos_adrenal, name).detach()
    print(f"{name} table moved by {((after - before).norm() / before.norm()).item():.0%} of its initial norm")

# %%
moved = [((getattr(pos_adrenal, n) - getattr(pos_init, n)).norm() / getattr(pos_init, n).norm()).item()
         for n in ("space", "time")]
print("both tables were trained (moved by more than 5%):", min(moved) > 0.05)

# %% [markdown]
# On AdrenalMNIST3D (seed 0, 6 epochs, CPU) the sweep's seed-0 rows give test AUC
# 0.8124 without a position code and 0.7669 with space + time <!-- from: results/positions.csv -->, and the
# live run above matches them to about the third decimal (the sweep runs on one thread). So this seed favours "no code", while seeds 1 and 2 of the sweep favour
# space + time by less than 0.01 (see the CSV): one run is not a comparison. The tables did train: by the
# selected epoch (3) the space table had moved by 39 % and the time table by 37 % of its initial norm. But the
# similarity map is still dominated by the structure of the sum `time[t] + space[n]` (same frame, same
# patch), and no clear neighbourhood structure has appeared after this short training.
#
# ## 5. Running a model on another number of frames
#
# A position table has one row per slot, so a model trained on 28-frame clips has codes for exactly the
# token-frames of a 28-frame clip. Give it 56 frames (a clip sampled twice as densely) or 14 frames (every
# second frame) and the tokenizer happily makes more or fewer tokens, but there are no codes for them.
# `ViViT` checks the clip size and tells you so:

# %%
model = live["spacetime"].model.eval().cpu()
x56 = resize(x_test, 28, frames=56)                 # (N, 1, 56, 28, 28): time upsampled, same motion
x14 = sample_frames(x_test, 14)                      # (N, 1, 14, 28, 28): every second frame
print("clips:", tuple(x_test.shape[2:]), tuple(x56.shape[2:]), tuple(x14.shape[2:]))
try:
    model(x56[:2])
except VtlibError as e:
    print(e)

# %% [markdown]
# Two standard fixes touch only the **time** part of the code:
#
# - **interpolate** the table along time to the new number of token-frames (TimeSformer and Hugging Face's
#   port do this for their time embeddings). Row `k` of the new table is read at the same *relative* time
#   as before: first and last rows stay in place.
# - **slice**: keep the first `nt'` rows (lucidrains' `vivit.py` does this). Only possible for fewer frames,
#   and it gives the short clip the codes of the *beginning* of a long one.
#
# The third, often the best, is to leave the model alone and resample the clip back to 28 frames.
#
# `vtlib.position.resize_time` does the first two on any `(T, N, D)` table, and `SpaceTimePosition` and
# `LearnedPosition` have `.with_frames(T')`. To move the whole model, copy it and swap in a new video size
# and position module:

# %%
def for_frames(model: ViViT, frames: int, mode: str = "interpolate") -> ViViT:
    """A copy of ``model`` for clips of ``frames`` frames; the time code is resized with ``mode``."""
    new = copy.deepcopy(model)
    new.video_shape = (frames, *model.video_shape[1:])
    new.grid = new.embed.grid(new.video_shape)          # (nt', nh, nw) for the new clip length
    new.pos = model.pos.with_frames(new.grid[0], mode)  # time table (nt, D) -> (nt', D)
    return new


m56, m14 = for_frames(model, 56), for_frames(model, 14)
m14_slice = for_frames(model, 14, mode="slice")
for name, m, clip in (("28 frames", model, x_test), ("56 frames", m56, x56), ("14 frames", m14, x14)):
    with torch.no_grad():
        tokens = m.embed(clip[:2])
    print(f"{name}: grid {m.grid}, tokens {tuple(tokens.shape)}, time table {tuple(m.pos.time.shape)}, "
          f"full table {tuple(m.pos.table().shape)}")
try:
    for_frames(model, 56, mode="slice")
except VtlibError as e:
    print(e)

# %% [markdown]
# Interpolation keeps the end points: the first and last rows of the 28-row table are the first and last
# rows of the trained 14-row table.

# %%
print("end rows kept:", torch.equal(m56.pos.time[[0, -1]], model.pos.time[[0, -1]]))
print("slice keeps the first 7 rows:", torch.equal(m14_slice.pos.time, model.pos.time[:7]))

# %% [markdown]
# Now evaluate the same trained weights on the test clips at each length, plus two controls: the clips
# resampled back to 28 frames (the model sees what it was trained on), and the trained table played
# **backwards** in time, which should turn the model's answers around if it really reads time from the code.

# %%
def test_auc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    loader = DataLoader(TensorDataset(x, y), batch_size=128)
    return evaluate(model, loader, "binary-class", device="cpu")["auc"]


reversed_table = copy.deepcopy(model)
reversed_table.pos.time.data = model.pos.time.data.flip(0)
runs = {
    "28 frames (trained length)": test_auc(model, x_test, y_test),
    "56 frames, time code interpolated": test_auc(m56, x56, y_test),
    "56 frames resampled to 28": test_auc(model, resize(x56, 28, frames=28), y_test),
    "14 frames, time code interpolated": test_auc(m14, x14, y_test),
    "14 frames, time code sliced": test_auc(m14_slice, x14, y_test),
    "14 frames resampled to 28": test_auc(model, resize(x14, 28, frames=28), y_test),
    "28 frames, time code reversed": test_auc(reversed_table, x_test, y_test),
}

# %% tags=["nbval-ignore-output"]
for name, a in runs.items():
    print(f"{name:>36}: test AUC {a:.3f}")

# %%
print("interpolated code works on 56 frames (AUC > 0.9):", runs["56 frames, time code interpolated"] > 0.9)
print("interpolated code works on 14 frames (AUC > 0.9):", runs["14 frames, time code interpolated"] > 0.9)
print("reversed time code turns the answers around (AUC < 0.1):", runs["28 frames, time code reversed"] < 0.1)

# %% [markdown]
# **What this shows** (seed-0 model of the live run, CPU): on 56-frame clips with the time code
# interpolated, and on 14-frame clips interpolated, the test AUC stays at 1.000. Slicing the code for 14
# frames gives clearly less (the "sliced" row above), and how much less varies from run to run. Resampling the clips back to 28 frames gives 1.000, and playing the trained table
# backwards gives 0.000: the model reads "earlier" and "later" from the code and from nothing else.
#
# This is an easy case. The task needs only the order of the frames, and the learned clock runs from
# early to late (see its similarity map above). Any resizing that keeps the whole clock keeps that
# order. The sliced code gives all 7 frames codes from the "early" half of the clock, whose rows are much
# alike, so the model has less to read the order from, and that costs accuracy. What this does not show: on real video, changing the frame count also changes what one token
# sees (motion per step, or the detail per tubelet). Interpolating the code does not undo that, and the
# fine-tuning that papers do after resizing is usually needed.
#
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb02` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb02.py`; try first.)
#
# 1. **A 2D code for one frame.** An image model has an `(nh, nw)` grid of patches and no time axis. Write
#    `sincos_2d(grid_hw, dim)`: the `(nh·nw, D)` table in `(h w)` order whose first `D/2` channels are the 1D
#    sinusoid (`sincos_1d`, at width `D/2`) of the row `h` and whose last `D/2` channels are that of the
#    column `w` (`D` divisible by 4).
# 2. **Relative offsets as a matrix.** Section 2.2 showed that dot products of sinusoid rows depend only on
#    the offset. A stronger statement holds: moving `k` slots is one fixed linear map. Write
#    `shift_matrix(k, dim)`, the `(D, D)` matrix `R` with `pos[n + k] = R @ pos[n]` for every row `n` of
#    `sincos_1d(·, dim)`: one 2×2 block per channel pair, zeros elsewhere. Check it on `table_1d`
#    yourself: `table_1d[k:]` should equal `table_1d[:-k] @ R.T`.
# 3. **Resizing a time table by hand.** Write `interpolate_time(time, new_frames)`: a `(T, D)` table to
#    `(T', D)` by linear interpolation, first and last rows kept, as `resize_time` does in section 5, but
#    without `F.interpolate`: new row `k` reads the old table at the real position `k·(T − 1)/(T' − 1)`.
# 4. **Parameters of three layouts.** Write `position_params(frames, size, tubelet, dim)` returning the
#    learned parameters `(joint, space_time, axial)` of the position code for `frames × size × size` clips
#    cut into `tubelet = (kt, kh, kw)` tubelets: one vector per token, TimeSformer's space + time tables,
#    and an *axial* code that learns three tables, for t, h and w, and adds one row of each to a token.
#    Then print the three counts for 16-frame 224² clips cut into 2×16×16 tubelets at width 768.
# 5. **Which models can never learn direction? (an experiment).** Write `order_sensitive(model, clips,
#    block)`: whether `model`'s logits change when the order of the blocks of `block` frames of `clips` is
#    reversed (use `reverse_blocks` from section 1, and a tolerance: rounding is not a change). Run it on
#    `frame_model(position, pool)`, the untrained frame-token ViViT of sections 1 and 4, for every position
#    code in `POSITIONS` and both pools, on the clips below with `block=2`. Then set `blind` to the set of
#    `(position, pool)` pairs whose model stays blind to frame order, so can never learn the direction
#    task, however long it trains. Before you run it, predict: does a CLS token help?

# %%
from vtlib.exercises.nb02 import check_interpolate_time, check_position_params, check_shift_matrix, check_sincos_2d


def sincos_2d(grid_hw: tuple[int, int], dim: int) -> torch.Tensor:
    """(nh*nw, dim) in (h w) order: [1D code of h | 1D code of w], each dim // 2 channels wide."""
    raise NotImplementedError


_ = check_sincos_2d(sincos_2d)

# %%
def shift_matrix(k: int, dim: int) -> torch.Tensor:
    """(dim, dim) matrix R with sincos_1d(., dim)[n + k] = R @ sincos_1d(., dim)[n]."""
    raise NotImplementedError


_ = check_shift_matrix(shift_matrix)

# %%
def interpolate_time(time: torch.Tensor, new_frames: int) -> torch.Tensor:
    """(T, D) -> (new_frames, D): linear in time, first and last rows kept, no F.interpolate."""
    raise NotImplementedError


_ = check_interpolate_time(interpolate_time)

# %%
def position_params(frames: int, size: int, tubelet: tuple[int, int, int], dim: int) -> tuple[int, int, int]:
    """(joint, space_time, axial): learned parameters of three position layouts for this clip and tubelet."""
    raise NotImplementedError


_ = check_position_params(position_params)

# %%
from vtlib.exercises.nb02 import POSITIONS, check_order_blindness, frame_model


def order_sensitive(model: nn.Module, clips: torch.Tensor, block: int) -> bool:
    """True if reversing the order of the blocks of `block` frames of clips (B, C, T, H, W) changes the logits."""
    raise NotImplementedError


order_clips, _ = make_motion_videos(8, "direction", seed=3)        # (8, 1, 28, 28, 28)
print("position codes:", ", ".join(POSITIONS), "| pools: mean, cls")
# try: order_sensitive(frame_model("none", "mean"), order_clips, 2)
blind = None                                                       # a set of (position, pool) pairs
_ = check_order_blindness(order_sensitive, blind)

# %% [markdown]
# ## Summary
#
# - Without position codes a transformer is permutation-equivariant, and a mean- or CLS-pooled clip vector
#   is permutation-invariant: a model whose tokens each hold one frame cannot tell a clip from its reversal.
#   Tubelets that span several frames are the exception: they see motion inside themselves.
# - Codes: learned per token (flexible, no built-in neighbourhood, fixed size); 1D sinusoid over the
#   flattened index (fixed, relative offsets in dot products, but time is "far" only because it is
#   flattened last); factorised 3D sin-cos (one block of frequencies per axis, `D` divisible by 6);
#   separate learned space and time tables (fewer parameters, time can be resized alone).
# - TimeSformer Table 4 at small scale (3 seeds, CPU). On the motion task with one token per frame, no code
#   and space-only codes are at chance (0.500, 0.503) and space + time solves it (1.000), as does a fixed
#   sin-cos code. With 4x7x7 tubelets no code at all already solves it: tubelets see motion. On
#   AdrenalMNIST3D the three codes are within seed noise (0.77-0.81 AUC). The paper's "time codes matter
#   for motion" holds. Its "space-only beats none" is not reproduced here.
# - A model trained on one clip length runs on another once its time code is resized: interpolate
#   (any length) or slice (shorter only), or resample the clip to the trained length.
#
# **Next:** notebook 03 compares the ways to turn tokens into one clip vector: CLS, mean and attention pooling.
#
# **References**
# - G. Bertasius, H. Wang, L. Torresani. Is Space-Time Attention All You Need for Video Understanding?
#   ICML 2021 (TimeSformer; Table 4). Code: `facebookresearch/TimeSformer`.
# - Z. Tong et al. VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video
#   Pre-Training. NeurIPS 2022 (fixed sinusoid over the flattened token index).
# - A. Arnab et al. ViViT: A Video Vision Transformer. ICCV 2021 (learned position embedding).
# - A. Vaswani et al. Attention Is All You Need. NeurIPS 2017 (the sinusoid).
# - Hugging Face `transformers`: `models/videomae/modeling_videomae.py` (`get_sinusoid_encoding_table`),
#   `models/timesformer/modeling_timesformer.py` (time embeddings interpolated to other lengths);
#   `lucidrains/vit-pytorch` `vivit.py` (position table sliced for fewer frames).
