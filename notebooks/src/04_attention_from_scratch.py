# %% [markdown]
# # 04 · Attention from scratch
#
# **What you will learn**
# - scaled dot-product attention, written out in a few lines of einops, and why the scores are divided by √d;
# - attention masks for video: a **padding** mask for shorter clips, a **causal** mask, and a
#   **same-frame** mask that turns joint space-time attention into space-only attention
#   (the bridge to ViViT's factorised models and TimeSformer);
# - multi-head attention, checked against `torch.nn.functional.scaled_dot_product_attention`,
#   `torch.nn.MultiheadAttention` (same weights) and `vtlib.attention`, with the two mask conventions
#   that trip people up;
# - the pre-norm transformer block (LayerNorm, attention, GELU MLP, residuals, stochastic depth),
#   built by hand and checked against `vtlib.block.Block`;
# - what attention costs: FLOP and memory formulas in tokens N and width D, checked against a measured
#   FLOP count, and the point where the N² term takes over on MedMNIST clips;
# - what the CLS token of a small trained ViViT looks at, over (t, h, w).
#
# **Prerequisites:** notebooks 01 (tubelet tokens, the (t h w) token order) and 03 (the CLS token).
# Matrix products and softmax.
# **Time:** under a minute on a 2-core CPU.
# **Papers:** Vaswani et al., *Attention is all you need* (2017), <https://arxiv.org/abs/1706.03762>;
# Arnab et al., *ViViT* (ICCV 2021), <https://arxiv.org/abs/2103.15691>.

# %% [markdown]
# ## Setup
#
# The sections that build and compare attention use tiny tensors on the CPU, so their checks print
# the same on every machine. Only the training in section 7 uses `device`.

# %%
import math
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from einops import einsum, rearrange, reduce, repeat
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vtlib.attention import MultiHeadAttention, attention_explicit, causal_mask, key_mask, record_attention
from vtlib.block import Block, drop_path_rates
from vtlib.cost import attention_flops, attention_memory_bytes, block_flops, measure_flops
from vtlib.experiments.common import loaders
from vtlib.models.vivit import ViViT
from vtlib.tokens import token_grid
from vtlib.train import TrainConfig, fit
from vtlib.utils import count_parameters, get_device, seed_everything

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
print("vtlib is ready")

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# A video transformer turns a clip into N tokens, one vector of width D per tubelet (notebook 01).
# Attention lets every token gather information from every other token. Each token plays three roles:
#
# - a **query** q: what am I looking for?
# - a **key** k: what do I offer to a query?
# - a **value** v: what do I hand over if I am chosen?
#
# Query i scores key j with the dot product q_i · k_j. A softmax over j turns the N scores of query i
# into N weights that are positive and sum to 1, and the output of token i is the weighted average of
# the values:
#
# $$\mathrm{attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$
#
# Shapes: Q is (N_q, d), K is (N_k, d), V is (N_k, d_v). The score matrix is (N_q, N_k): one row per
# query. That matrix is where the cost of attention comes from (section 5).
#
# Written out with `einops.einsum`, whose strings name every axis. The `...` stands for any leading
# axes (batch, heads), so the same function serves one head or many.

# %%
def attention(q, k, v, mask=None):
    """q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv); mask bool, True = may attend.

    Returns out (..., Nq, dv) and the weights (..., Nq, Nk)."""
    d = q.shape[-1]
    scores = einsum(q, k, "... i d, ... j d -> ... i j") / math.sqrt(d)   # (..., Nq, Nk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))                 # blocked pairs: weight 0
    weights = scores.softmax(dim=-1)                                       # each row sums to 1
    out = einsum(weights, v, "... i j, ... j e -> ... i e")               # (..., Nq, dv)
    return out, weights

# %% [markdown]
# Try it on the token count of a 28³ clip cut into 4×7×7 tubelets: N = 7·4·4 = 112 tokens, here
# with 2 clips, 4 heads and d = 16 features per head. PyTorch's own
# `F.scaled_dot_product_attention` (SDPA) and the library's `vtlib.attention.attention_explicit`
# must give the same output.

# %%
g = torch.Generator().manual_seed(0)
q, k, v = torch.randn(3, 2, 4, 112, 16, generator=g)       # each (B=2, heads=4, N=112, d=16)
out, weights = attention(q, k, v)
print("out", tuple(out.shape), "weights", tuple(weights.shape))
print("each row of weights sums to 1:", torch.allclose(weights.sum(-1), torch.ones(2, 4, 112)))
print("matches F.scaled_dot_product_attention:",
      torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5))
print("matches vtlib.attention.attention_explicit:", torch.allclose(out, attention_explicit(q, k, v)[0], atol=1e-6))

# %% [markdown]
# **Why divide by √d?** If the entries of q and k are independent with mean 0 and variance 1, the dot
# product q · k is a sum of d such products and has variance d. At d = 64 the raw scores spread over
# ±8 and more, the softmax puts almost all weight on one key, and its gradient nearly vanishes.
# Dividing by √d brings the spread back to about 1, whatever the head width.

# %%
d = 64
qs, ks = torch.randn(2, 1000, d, generator=g)
raw = qs @ ks.T                                            # (1000, 1000) unscaled scores
print("std of raw scores close to sqrt(d) = 8:", abs(raw.std().item() / math.sqrt(d) - 1) < 0.1)
print("std of scaled scores close to 1:", abs((raw / math.sqrt(d)).std().item() - 1) < 0.1)
top_raw = raw.softmax(-1).amax(-1).mean().item()
top_scaled = (raw / math.sqrt(d)).softmax(-1).amax(-1).mean().item()
print("unscaled: average largest weight > 0.5:", top_raw > 0.5)
print("scaled:   average largest weight < 0.05:", top_scaled < 0.05)

# %% [markdown]
# ## 2. Masks: who may attend to whom
#
# A mask is an (N_q, N_k) table of booleans. We use SDPA's convention: **True = this query may attend
# to this key**. Blocked scores become −∞ before the softmax, so their weight is exactly 0 and the
# remaining weights still sum to 1. A mask broadcasts over leading axes: (N, N) for every clip and
# head, (B, 1, 1, N) for one set of keys per clip.
#
# Three masks matter for video. To see them, take a toy clip of 3 token-frames of 2×2 tokens,
# N = 12, in the course's (t h w) order: tokens 0-3 are frame 0, tokens 4-7 frame 1, and so on.
# Because the order is time-major, the frame of token i is simply i // (h·w).

# %%
def frame_index(grid):
    """(nt, nh, nw) -> (N,) frame of each token, tokens in (t h w) order."""
    nt, nh, nw = grid
    return repeat(torch.arange(nt), "t -> (t s)", s=nh * nw)


def same_frame_mask(grid):
    """(N, N) bool: True where query and key lie in the same token-frame."""
    f = frame_index(grid)
    return f[:, None] == f[None, :]


def padding_mask(grid, frames_real):
    """(B, 1, 1, N) bool: keys of padded frames are blocked; frames_real[b] = real token-frames of clip b."""
    f = frame_index(grid)                                           # (N,)
    keep = f[None, :] < torch.as_tensor(frames_real)[:, None]       # (B, N), True = real token
    return rearrange(keep, "b n -> b 1 1 n")


toy = (3, 2, 2)
n_toy = math.prod(toy)
masks = {"causal": torch.ones(n_toy, n_toy, dtype=torch.bool).tril(),
         "padding (2 of 3 frames real)": padding_mask(toy, [2])[0, 0].expand(n_toy, n_toy),
         "same frame": same_frame_mask(toy)}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, (name, m) in zip(axes, masks.items()):
    ax.imshow(m, cmap="Greys", vmin=0, vmax=1.3)
    ax.set_title(name)
    ax.set_xticks(range(0, n_toy, 4))
    ax.set_yticks(range(0, n_toy, 4))
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
fig.suptitle("dark = may attend (12 tokens: 3 frames of 2×2)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 2a. Causal mask
#
# Query i may see keys 0..i: the lower triangle. Language models need it to predict the next word;
# video classifiers see the whole clip and do not. It is the classic example, and a streaming video
# model (one that must answer before the clip ends) would use it over token-frames. The defining
# property: changing a *later* token cannot change an *earlier* output.

# %%
N = 112
causal = torch.ones(N, N, dtype=torch.bool).tril()
out_c, _ = attention(q, k, v, causal)
k2, v2 = k.clone(), v.clone()
k2[..., 60:, :] += 5.0                                       # change every token from 60 on
v2[..., 60:, :] -= 3.0
out_c2, _ = attention(q, k2, v2, causal)
print("outputs 0..59 unchanged by later tokens:", torch.allclose(out_c[..., :60, :], out_c2[..., :60, :]))
print("outputs from 60 on did change:", not torch.allclose(out_c[..., 60:, :], out_c2[..., 60:, :]))
print("matches SDPA with is_causal=True:",
      torch.allclose(out_c, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5))
print("same mask as vtlib.attention.causal_mask:", torch.equal(causal, causal_mask(N)))

# %% [markdown]
# ### 2b. Padding mask for shorter clips
#
# A batch is one tensor, so a clip of 16 frames must be padded to 28 to sit next to full clips. With
# 4-frame tubelets, clip 1 below has 4 real token-frames of 7: only 64 of its 112 tokens are real, the
# rest are padding.
# Blocking their **keys** means no real token ever reads from them. The test: the real tokens of the
# padded clip get exactly the output they would get if the short clip were run on its own.

# %%
grid = (7, 4, 4)                                             # 28³ clip, 4×7×7 tubelets
pad = padding_mask(grid, [7, 4])                             # clip 0 full, clip 1 has 4 of 7 frames
print("mask", tuple(pad.shape), "| real tokens per clip:", pad.sum((1, 2, 3)).tolist())
out_p, w_p = attention(q, k, v, pad)
alone, _ = attention(q[1:, :, :64], k[1:, :, :64], v[1:, :, :64])     # the short clip on its own
print("padded clip, real tokens = short clip alone:", torch.allclose(out_p[1:, :, :64], alone, atol=1e-6))
print("no weight ever lands on a padded key:", w_p[1, :, :, 64:].abs().max().item() == 0.0)
unmasked, _ = attention(q, k, v)
print("without the mask the padding leaks in:", not torch.allclose(unmasked[1:, :, :64], alone, atol=1e-6))
print("same as vtlib.attention.key_mask:", torch.equal(pad, key_mask(pad[:, 0, 0])))

# %% [markdown]
# The padded *queries* still produce outputs (they attend to the real keys), which are meaningless.
# Whatever reads the tokens afterwards must skip them too: a CLS token never looks at them because
# its keys are masked, but a mean over tokens would have to exclude them.
#
# A query whose every key is blocked would get softmax(−∞, …, −∞) = 0/0 = NaN in our short function.
# SDPA and `vtlib.attention.attention_explicit` return a zero output for such a row instead; our
# masks never block a whole row.
#
# ### 2c. Same-frame mask: space-only attention
#
# ViViT Model 1 ("joint space-time") lets every token attend to all N tokens. If each token may only
# attend to tokens of **its own frame**, attention can no longer move information across time: this
# is the *space-only* attention of TimeSformer, and the spatial half of ViViT's factorised models.
# The mask is block diagonal (the right-hand picture above).
#
# The same computation, without a mask: fold the frames into the batch axis, `(b t) s d`, and run
# ordinary attention on each frame's 16 tokens.

# %%
frame_mask = same_frame_mask(grid)                           # (112, 112), 7 blocks of 16×16
out_masked, _ = attention(q, k, v, frame_mask)


def per_frame(t):                                            # (B, h, N, d) -> (B·h·nt, 16, d)
    return rearrange(t, "b h (t s) d -> (b h t) s d", t=grid[0])


out_folded, _ = attention(per_frame(q), per_frame(k), per_frame(v))
out_folded = rearrange(out_folded, "(b h t) s d -> b h (t s) d", b=2, h=4, t=grid[0])
print("same-frame mask = attention within each frame:", torch.allclose(out_masked, out_folded, atol=1e-6))
print("share of query-key pairs allowed:", round(frame_mask.float().mean().item(), 4), "= 1/7")

# %% [markdown]
# Same result, very different bills. The mask still computes all N² scores and throws 6/7 of them
# away; folding frames into the batch computes only nt·(N/nt)² = N²/nt. A FLOP counter
# (`torch.utils.flop_counter.FlopCounterMode`, section 5) confirms it for the two matrix products:

# %%
def count_flops(fn, *args):
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args)
    return counter.get_total_flops()


joint = count_flops(attention, q, k, v, frame_mask)
folded = count_flops(attention, per_frame(q), per_frame(k), per_frame(v))
print(f"masked joint attention: {joint:,} FLOPs | folded per frame: {folded:,} FLOPs | ratio {joint // folded}")

# %% [markdown]
# That saving is why the factorised models exist (notebooks 06 and 07). It comes at a price: with
# space-only attention the model cannot see motion, which notebook 07 shows on the `direction` task.
#
# ## 3. Multi-head attention
#
# One attention map is one way of mixing tokens. **Multi-head** attention runs h of them in
# parallel, each on its own D/h-wide slice of learned projections, then mixes the heads:
#
# 1. project the tokens x (B, N, D) to queries, keys and values: one Linear D → 3D;
# 2. split each into h heads: (B, N, D) → (B, h, N, D/h);
# 3. attention in every head at once (the `...` in `attention` covers the head axis);
# 4. concatenate the heads back to (B, N, D) and apply an output Linear D → D.
#
# The heads split the width; they do not add parameters or FLOPs: the parameter count is
# 4D² + 4D whatever h is.

# %%
def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, heads, mask=None):
    """x (B, N, D) -> out (B, N, D), weights (B, heads, N, N). w_qkv (3D, D) packs [q; k; v]."""
    qkv = x @ w_qkv.T + b_qkv                                                  # (B, N, 3D)
    q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=heads)  # each (B, h, N, D/h)
    out, weights = attention(q, k, v, mask)                                     # (B, h, N, D/h)
    out = rearrange(out, "b h n d -> b n (h d)")                                # concatenate the heads
    return out @ w_out.T + b_out, weights

# %% [markdown]
# PyTorch's `nn.MultiheadAttention` stores exactly these four tensors: `in_proj_weight` (3D, D) packed
# as [q; k; v], `in_proj_bias`, and `out_proj`. Give our function its weights and compare. Two traps:
#
# - **Opposite mask convention.** For `nn.MultiheadAttention`, a bool `attn_mask` means True =
#   *blocked*, the reverse of SDPA. Our mask m must be passed as `~m`.
# - **Averaged weights.** By default it returns the attention weights averaged over heads; ask for
#   `average_attn_weights=False` to get one map per head.

# %%
D, heads = 64, 4
x = torch.randn(2, N, D, generator=g)                        # 2 clips, 112 tokens of width 64
mha = nn.MultiheadAttention(D, heads, batch_first=True).eval()
ours, ours_w = multi_head_attention(x, mha.in_proj_weight, mha.in_proj_bias,
                                    mha.out_proj.weight, mha.out_proj.bias, heads, causal)
with torch.no_grad():
    theirs, theirs_w = mha(x, x, x, attn_mask=~causal, average_attn_weights=False)
    wrong, _ = mha(x, x, x, attn_mask=causal)                # the mask passed without inverting
print("matches nn.MultiheadAttention (output):", torch.allclose(ours, theirs, atol=1e-5))
print("matches nn.MultiheadAttention (per-head weights):", torch.allclose(ours_w, theirs_w, atol=1e-6))
print("forgetting to invert the mask gives another answer:", not torch.allclose(ours, wrong, atol=1e-3))

lib = MultiHeadAttention.from_torch(mha).eval()              # vtlib's module, same weights
with torch.no_grad():
    lib_out = lib(x, mask=causal)                            # fused SDPA path, True = may attend
    with record_attention(lib) as lib_maps:                  # explicit path, keeps the maps
        lib_out2 = lib(x, mask=causal)
    lib_w = lib_maps[0]                                      # (B, heads, N, N)
print("matches vtlib.attention.MultiHeadAttention:", torch.allclose(ours, lib_out, atol=1e-5))
print("matches its explicit path and weights:",
      torch.allclose(ours, lib_out2, atol=1e-5) and torch.allclose(ours_w, lib_w, atol=1e-6))
print("parameters:", count_parameters(lib), "= 4D² + 4D:", count_parameters(lib) == 4 * D * D + 4 * D)

# %% [markdown]
# ## 4. The pre-norm transformer block
#
# A transformer is a stack of identical blocks on tokens (B, N, D). ViT, ViViT, TimeSformer and
# VideoMAE all use the **pre-norm** block:
#
#     x = x + drop_path(attention(LayerNorm(x)))
#     x = x + drop_path(MLP(LayerNorm(x)))          MLP = Linear(D, 4D) → GELU → Linear(4D, D)
#
# - **Residuals.** Each sub-layer adds a correction to x instead of replacing it. The unnormalised x
#   flows straight from the first block to the last, which keeps deep stacks trainable. (The original
#   2017 Transformer normalised *after* the addition, "post-norm"; it needs careful learning-rate
#   warm-up.)
# - **LayerNorm** normalises each token over its D features, (x − mean) / √(var + ε), then scales and
#   shifts with learned per-feature weights.
# - **GELU** is x · Φ(x), with Φ the standard normal CDF: a smooth ReLU.
# - **Stochastic depth** (`drop_path`) drops a block's whole residual branch for a random subset of
#   the clips in a training batch, and scales the kept ones by 1/(1 − p) so the expected value is
#   unchanged. At evaluation it does nothing. ViViT uses it as a regulariser (its Table 4).
#
# Each piece by hand, with parameter names that match `vtlib.block.Block`, so its weights load as-is.

# %%
class LayerNormScratch(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim)), eps

    def forward(self, x):                                            # (..., D)
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))                # x · Φ(x)


def drop_path(x, p, training):
    """Zero the whole x of a random fraction p of the clips (axis 0); scale the rest by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty(x.shape[0], 1, 1).bernoulli_(1 - p)          # one draw per clip
    return x * keep / (1 - p)


class AttentionScratch(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, mask=None):                                 # (B, N, D) -> (B, N, D)
        out, _ = multi_head_attention(x, self.qkv.weight, self.qkv.bias,
                                      self.proj.weight, self.proj.bias, self.heads, mask)
        return out


class MLPScratch(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(gelu(self.fc1(x)))


class BlockScratch(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, drop_path=0.0):
        super().__init__()
        self.norm1, self.attn = LayerNormScratch(dim), AttentionScratch(dim, heads)
        self.norm2, self.mlp = LayerNormScratch(dim), MLPScratch(dim, int(dim * mlp_ratio))
        self.p = drop_path

    def forward(self, x, mask=None):                                 # (B, N, D) -> (B, N, D)
        x = x + drop_path(self.attn(self.norm1(x), mask), self.p, self.training)
        x = x + drop_path(self.mlp(self.norm2(x)), self.p, self.training)
        return x

# %% [markdown]
# The hand-written LayerNorm and GELU against PyTorch's, then the whole block against
# `vtlib.block.Block` with the same weights: in evaluation mode, and in training mode with
# stochastic depth p = 0.3, where the same seed must drop the same clips.

# %%
ln = nn.LayerNorm(D, eps=1e-6)
print("LayerNormScratch matches nn.LayerNorm:", torch.allclose(LayerNormScratch(D)(x), ln(x), atol=1e-5))
print("gelu matches nn.GELU:", torch.allclose(gelu(x), nn.GELU()(x), atol=1e-6))

lib_block = Block(dim=D, heads=heads, mlp_ratio=4.0, drop_path=0.3)
mine = BlockScratch(D, heads, mlp_ratio=4.0, drop_path=0.3)
print(mine.load_state_dict(lib_block.state_dict()))                # every weight has its twin
with torch.no_grad():
    same_eval = torch.allclose(mine.eval()(x), lib_block.eval()(x), atol=1e-5)
    same_mask = torch.allclose(mine(x, causal), lib_block(x, mask=causal), atol=1e-5)
    xb = torch.randn(8, N, D, generator=g)
    torch.manual_seed(1)
    a = mine.train()(xb)
    torch.manual_seed(1)
    b = lib_block.train()(xb)
print("matches vtlib.block.Block (eval):", same_eval)
print("matches vtlib.block.Block (eval, causal mask):", same_mask)
print("matches vtlib.block.Block (train, drop_path=0.3, same seed):", torch.allclose(a, b, atol=1e-5))

# %% [markdown]
# Two properties of stochastic depth and the residual stream:
#
# - in training, about a fraction p of the clips skip a branch, and the average is unchanged;
# - a block whose two output layers (`attn.proj`, `mlp.fc2`) are zero is exactly the identity. This is
#   why new branches added to a pre-trained model are often zero-initialised: TimeSformer does it for its
#   temporal branch (its `temporal_fc`, notebook 07), so training starts from the image model.
#
# In a stack, the drop rate grows linearly with depth, from 0 at the first block to the chosen rate
# at the last (ViViT, DeiT; `vtlib.block.drop_path_rates`).

# %%
ones = torch.ones(20000, 1, 1)
torch.manual_seed(0)
dropped = drop_path(ones, 0.3, training=True)
print("fraction of clips dropped close to 0.3:", abs((dropped == 0).float().mean().item() - 0.3) < 0.02)
print("mean stays close to 1:", abs(dropped.mean().item() - 1) < 0.03)

ident = BlockScratch(D, heads).eval()
with torch.no_grad():
    for layer in (ident.attn.proj, ident.mlp.fc2):
        layer.weight.zero_()
        layer.bias.zero_()
    print("zero output layers -> the block is the identity:", torch.equal(ident(x), x))
print("drop-path rates of a 4-block stack at 0.1:", [round(r, 4) for r in drop_path_rates(4, 0.1)])

# %% [markdown]
# ## 5. What attention costs
#
# Count one multiply-add as 2 FLOPs, as `torch.utils.flop_counter` does: an (n, k) @ (k, m) product
# costs 2·n·k·m. For N tokens of width D, one sample:
#
# | step | product | FLOPs |
# |---|---|---|
# | QKV projection | (N, D) @ (D, 3D) | 6·N·D² |
# | scores Q Kᵀ | (N, D) @ (D, N), all heads together | 2·N²·D |
# | weighted sum A V | (N, N) @ (N, D), all heads together | 2·N²·D |
# | output projection | (N, D) @ (D, D) | 2·N·D² |
# | MLP, hidden H = 4D | (N, D) @ (D, H) and back | 4·N·D·H = 16·N·D² |
#
# Softmax, LayerNorm, GELU and the residual additions cost a few operations per element, linear in
# N·D, and are left out. Memory: the explicit attention keeps the (B, h, N, N) weights, B·h·N² numbers
# per block, 4 bytes each in float32.

# %%
def my_attention_flops(n, d):
    return 2 * n * d * 3 * d + 2 * n * n * d + 2 * n * n * d + 2 * n * d * d   # 8ND² + 4N²D


def my_block_flops(n, d, mlp_ratio=4.0):
    hidden = int(d * mlp_ratio)
    return my_attention_flops(n, d) + 2 * (2 * n * d * hidden)                 # + MLP


def my_score_bytes(n, heads, batch=1, bytes_per_el=4):
    return batch * heads * n * n * bytes_per_el


cases = [(n, d) for n in (16, 112, 343, 1372) for d in (32, 64, 768)]
print("formulas agree with vtlib.cost:",
      all(my_attention_flops(n, d) == attention_flops(n, d) and my_block_flops(n, d) == block_flops(n, d)
          and my_score_bytes(n, 4, 32) == attention_memory_bytes(n, 4, 32) for n, d in cases))

# %% [markdown]
# Now **measure** instead of trusting the algebra. `FlopCounterMode` records every matrix product that
# runs inside it. Our block is made of plain matrix products, so the count must equal the formula exactly
# (one clip, 112 tokens, D = 64).

# %%
x1 = x[:1]                                                   # (1, 112, 64)
with torch.no_grad():
    measured = count_flops(mine.eval(), x1)
print(f"measured {measured:,} | formula {my_block_flops(N, D):,}")
print("measured FLOPs of BlockScratch == formula:", measured == my_block_flops(N, D))

# %% [markdown]
# The library block calls the fused SDPA, and here is a trap. On the CPU, torch 2.13 runs SDPA through
# a fused kernel (`_scaled_dot_product_flash_attention_for_cpu`) that the FLOP counter does not know,
# so it counts **0** FLOPs for the two N² products. `vtlib.cost.measure_flops` therefore switches SDPA
# to its MATH backend by default, which computes attention with ordinary, countable matrix products
# (the result is the same; only the kernel differs). On a GPU the counter knows the fused kernels and
# both counts agree.

# %% tags=["nbval-ignore-output"]
raw = measure_flops(lib_block.eval(), x1, math_sdpa=False)   # whatever kernel this device runs
math_count = measure_flops(lib_block, x1)                    # MATH backend (the default)
print(f"fused SDPA as counted here: {raw:,} | MATH backend: {math_count:,} | "
      f"missing: {math_count - raw:,} = 4·N²·D = {4 * N * N * D:,}")

# %%
print("measure_flops (MATH backend) == formula:", math_count == block_flops(N, D))
print("the fused count is the full count, or misses exactly the 4·N²·D core:",
      raw in (block_flops(N, D), block_flops(N, D) - 4 * N * N * D))

# %% [markdown]
# ### When the N² term takes over
#
# Per block the linear part costs 24·N·D² (8 in attention, 16 in the MLP) and the quadratic part
# 4·N²·D. They are equal at **N = 6D**: for the course's width D = 64 that is 384 tokens. Below it,
# the projections and the MLP dominate; above it, attention does, and its share grows towards 100 %.
#
# The MedMNIST clips at 28³ and 64³ with several tubelet sizes (`vtlib.tokens.token_grid`), a D = 64
# block with 4 heads, and the memory of the attention weights for a batch of 32 clips in float32,
# per block:

# %%
D_table, heads_table, batch = 64, 4, 32
settings = [(28, (7, 7, 7)), (28, (4, 7, 7)), (28, (2, 7, 7)), (28, (4, 4, 4)), (28, (2, 4, 4)), (28, (1, 4, 4)),
            (64, (4, 16, 16)), (64, (8, 8, 8)), (64, (4, 8, 8)), (64, (4, 4, 4)), (64, (2, 4, 4))]
rows = []
print(f"{'clip':>5} {'tubelet':>10} {'grid':>12} {'tokens':>6} {'GFLOPs/block':>13} {'N² share':>9} {'scores MB':>10}")
for size, tub in settings:
    n = math.prod(token_grid((size, size, size), tub))
    flops = block_flops(n, D_table)
    share = 4 * n * n * D_table / flops
    mb = attention_memory_bytes(n, heads_table, batch) / 2**20
    rows.append((size, tub, n, flops, share, mb))
    print(f"{size:>4}³ {'×'.join(map(str, tub)):>10} {str(token_grid((size,) * 3, tub)):>12} {n:>6} "
          f"{flops / 1e9:>13.3f} {share:>8.0%} {mb:>10.1f}")

# %%
print("N² term is over half exactly when N > 6D:",
      all((share > 0.5) == (n > 6 * D_table) for _, _, n, _, share, _ in rows))
print("64³ with 2×4×4 tubelets: score memory per block above 30 GB:", rows[-1][5] / 1024 > 30)
vivit_b = 16 * 14 * 14                                       # ViViT-B, 32×224² clip, 2×16×16 tubelets
print(f"ViViT-B (D=768, {vivit_b} tokens): N² share {4 * vivit_b**2 * 768 / block_flops(vivit_b, 768):.0%}")

# %% [markdown]
# Going from 4×7×7 to 1×4×4 tubelets on the same 28³ clip takes the tokens from 112 to 1372, but the
# FLOPs per block from 0.014 to 0.617 GFLOPs and the score memory from 6.1 to 919.1 MB: the FLOPs grow
# much faster than the tokens, and the memory with their square. At 64³ the finest tubelets need more
# than 30 GB for the attention weights of *one* block: explicit attention is out of the question, and
# even fused kernels, which never store the matrix, still pay the N² FLOPs. The paper's ViViT-B is wide
# (D = 768), so its crossover sits at N = 6D = 4608, and at its 3136 tokens the quadratic part is still
# under half (40 % above).
#
# ### Measured time
#
# Time one D = 64 block (fused SDPA, the library path) on the CPU as N doubles, on one thread. Each
# point is the fastest of 7 runs, which filters out interruptions by other programs. We time on the CPU
# on every machine: on a GPU, blocks this small are dominated by kernel-launch overhead and the curve stays flat
# until N is large.

# %% tags=["nbval-ignore-output"]
def best_time(fn, repeats=7, threads=1):
    """Fastest of `repeats` calls on `threads` CPU threads (one thread: less disturbed by other programs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fn()                                                 # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return min(times)


timing_block = Block(dim=D, heads=heads).eval()
token_counts = [64, 128, 256, 512, 1024, 2048]
times = {}
with torch.no_grad():
    for n in token_counts:
        xt = torch.randn(1, n, D, generator=g)
        times[n] = best_time(lambda: timing_block(xt))
        print(f"N={n:>5}: {times[n] * 1e3:7.2f} ms   {block_flops(n, D) / 1e6:8.1f} MFLOPs")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
ns = np.array(token_counts)
ax.loglog(ns, [times[n] * 1e3 for n in token_counts], "o-", label="measured (CPU)")
ax.loglog(ns, times[2048] * 1e3 * ns / 2048, ":", color="grey", label="∝ N")
ax.loglog(ns, times[2048] * 1e3 * (ns / 2048) ** 2, "--", color="grey", label="∝ N²")
ax.set_xlabel("tokens N")
ax.set_ylabel("forward time (ms)")
ax.set_title("one block, D = 64, batch 1, one CPU thread")
ax.legend()
plt.show()

# %%
print("FLOPs ratio for 4× tokens (512 -> 2048):", round(block_flops(2048, D) / block_flops(512, D), 2),
      "(linear would be 4)")
print("measured time ratio for 4× tokens > 2:", times[2048] / times[512] > 2)

# %% [markdown]
# At small N the time barely moves (fixed overheads); from a few hundred tokens on it grows faster
# than N, as the N² term takes over. The exact ratio depends on the CPU and on what else runs; the
# FLOP ratio above does not.
#
# ## 6. Explicit or fused: same answer, different bills
#
# The library (`vtlib.attention.MultiHeadAttention`) calls `F.scaled_dot_product_attention`. Its fused
# kernels compute the softmax block by block and never store the N×N matrix (the idea of
# FlashAttention), which saves memory and time. The explicit version is what we wrote; the library keeps
# it for `record_attention`, when we want to look at the maps. On the largest 28³ setting (1×4×4
# tubelets, 1372 tokens, 4 heads of 16) with the same-frame mask and without:

# %%
qf, kf, vf = torch.randn(3, 1, 4, 1372, 16, generator=g)
frames_1372 = same_frame_mask(token_grid((28, 28, 28), (1, 4, 4)))
same_result = all(
    torch.allclose(attention(qf, kf, vf, m)[0], F.scaled_dot_product_attention(qf, kf, vf, attn_mask=m), atol=1e-5)
    for m in (None, frames_1372))
print("explicit == fused SDPA (no mask, same-frame mask):", same_result)
lib_big = MultiHeadAttention(dim=D, heads=heads).eval()      # the library module: fused unless recording
x_big = torch.randn(1, 1372, D, generator=g)
with torch.no_grad():
    fused_out = lib_big(x_big)
    with record_attention(lib_big):                          # explicit path while recording
        explicit_out = lib_big(x_big)
print("vtlib MultiHeadAttention, fused path == explicit path:", torch.allclose(fused_out, explicit_out, atol=1e-5))
print(f"score matrix the explicit version stores: {attention_memory_bytes(1372, 4) / 2**20:.1f} MB per clip per block")

# %% tags=["nbval-ignore-output"]
with torch.no_grad():
    t_explicit = best_time(lambda: attention(qf, kf, vf))
    t_fused = best_time(lambda: F.scaled_dot_product_attention(qf, kf, vf))
    with sdpa_kernel(SDPBackend.MATH):
        t_math = best_time(lambda: F.scaled_dot_product_attention(qf, kf, vf))
print(f"explicit {t_explicit * 1e3:.1f} ms | SDPA math backend {t_math * 1e3:.1f} ms | "
      f"SDPA fused {t_fused * 1e3:.1f} ms | fused is {t_explicit / t_fused:.1f}× faster than explicit")

# %% [markdown]
# Same FLOPs, less memory traffic: the fused kernel never writes the N×N matrix out and reads it back.
# The line above shows how much faster it was than the explicit version in this run; the ratio depends
# on the machine, N and the load (on a shared 2-core CPU it has ranged from barely faster to several
# times faster), so it is not checked. The gain that does not depend on the
# machine is memory: the 28.7 MB per clip and block above, times batch and depth, is never allocated.
# On a GPU the fused kernels are typically much faster too, because there memory traffic is the
# bottleneck.
#
# ### The other way round: many short sequences, with gradients
#
# The fused kernel wins on long sequences. TimeSformer (notebook 07) attends over many *short* ones:
# within each frame (16 patches and the CLS at the course size) and along each patch's line in time (7
# tokens). Each of those calls has little work to share out, and on a CPU the fused kernel's backward
# pass spreads it poorly over threads. The explicit form is two batched matrix products and a softmax,
# the same FLOPs, and the matrix-product library splits those well. Measured on whole training steps
# (notebook 07), that made the difference, so `MultiHeadAttention` uses the explicit form when it
# *trains on a CPU* on sequences of at most `SHORT_SEQUENCE` tokens, and SDPA everywhere else: in
# inference, on longer sequences and on a GPU. Time one forward and backward pass of each, on 1 thread
# and on 2 if this machine has them. The backward pass gets a dense upstream gradient, as inside a
# network (the gradient of `.sum()` is a broadcast tensor of ones, which takes other code paths):

# %% tags=["nbval-ignore-output"]
for seqs, n in ((16 * 16, 7), (16 * 7, 17)):                 # a batch of 16 clips: time lines, frames
    qs, ks, vs = (torch.randn(seqs, heads, n, D // heads, generator=g, requires_grad=True) for _ in range(3))
    upstream = torch.randn(seqs, heads, n, D // heads, generator=g)
    for threads in sorted({1, min(2, os.cpu_count() or 1)}):
        t_sdpa = best_time(lambda: F.scaled_dot_product_attention(qs, ks, vs).backward(upstream), threads=threads)
        t_expl = best_time(lambda: attention_explicit(qs, ks, vs)[0].backward(upstream), threads=threads)
        print(f"{seqs} sequences of {n} tokens, {threads} thread(s): fused SDPA {t_sdpa * 1e3:.2f} ms, "
              f"explicit {t_expl * 1e3:.2f} ms (forward + backward, fastest of 7)")

# %%
short = MultiHeadAttention(dim=D, heads=heads)
x_short = torch.randn(8, 7, D, generator=g)
with torch.no_grad():
    by_sdpa = short(x_short)                                 # inference: the fused kernel
by_explicit = short(x_short)                                 # gradients on, 7 tokens: the explicit form
print("SHORT_SEQUENCE =", MultiHeadAttention.SHORT_SEQUENCE, "| training and inference paths agree:",
      torch.allclose(by_sdpa, by_explicit, atol=1e-5))

# %% [markdown]
# Same numbers either way, up to float rounding; only the bill differs, and which is cheaper depends on
# the sequence length, the number of threads and the machine. Notebook 07 measures what the switch does
# to a whole TimeSformer training step next to Hugging Face's.
#
# ## 7. What does the CLS token look at?
#
# Train a small ViViT (Model 1: joint space-time attention, notebook 05 builds it fully) on the
# synthetic `direction` task of notebook 00, where an object (a disk or a square) glides left or right
# and only the order of frames tells the classes apart. Width 32, 2 blocks of 4 heads, 4×7×7 tubelets
# (112 tokens + CLS), 384 training clips, 5 epochs; the epoch with the lowest validation loss is kept,
# and the test split is evaluated once.

# %%
data = loaders("direction", n_train=384, batch_size=32, seed=0)
seed_everything(0)
model = ViViT(num_classes=2, video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim=32, depth=2, heads=4)
cfg = TrainConfig(epochs=5, lr=1e-3, seed=0, select_metric="loss", progress=False)   # no bar: output is checked
t0 = time.perf_counter()
result = fit(model, data["train"], data["val"], cfg, test_loader=data["test"])
train_seconds = time.perf_counter() - t0
print("tokens attended over:", model.num_tokens, "| parameters:", count_parameters(model))

# %% tags=["nbval-ignore-output"]
for h in result.history:
    print(f"epoch {h['epoch']}: train loss {h['train_loss']:.3f}  val loss {h['val_loss']:.3f}  "
          f"val AUC {h['val_auc']:.3f}")
print(f"best epoch {result.best_epoch} | test AUC {result.test['auc']:.3f} ACC {result.test['acc']:.3f} "
      f"| {train_seconds:.0f} s on {device}")

# %%
print("test AUC >= 0.90:", result.test["auc"] >= 0.90)

# %% [markdown]
# Now ask for the attention maps: inside `with record_attention(model) as maps:` every attention runs
# the explicit path and keeps its softmax, so `model(x)` fills `maps` with one
# (B, heads, N, N) map per block, N = 113. Row 0 is the CLS token's query; its 112 weights over the
# tubelet tokens reshape to the token grid (t, h, w) = (7, 4, 4).
#
# Which head to show? For every head of the first block, correlate the CLS attention with how much of
# the object each tubelet holds, over the validation clips, and show the head that follows the object
# best.

# %%
model.eval()
xv, yv = data["val"].dataset.tensors
with torch.no_grad(), record_attention(model) as maps:
    model(xv[:64].to(device))
maps = [m.float().cpu() for m in maps]
print("maps:", len(maps), "blocks of", tuple(maps[0].shape))
cls_attn = rearrange(maps[0][:, :, 0, 1:], "b h (t i j) -> b h t i j", t=7, i=4, j=4)   # (64, 4, 7, 4, 4)
print("CLS weights over the 112 tubelets + itself sum to 1:",
      torch.allclose(maps[0][:, :, 0].sum(-1), torch.ones(64, 4), atol=1e-4))
obj = reduce(xv[:64, 0], "b (t a) (i p) (j q) -> b t i j", "sum", a=4, p=7, q=7)        # (64, 7, 4, 4) object mass


def corr(a, b):                                              # per clip, over the 112 tubelets
    a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-12)


head_corr = torch.stack([corr(cls_attn[:, h], obj).mean() for h in range(4)])
best = int(head_corr.argmax())

# %% tags=["nbval-ignore-output"]
print("block 1, correlation of CLS attention with object mass, per head:", [round(c, 2) for c in head_corr.tolist()])
uniform = 1 / 113
for i, m in enumerate(maps):
    print(f"block {i + 1}: largest CLS weight {m[:, :, 0].amax(-1).mean():.3f} on average "
          f"(uniform would be {uniform:.3f})")

# %%
fig, axes = plt.subplots(4, 7, figsize=(10, 6.2))
for row, cls in enumerate((0, 1)):
    s = int((yv[:64] == cls).nonzero()[0])                   # first validation clip of this class
    att = cls_attn[s, best]                                  # (7, 4, 4)
    for t in range(7):
        slab = xv[s, 0, 4 * t:4 * t + 4].amax(0)             # the 4 frames of token-frame t, overlaid
        axes[2 * row, t].imshow(slab, cmap="gray")
        axes[2 * row + 1, t].imshow(att[t], cmap="magma", vmin=0, vmax=att.max())
        axes[2 * row, t].set_title(f"t={t}", fontsize=9)
    axes[2 * row, 0].set_ylabel("left → right" if cls == 0 else "right → left", fontsize=9)
    axes[2 * row + 1, 0].set_ylabel("CLS attn", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"block 1, head {best}: CLS attention over (t, h, w), one validation clip per class")
plt.tight_layout()
plt.show()

# %% [markdown]
# What we saw (seed 0, CPU, 5 epochs; test AUC 1.000): the model solves the task, and in the first
# block one head's CLS attention tends to light up the tubelets the object passes through (average
# correlation about 0.5 with the object's mass per tubelet in our run), while the other heads are
# weaker or diffuse. In the second block the CLS weights are almost uniform (largest weight about 0.01
# against 1/113 ≈ 0.009): by then every token already carries information from the whole clip, so
# where the CLS looks says little.
#
# What this does **not** show: that the model "uses" the highlighted tokens. With seed 1 (same recipe,
# also test AUC 1.000) the best first-block head correlated only weakly with the object (a third of
# seed 0's best, or less), and three second-block heads correlated clearly *negatively*: attending to
# the background works too, when the background is everything except the object (change both seeds
# in the training cell to see it). Attention maps are one view of one layer,
# not an explanation; notebook 05 returns to them on the full model.
#
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb04` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb04.py`; try first.)
#
# 1. **Time-only attention.** TimeSformer's other half lets each token attend only to the tokens at its
#    own spatial position (h, w), in every token-frame. Write `same_position_mask(grid)`, the (N, N) bool
#    mask of that pattern for tokens in (t h w) order. Then write `time_only_attention(q, k, v, grid)`
#    for q, k, v of shape (B, heads, N, d): the same result without any mask, by folding the positions
#    into the batch axis as section 2c folded the frames. The check also counts your FLOPs: a masked
#    version computes all N² scores and does not pass.
# 2. **A sliding window in time.** A model that should only mix nearby moments can let every token see
#    all tokens of the token-frames within `w` of its own frame, before and after. Write
#    `local_time_mask(grid, w)`: the (N, N) bool mask, True where |t_query − t_key| ≤ w.
# 3. **Another MLP ratio.** Section 5 found the N² term taking over at N = 6D for an MLP ratio of 4.
#    Write `crossover_tokens(dim, mlp_ratio)`: the smallest N at which the attention core (the two N²
#    products) is **more than half** of a block's FLOPs, when the MLP has `int(dim * mlp_ratio)` hidden
#    units.
# 4. **How saturated is the softmax? (an experiment).** One query "reads" about 1 / Σⱼ pⱼ² keys: all N
#    of them when its weights are uniform, 1 when one key takes everything. Write
#    `effective_keys(q, k, scale)` for q (Nq, d) and k (Nk, d): the mean over queries of 1 / Σⱼ pᵢⱼ²,
#    with p = softmax(scale · q kᵀ) over the keys. Run it on 256 random queries and 256 random keys for
#    each width in `widths`, once with `scale=1` (no scaling) and once with `scale=1/sqrt(d)`, and print
#    the two columns. From your table, set `few_keys_width`: the smallest width at which an unscaled
#    query reads fewer than 10 keys, and `scaled_share`: the effective keys with the 1/√d scale at
#    d = 256, divided by 256. What does the scale keep constant as d grows?

# %%
from vtlib.exercises.nb04 import check_crossover, check_local_time_mask, check_softmax_saturation, check_time_only


def same_position_mask(grid):
    """grid (nt, nh, nw) -> (N, N) bool, True where query and key share the spatial position (h, w)."""
    raise NotImplementedError


def time_only_attention(q, k, v, grid):
    """q, k, v (B, heads, N, d) -> (B, heads, N, d): attention along time at each position, no mask."""
    raise NotImplementedError


_ = check_time_only(same_position_mask, time_only_attention)

# %%
def local_time_mask(grid, w):
    """grid (nt, nh, nw), w >= 0 -> (N, N) bool, True where |frame(query) - frame(key)| <= w."""
    raise NotImplementedError


_ = check_local_time_mask(local_time_mask)

# %%
def crossover_tokens(dim, mlp_ratio):
    """Smallest token count N at which 4·N²·D is more than half of one block's FLOPs."""
    raise NotImplementedError


_ = check_crossover(crossover_tokens)

# %%
def effective_keys(q, k, scale):
    """q (Nq, d), k (Nk, d) -> float: mean over queries of 1 / sum_j p_ij², p = softmax(scale · q kᵀ)."""
    raise NotImplementedError


widths = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# your experiment: for d in widths, q, k = torch.randn(2, 256, d); print both effective_keys
few_keys_width = None
scaled_share = None
_ = check_softmax_saturation(effective_keys, few_keys_width, scaled_share)

# %% [markdown]
# ## Summary
#
# - Attention is softmax(Q Kᵀ / √d) V: every query takes a weighted average of the values, weights from
#   query-key dot products. Dividing by √d keeps the scores' spread near 1, so the softmax does not saturate.
# - Masks say who may attend to whom (SDPA: True = may attend; `nn.MultiheadAttention`: True = blocked).
#   A padding mask makes a padded short clip behave exactly like the short clip alone; a same-frame mask
#   turns joint attention into space-only attention, and folding frames into the batch gives the same
#   result at 1/nt of the attention FLOPs.
# - Multi-head attention splits D into h heads; our einops version equals SDPA, `nn.MultiheadAttention`
#   with the same weights, and `vtlib.attention.MultiHeadAttention`.
# - The pre-norm block, x + drop_path(attn(LN(x))) then x + drop_path(MLP(LN(x))), built by hand equals
#   `vtlib.block.Block`, in training mode too.
# - Per block and clip: 24·N·D² + 4·N²·D FLOPs (MLP ratio 4) and B·h·N² stored attention weights. The N²
#   term wins above N = 6D tokens (384 at D = 64); the measured FLOP count matches the formula exactly,
#   provided the counter sees the attention kernel (MATH backend on CPU).
# - A small ViViT solves `direction` in 5 epochs; its CLS attention can be read over (t, h, w), but it
#   is a view, not an explanation.
#
# **Next:** notebook 05 assembles the full ViViT Model 1 and trains it on AdrenalMNIST3D.
#
# **References**
# - A. Vaswani et al., Attention is all you need, NeurIPS 2017, arXiv:1706.03762.
# - A. Arnab et al., ViViT: A Video Vision Transformer, ICCV 2021, arXiv:2103.15691 (Model 1 and the
#   factorised models; stochastic depth in Table 4).
# - G. Bertasius, H. Wang, L. Torresani, Is space-time attention all you need for video understanding?
#   (TimeSformer), ICML 2021, arXiv:2102.05095 (space-only, divided and joint attention).
# - R. Xiong et al., On layer normalization in the Transformer architecture, ICML 2020, arXiv:2002.04745
#   (pre-norm vs post-norm).
# - G. Huang et al., Deep networks with stochastic depth, ECCV 2016, arXiv:1603.09382.
# - J. L. Ba, J. R. Kiros, G. E. Hinton, Layer normalization, arXiv:1607.06450 (2016);
#   D. Hendrycks, K. Gimpel, Gaussian error linear units (GELUs), arXiv:1606.08415 (2016).
# - T. Dao et al., FlashAttention, NeurIPS 2022, arXiv:2205.14135 (why fused kernels skip the N×N matrix).
# - PyTorch documentation: `torch.nn.functional.scaled_dot_product_attention`, `torch.nn.MultiheadAttention`,
#   `torch.utils.flop_counter.FlopCounterMode`.
