# %% [markdown]
# # 03 · CLS token and pooling
#
# **What you will learn**
# - the three ways a video transformer turns its N output tokens into one clip vector: a **CLS token**
#   (ViT, ViViT), **mean pooling** (VideoMAE fine-tuning) and **attention pooling** with a learned query
#   (TubeViT's head); how each one is read out, what it costs, and what it does with attention;
# - how to write all three from scratch in a few lines, checked against `vtlib.pooling`;
# - where a trained ViViT's CLS token looks in its last block, and where an attention pool looks,
#   drawn as heatmaps over the (t, h, w) grid of tubelets;
# - the **token-0 pitfall**: in a model without a CLS token, `x[:, 0]` is just the first patch token
#   (Hugging Face issue #21016 on VideoMAE). We measure what reading it does on AdrenalMNIST3D, and
#   why the answer here is "almost nothing", which makes the bug harder to catch, not harmless;
# - a 3-seed comparison of the three read-outs on AdrenalMNIST3D with the same small encoder.
#
# **Prerequisites:** notebooks 01 (tubelet tokens) and 02 (position embeddings); attention as
# "softmax of dot products, then a weighted sum" (notebook 04 builds it in full).
# **Time:** about a minute to run on a 2-core CPU.
# **Papers:** Arnab et al., *ViViT*, ICCV 2021, <https://arxiv.org/abs/2103.15691>;
# Piergiovanni et al., *Rethinking Video ViTs: Sparse Video Tubes* (TubeViT), CVPR 2023,
# <https://arxiv.org/abs/2212.03229>; Tong et al., *VideoMAE*, NeurIPS 2022, <https://arxiv.org/abs/2203.12602>.

# %% [markdown]
# ## Setup

# %%
import math
import warnings

import matplotlib.pyplot as plt
import torch
from einops import rearrange

from vtlib.attention import record_attention
from vtlib.experiments.common import RESULTS, format_summary, loaders, read_csv
from vtlib.experiments.pooling import FirstToken, gland_tokens, patch_similarity, token_readout_aucs, weight_stats
from vtlib.models.vivit import ViViT
from vtlib.pooling import AttentionPool, ClsToken, MeanPool, attention_pool
from vtlib.train import TrainConfig, evaluate, fit
from vtlib.utils import count_parameters, get_device, seed_everything

warnings.filterwarnings("ignore")
seed_everything(0)
device = get_device()
print("vtlib is ready")

# %% [markdown]
# ## 1. From N tokens to one vector
#
# A transformer encoder maps N tokens to N tokens: `(B, N, D) -> (B, N, D)`. A classifier needs one
# vector per clip, `(B, D)`. There are three common answers, and every model in this course picks one:
#
# | read-out | before the encoder | after the encoder | extra parameters | used by |
# |---|---|---|---|---|
# | **CLS token** | prepend one learned token: N + 1 tokens | keep output 0 | D | ViT, ViViT, TimeSformer |
# | **mean pooling** | nothing | average the N outputs | 0 | VideoMAE fine-tuning, ViViT Model 2's no-CLS option |
# | **attention pooling** | nothing | a learned query attends over the N outputs | about 3D² | TubeViT ("attention pooling + FC") |
#
# They differ in *when* and *how* the clip vector is formed:
#
# - The **CLS token** takes part in every block. It is a query that gathers from all tokens, and a
#   key and value that every token can read back. The clip vector is whatever the blocks write
#   into that slot (through attention, then the MLP).
# - **Mean pooling** uses no attention of its own: every token counts 1/N, whatever it shows.
# - **Attention pooling** adds one cross-attention *after* the encoder: a learned query (not a token:
#   it never enters the encoder) scores every output token, the softmax of those scores weights a sum.
#   The weights depend on the clip, because the keys do.
#
# In `vtlib.pooling` all three share one interface, so `ViViT(pool=...)` swaps them without
# touching anything else: `x = pool.prepend(x)` before the encoder (only the CLS token adds a
# token), `v = pool(x)` after it.

# %% [markdown]
# ## 2. The CLS token from scratch
#
# A CLS token is one learned vector of width D, shared by all clips. Prepending it copies it once
# per clip in the batch (`expand` makes the copies without using memory).

# %%
B, N, D = 2, 112, 64
x = torch.randn(B, N, D, generator=torch.Generator().manual_seed(0))    # 112 tubelet tokens of width 64


def prepend_cls(x, cls):
    """x (B, N, D), cls (1, 1, D) -> (B, N + 1, D) with the CLS token at index 0."""
    return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)


cls_ref = ClsToken(dim=D)
with_cls = prepend_cls(x, cls_ref.token)
print("tokens:", tuple(x.shape), "->", tuple(with_cls.shape))
print("matches vtlib.pooling.ClsToken.prepend:", torch.allclose(with_cls, cls_ref.prepend(x)))

# %% [markdown]
# The read-out is `x[:, 0]` after the encoder. Because the head reads only that slot, something
# perhaps surprising follows: **the last block's outputs for the 112 patch tokens are never used**.
# What the patch tokens bring *into* the last block still matters (they are the keys and values the
# CLS query reads there), but what the last block writes back into their slots gets exactly zero gradient.
# Check it on an untrained ViViT: keep the encoder output, backpropagate from the logits, look where
# the gradient arrives.

# %%
seed_everything(0)
clips = torch.rand(2, 1, 28, 28, 28)                                   # (B, C, T, H, W)
vivit_cls = ViViT(pool="cls", dim=64, depth=4, heads=4)
tokens = vivit_cls.pool.prepend(vivit_cls.pos(vivit_cls.embed(clips)))  # (2, 113, 64)
out = vivit_cls.encoder(tokens)                                        # (2, 113, 64)
out.retain_grad()
vivit_cls.head(vivit_cls.pool(vivit_cls.norm(out))).sum().backward()
print("tokens in every block:", tokens.shape[1])
print("gradient reaches the CLS output:", bool(out.grad[:, 0].abs().sum() > 0))
print("gradient reaches the patch outputs of the last block:", bool(out.grad[:, 1:].abs().sum() > 0))

# %% [markdown]
# ## 3. Mean pooling from scratch
#
# The simplest read-out: the average over the token axis. No parameters, and the order of the tokens
# does not matter (it is *permutation-invariant*): shuffle the tokens and the mean is the same. Any
# information about *where* something is has to be inside the token vectors themselves, which is
# what the position embeddings of notebook 02 put there.

# %%
def mean_pool(x):
    """x (B, N, D) -> (B, D): every token weighs 1/N."""
    return x.mean(dim=1)


perm = torch.randperm(N, generator=torch.Generator().manual_seed(1))
print("pooled:", tuple(mean_pool(x).shape))
print("matches vtlib.pooling.MeanPool:", torch.allclose(mean_pool(x), MeanPool(dim=D)(x)))
print("same after shuffling the tokens:", torch.allclose(mean_pool(x[:, perm]), mean_pool(x), atol=1e-6))

# %% [markdown]
# ## 4. Attention pooling from scratch
#
# Replace the fixed weights 1/N by learned, clip-dependent ones. A learned query vector q scores
# every token, a softmax over the tokens turns the scores into weights that sum to 1, and the clip
# vector is the weighted sum:
#
# $$w_n = \mathrm{softmax}_n\left(\frac{x_n \cdot q}{\sqrt{D}}\right), \qquad v = \sum_n w_n\, x_n .$$
#
# That is attention with a single query and the tokens as both keys and values. (The unofficial
# TubeViT port pools this way too: a learned linear score per token, a softmax over tokens, a
# weighted sum.) With q = 0 every score is 0 and the weights are all 1/N: **attention pooling starts
# where mean pooling is**, and moves away only as far as training pushes q.

# %%
def attn_pool(x, query):
    """x (B, N, D), query (D,) -> pooled (B, D) and weights (B, N)."""
    scores = x @ query / math.sqrt(x.shape[-1])     # (B, N): one score per token
    weights = scores.softmax(dim=-1)                # (B, N), sums to 1 over the tokens
    return (weights.unsqueeze(-1) * x).sum(dim=1), weights


q = torch.randn(D, generator=torch.Generator().manual_seed(2))
pooled, w = attn_pool(x, q)
print("pooled:", tuple(pooled.shape), "weights:", tuple(w.shape))
print("matches vtlib.pooling.attention_pool:", torch.allclose(pooled, attention_pool(x, q), atol=1e-6))
print("a zero query gives the mean:", torch.allclose(attn_pool(x, torch.zeros(D))[0], mean_pool(x), atol=1e-6))

# %% [markdown]
# The module a model uses, `vtlib.pooling.AttentionPool(dim=..., heads=...)`, is the same idea with the usual
# attention trimmings: keys and values are linear maps of the tokens, there is one query per head
# (each head scores the tokens in its own D/heads channels), and the heads' results are concatenated
# and projected. Written out with its parameters:

# %%
def attn_pool_multihead(x, pool):
    """x (B, N, D) -> (B, D) and weights (B, heads, N), using the parameters of an AttentionPool."""
    k, v = pool.to_kv(x).chunk(2, dim=-1)                                  # (B, N, D) each
    k = rearrange(k, "b n (h e) -> b h n e", h=pool.heads)                 # (B, heads, N, D/heads)
    v = rearrange(v, "b n (h e) -> b h n e", h=pool.heads)
    scores = torch.einsum("he,bhne->bhn", pool.query, k) / math.sqrt(k.shape[-1])
    weights = scores.softmax(dim=-1)                                       # (B, heads, N)
    heads_out = torch.einsum("bhn,bhne->bhe", weights, v)                  # (B, heads, D/heads)
    return pool.out(rearrange(heads_out, "b h e -> b (h e)")), weights


pool_ref = AttentionPool(dim=D, heads=4)
mine, mine_w = attn_pool_multihead(x, pool_ref)
ref, ref_w = pool_ref(x, return_weights=True)
print("weights:", tuple(mine_w.shape))
print("matches vtlib.pooling.AttentionPool:", torch.allclose(mine, ref, atol=1e-6) and torch.allclose(mine_w, ref_w))

# %% [markdown]
# What each read-out costs in our small ViViT (dim 64, depth 4, 112 tubelet tokens): the CLS token
# adds D = 64 parameters and one token to every block; the attention pool adds the query (D), the
# key/value map (2D² + 2D) and the output projection (D² + D), that is 3D² + 4D parameters, and no
# token. The counts below show both differences: 220,034 with a CLS token and 232,514 with the attention
# pool, against 219,970 with mean pooling.

# %%
for kind in ("cls", "mean", "attn"):
    m = ViViT(pool=kind, dim=64, depth=4, heads=4)
    print(f"pool={kind:<5} tokens per block: {m.num_tokens}  parameters: {count_parameters(m)}")

# %% [markdown]
# ## 5. The token-0 pitfall
#
# Reading `x[:, 0]` is a CLS read-out **only if a CLS token was prepended**. VideoMAE has none, so in
# Hugging Face's `VideoMAEForVideoClassification` the option `use_mean_pooling=False` makes the
# head read `sequence_output[:, 0]`, which is the first *patch* token (issue #21016). Build a tiny
# one on our clip size and look: 112 output tokens, exactly the number of tubelets, so token 0 is a
# tubelet; and the logits are the classifier applied to it.

# %%
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

hf_cfg = VideoMAEConfig(image_size=28, patch_size=7, num_channels=1, num_frames=28, tubelet_size=4,
                        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        num_labels=2, use_mean_pooling=False)
torch.manual_seed(0)
hf_model = VideoMAEForVideoClassification(hf_cfg).eval()
hf_clips = rearrange(clips, "b c t h w -> b t c h w")        # Hugging Face video models take (B, T, C, H, W)
with torch.no_grad():
    seq = hf_model.videomae(hf_clips).last_hidden_state      # (B, N, hidden)
    logits = hf_model(hf_clips).logits
print("VideoMAE output tokens:", tuple(seq.shape), "| tubelets:", (28 // 4) * (28 // 7) * (28 // 7))
print("its head reads token 0, a patch token:", torch.allclose(logits, hf_model.classifier(seq[:, 0]), atol=1e-6))

# %% [markdown]
# Which patch? Tokens come in (t h w) order, so token 0 is the tubelet at (t, h, w) = (0, 0, 0):
# frames 0-3, rows 0-6, columns 0-6, the top-left corner of the first four slices. In AdrenalMNIST3D
# the gland sits in the middle of the volume, and that corner is **empty in every clip of every split**:

# %%
data = loaders("adrenal", seed=0)                             # train / val / test loaders, 28³ clips
for s, loader in data.items():
    xs = torch.cat([xb for xb, _ in loader])
    g = gland_tokens(xs)                                      # (clips, 112) bool: tubelet holds gland voxels
    print(f"{s:>5}: {len(xs):4d} clips | token 0 holds gland voxels in {int(g[:, 0].sum())} | "
          f"gland tubelets per clip {g.float().sum(1).mean():.1f} of 112")

# %% [markdown]
# So in a model without a CLS token, token 0 enters the encoder as the *same vector for every clip*
# (the tubelet embedding of an all-zero cube, which is just the convolution's bias, plus position 0).
# That is exactly what a CLS token is: a clip-independent input that learns about the clip only
# through attention. On this data token 0 is **a CLS token in disguise**, with one difference: no
# training signal asked it to summarise anything. We will measure what that means below.

# %%
mean_model = ViViT(pool="mean", dim=64, depth=4, heads=4)
first = mean_model.pos(mean_model.embed(data["test"].dataset.tensors[0][:64]))[:, 0]   # (64, D)
print("token 0 is identical for 64 test clips before the encoder:", torch.allclose(first, first[:1].expand_as(first)))

# %% [markdown]
# ## 6. Train the three read-outs (live, small)
#
# Same ViViT (tubelet 4×7×7, 112 tokens, dim 64, depth 4, 4 heads, learned positions), same recipe
# (AdamW, lr 1e-3, warm-up + cosine, 5 epochs, weights chosen on validation AUC, test evaluated once),
# only `pool` changes. One seed here; the 3-seed sweep is in section 9. Training these three models
# is the slow part of this notebook, which runs in about a minute on a 2-core CPU.

# %%
EPOCHS = 5
cfg = TrainConfig(epochs=EPOCHS, lr=1e-3, seed=0, progress=False)   # no bar: the cell output is checked
models, results = {}, {}


def train(kind):
    """Build ViViT(pool=kind), train it with cfg, keep the model and its TrainResult."""
    seed_everything(0)
    models[kind] = ViViT(pool=kind, dim=64, depth=4, heads=4)
    results[kind] = fit(models[kind], data["train"], data["val"], cfg, test_loader=data["test"])


train("cls")

# %%
train("mean")

# %%
train("attn")

# %% tags=["nbval-ignore-output"]
for kind, r in results.items():
    print(f"pool={kind:<5} best epoch {r.best_epoch} | val AUC {r.best_val['auc']:.3f} | "
          f"test AUC {r.test['auc']:.3f} ACC {r.test['acc']:.3f}   (seed 0, {device}, {EPOCHS} epochs)")

# %%
print("every read-out learns (test AUC >= 0.65):", all(r.test["auc"] >= 0.65 for r in results.values()))

# %% [markdown]
# ## 7. Where does each read-out look?
#
# For the CLS model, take the attention of the CLS query in the **last block** (the only row of that
# block the head uses, section 2), average it over the 4 heads, and drop the CLS's weight on itself.
# For the attention-pool model, take the pool's softmax weights. Both are distributions over the 112
# tubelets; reshape them to the (t, h, w) grid of 7 × 4 × 4 and draw one small map per time step.
# We plot **weight × 112**, so 1 means "as much as mean pooling gives every token" (each row has its
# own colour bar). The first row shows, for reference, how often each tubelet holds gland voxels.
# (`vtlib.experiments.pooling.readout_weights` does the same for the sweep.)

# %%
x_test = data["test"].dataset.tensors[0]                       # (298, 1, 28, 28, 28)
gland = gland_tokens(x_test)                                    # (298, 112) bool
with torch.no_grad():
    m = models["cls"].eval()
    with record_attention(m) as maps:                           # every attention keeps its softmax map
        m(x_test.to(device))                                    # 4 blocks x (298, heads, 113, 113)
    w_cls = maps[-1][:, :, 0, 1:].mean(1).cpu()                 # last block, CLS query row, patch keys: (298, 112)

    m = models["attn"].eval()
    pool_input = m.norm(m.encoder(m.pos(m.embed(x_test.to(device)))))   # (298, 112, 64): what the pool sees
    _, w = m.pool(pool_input, return_weights=True)              # (298, heads=1, 112)
    w_attn = w.mean(1).cpu()                                    # (298, 112), each row sums to 1
print("CLS weights:", tuple(w_cls.shape), "| attention-pool weights:", tuple(w_attn.shape))


def show_token_maps(rows, title, grid=(7, 4, 4), vmin=0.0):
    """rows: name -> (N,) values in (t h w) order; one row of panels per entry, one panel per t."""
    nt, nh, nw = grid
    fig, axes = plt.subplots(len(rows), nt, figsize=(1.25 * nt + 1, 1.35 * len(rows) + 0.4), squeeze=False)
    for r, (name, values) in enumerate(rows.items()):
        maps = values.reshape(nt, nh, nw)
        for t in range(nt):
            ax = axes[r, t]
            im = ax.imshow(maps[t], vmin=vmin, vmax=float(maps.max()), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={t}", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
        fig.colorbar(im, ax=axes[r].tolist(), shrink=0.9, pad=0.02)
    fig.suptitle(title, fontsize=10)
    plt.show()


show_token_maps({"gland share": gland.float().mean(0),
                 "CLS attn ×112": w_cls.mean(0) * 112,
                 "attn pool ×112": w_attn.mean(0) * 112},
                "averaged over the 298 test clips")

# %% [markdown]
# The same maps for a single test clip:

# %%
i = int(torch.nonzero(data["test"].dataset.tensors[1] == 1)[0])   # the first test clip with hyperplasia
show_token_maps({"gland share": gland[i].float(), "CLS attn ×112": w_cls[i] * 112,
                 "attn pool ×112": w_attn[i] * 112}, f"test clip {i} (label 1)")

# %% [markdown]
# Two numbers summarise a map: the share of the weight that lands on tubelets holding gland voxels
# (for mean pooling that share is simply the fraction of such tubelets), and the **effective number
# of tokens read**, exp(entropy) of the weights (112 for mean pooling, 1 for a single token).

# %% tags=["nbval-ignore-output"]
stats = {"mean": weight_stats(torch.full_like(w_cls, 1 / 112), gland),
         "cls": weight_stats(w_cls, gland), "attn": weight_stats(w_attn, gland)}
for kind, s in stats.items():
    print(f"pool={kind:<5} weight on gland tubelets {s['gland_share']:.3f} | effective tokens read {s['eff_tokens']:.1f}")
print(f"attention-pool weights x 112, over all test clips and tubelets: {112 * w_attn.min():.2f} to {112 * w_attn.max():.2f}")

# %%
print("CLS attention favours gland tubelets over uniform weights:", stats["cls"]["gland_share"] > stats["mean"]["gland_share"])
print("the attention pool stays close to mean pooling (> 100 effective tokens of 112):", stats["attn"]["eff_tokens"] > 100)

# %% [markdown]
# What this shows (seed 0, CPU, 5 epochs; the sweep in section 9 repeats it over 3 seeds):
#
# - **The CLS token is selective.** In the last block it puts 0.28 of its weight on the tubelets that
#   hold gland voxels, twice the 0.14 that uniform weights would give, and most of that on one or two
#   tubelets at the centre of the gland (time step 3, the middle slices); it effectively reads 86 of
#   the 112 tokens, the rest of its weight spread thinly over the background.
# - **The attention pool barely moved away from mean pooling.** Its query starts small (std 0.02), so
#   its weights start uniform (section 4), and training gave it little reason to change them: they
#   stay between 0.79 and 1.15 times 1/112, if anything a little *lower* on the gland (0.13 of the
#   weight on 0.14 of the tubelets). It trains as "mean pooling plus a linear layer".
# - Neither map explains a decision. Attention weights say where a read-out *reads*, not what it found
#   there, and after 4 blocks of global attention every token already carries information from
#   everywhere (next section).

# %% [markdown]
# ## 8. The token-0 pitfall, measured
#
# Take the trained **mean-pooled** model and make the bug on purpose: keep its weights and its head,
# but read `x[:, 0]` instead of the mean: swap its pool for `FirstToken`
# (`vtlib.experiments.pooling`), whose `forward` is just `return x[:, 0]`.
# Compare the test AUC, and how many test clips keep their predicted class.

# %%
right = evaluate(models["mean"], data["test"], "binary-class")
keep, models["mean"].pool = models["mean"].pool, FirstToken()     # the bug, on purpose: read x[:, 0]
wrong = evaluate(models["mean"], data["test"], "binary-class")
models["mean"].pool = keep                                         # put the mean back
agree = (right["scores"].argmax(1) == wrong["scores"].argmax(1)).mean()

# %% tags=["nbval-ignore-output"]
print(f"mean read-out: test AUC {right['auc']:.3f} | read at token 0: test AUC {wrong['auc']:.3f}, "
      f"same predicted class for {agree:.1%} of test clips")
print(f"cosine similarity between patch outputs of a clip: {patch_similarity(models['mean'], x_test):.3f}")

# %%
print("reading token 0 still gives a working classifier here (AUC >= 0.65):", wrong["auc"] >= 0.65)
print("and its test AUC is within 0.03 of the mean read-out:", abs(wrong["auc"] - right["auc"]) < 0.03)

# %% [markdown]
# On this data the bug is **almost silent**, and we can see why:
#
# 1. token 0's input is the same for every clip (section 5): a CLS token in disguise;
# 2. after 4 blocks of global attention, the patch outputs of one clip point in nearly the same
#    direction (cosine similarity above). Every token has become a summary of the whole clip, so any
#    one of them, token 0 included, is close to their mean.
#
# Is token 0 special? Read the head at **each** of the 112 tokens in turn:

# %%
token_auc = token_readout_aucs(models["mean"], data["test"])          # (112,)
show_token_maps({"test AUC": token_auc}, "mean-pooled model, head read at each token (0.5 = chance)", vmin=0.5)

# %% tags=["nbval-ignore-output"]
print(f"test AUC when reading one token: min {token_auc.min():.3f}, median {token_auc.median():.3f}, "
      f"max {token_auc.max():.3f}; token 0: {token_auc[0]:.3f}")

# %% [markdown]
# The spread over tokens is small too. So what does the pitfall cost? Here, a thousandth or two of AUC,
# which is exactly why it survives: a run looks fine and nobody checks the read-out. It is still a
# bug. The head reads a different quantity than the one it was trained on, and the agreement only
# holds because of two facts about *this* data and *this* model (an empty corner, tokens that have
# mixed into near-copies). Neither is promised elsewhere: in a video whose first tubelet shows real
# content, or a shallow model whose tokens are still local, token 0 would be one corner of the scene
# (we do not measure that case here). Notebook 08 fine-tunes VideoMAE the safe way, with mean pooling.
# The sweep below also trains a fourth model that reads token 0 **from the start** (what
# `use_mean_pooling=False` does when fine-tuning): the head is then trained on that token, and the
# encoder learns to route the clip's summary into it.

# %% [markdown]
# ## 9. Three seeds: `python -m vtlib.experiments.pooling`
#
# The command trains the same ViViT with `pool="cls"`, `"mean"`, `"attn"`, and `"token0"` (no CLS,
# head on `x[:, 0]`, trained that way), 10 epochs each, seeds 0, 1, 2, one CPU thread, and writes
# `results/pooling.csv` plus `results/pooling_summary.csv`. Besides test AUC/ACC (weights chosen on
# validation) each run records a linear probe (a logistic regression fitted on the frozen TRAIN
# features, scored on test) on the pooled feature and on the first patch token's feature, the read-out
# statistics of section 7, and for the mean model the token-0 misread of section 8.

# %%
csv_path = RESULTS / "pooling.csv"
if csv_path.exists():
    runs = read_csv(csv_path)
    summary = read_csv(csv_path.with_name("pooling_summary.csv"))
    r0 = runs[0]
    print(f"{len(runs)} runs | seeds {sorted({int(r['seed']) for r in runs})} | {r0['epochs']} epochs | "
          f"device {r0['device']} | dim {r0['dim']}, depth {r0['depth']}")
    as_num = lambda s: {**s, "n": int(s["n"]), **{k: float(v) for k, v in s.items() if k.endswith(("_mean", "_std")) and v}}
    trained = [as_num(s) for s in summary if s["config"] != "mean_read_token0"]
    print(format_summary(trained, ("test_auc", "test_acc", "probe_pooled_auc", "probe_patch0_auc")))
    print()
    print(format_summary(trained, ("gland_share", "eff_tokens", "patch_cos")))
    print()
    print(format_summary([as_num(s) for s in summary if s["config"] == "mean_read_token0"],
                         ("test_auc", "test_acc", "agree", "any_token_auc_min", "any_token_auc_max")))
else:
    runs, summary = None, None
    print("results/pooling.csv not found: run `python -m vtlib.experiments.pooling` to make it")

# %%
if summary is not None:
    auc = {s["config"]: float(s["test_auc_mean"]) for s in summary}
    sd = {s["config"]: float(s["test_auc_std"]) for s in summary}
    print("ranking by mean test AUC:", " > ".join(sorted(auc, key=auc.get, reverse=True)))
    spread = max(auc[k] for k in ("cls", "mean", "attn")) - min(auc[k] for k in ("cls", "mean", "attn"))
    print("cls, mean, attn: gap between mean AUCs smaller than every seed std:", spread < min(sd[k] for k in ("cls", "mean", "attn")))
    print("misreading token 0 costs the mean model under 0.02 AUC:", auc["mean"] - auc["mean_read_token0"] < 0.02)

# %% [markdown]
# **What holds** (AdrenalMNIST3D 28³, ViViT dim 64 / depth 4, 10 epochs, seeds 0-2, CPU):
#
# - **No read-out wins.** Mean test AUC ± std over 3 seeds: CLS 0.774 ± 0.058, mean 0.775 ± 0.022,
#   attention pool 0.787 ± 0.075, token 0 (trained that way) 0.774 ± 0.013; test ACC 0.76-0.78 against
#   a majority baseline of 0.768. The spread between the means (0.013) is a fraction of one seed's
#   standard deviation. Single runs range from 0.70 to 0.83 <!-- from: results/pooling.csv -->, because the epoch chosen on 98
#   validation clips varies from 1 to 7: that moves test AUC more than the read-out does. Linear probes
#   on the frozen features tell the same story (0.77-0.80 for every read-out).
# - **With the test set's own noise counted** (notebook 13: approximate 95 % intervals of the paired difference; these sweeps kept per-seed AUCs, not per-clip scores): attention pool minus CLS +0.013 [-0.134, +0.160], not resolved; <!-- from: notebook 13 --> the interval is wide enough to hide a
#   real gap of 0.1 either way.
# - **The CLS token is selective, the attention pool is not, in every seed.** The CLS query puts
#   0.25 ± 0.03 of its last-block weight on gland tubelets (uniform: 0.138) and effectively reads
#   91 ± 7 tokens; the attention pool puts 0.140 there and reads 111.96 of 112.
# - **Reading token 0 is nearly free here.** The mean-pooled model read at token 0 scores
#   0.774 ± 0.021 against 0.775 ± 0.022 read correctly, and keeps the predicted class of 98 % of test
#   clips; reading *any* single token gives 0.72-0.79. Within a clip the final patch outputs have a
#   cosine similarity of 0.93-0.99, and a probe on the first patch token does as well as one on the
#   pooled feature. Trained to read token 0 from the start, the model matches the others: on this
#   data the always-empty corner tubelet works as a CLS token.
#
# **What it does not show.** 98 validation clips make the epoch selection noisy, and three seeds with
# a standard deviation of a few hundredths cannot separate read-outs that differ by less than that.
# The gland tubelets are a crude "where is the signal" mask. None of this says how the read-outs
# compare at Kinetics scale, with real motion, or with a pre-trained encoder.

# %% [markdown]
# ## Exercises
#
# Each exercise has a check from `vtlib.exercises.nb03` that prints one line: "correct", or "not yet" with a
# hint. The cells below hold stubs; write your code in place of `raise NotImplementedError` and run the
# cell again. (Reference solutions are in `vtlib/exercises/solutions/nb03.py`; try first.)
#
# 1. **Mean pooling with padding.** Clips of different lengths are padded to the same number of tokens,
#    and `keep` (B, N) is True for a clip's real tokens. Write `masked_mean_pool(x, keep)`: `(B, N, D)` →
#    `(B, D)`, each clip's mean over its real tokens only, whatever the padding holds.
# 2. **Several queries.** Write `multi_query_pool(x, queries)`: `Q` learned queries `(Q, D)`, each one the
#    single-head attention pool of section 4 (no projections) over all the tokens, giving `(B, Q, D)`, one
#    pooled vector per query. With `Q = 1` it must agree with `attention_pool`.
# 3. **Which outputs does a read-out use?** Section 2 found that with a CLS read-out the patch outputs of
#    the *last* block get no gradient. Write `block_patch_grads(model, clips)`: for each block of a ViViT,
#    the norm of the gradient of `model(clips).sum()` with respect to that block's outputs at the patch
#    tokens (the CLS left out). Run it on `grad_model(pool)` (an untrained ViViT of depth 3) for
#    `pool` in "cls", "mean" and "attn" with `grad_clips()`, and fill `no_gradient`: for each pool, the
#    list of blocks (0-based) whose patch outputs get no gradient.
# 4. **How far must the query grow? (an experiment).** Section 7 found the trained attention pool almost as
#    uniform as mean pooling. Measure how selective an *untrained* pool is as its query grows. Write
#    `effective_tokens(weights)`: `(B, N)` → `(B,)`, exp of the entropy of each row (a weight of 0 adds
#    nothing), and `pool_spread(x, stds, seed)`: for each std, `torch.manual_seed(seed)` and then
#    `AttentionPool(dim=D, init_std=std)`, its weights on `x`, and the mean over clips of the effective
#    tokens. Run it on the tokens `x` of section 2 for the stds in `STDS`, and set `half_std`: the smallest
#    one at which the pool reads fewer than half of the 112 tokens. How does the default 0.02 compare?

# %%
from vtlib.exercises.nb03 import check_masked_mean_pool, check_multi_query_pool


def masked_mean_pool(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), keep (B, N) bool (True = real token) -> (B, D): the mean over each clip's real tokens."""
    raise NotImplementedError


_ = check_masked_mean_pool(masked_mean_pool)

# %%
def multi_query_pool(x: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), queries (Q, D) -> (B, Q, D): one single-head attention pool per query."""
    raise NotImplementedError


_ = check_multi_query_pool(multi_query_pool)

# %%
from vtlib.exercises.nb03 import check_block_patch_grads, grad_clips, grad_model


def block_patch_grads(model: ViViT, clips: torch.Tensor) -> list[float]:
    """For each block of model.encoder: the norm of d model(clips).sum() / d (block output) at the patch tokens."""
    raise NotImplementedError


print("grad_model('cls'):", len(grad_model("cls").encoder.blocks), "blocks | grad_clips():", tuple(grad_clips().shape))
# try: block_patch_grads(grad_model("cls"), grad_clips())
no_gradient = None                    # a dict: pool -> list of blocks, e.g. {"cls": [...], "mean": [...], "attn": [...]}
_ = check_block_patch_grads(block_patch_grads, no_gradient)

# %%
from vtlib.exercises.nb03 import STDS, check_pool_spread


def effective_tokens(weights: torch.Tensor) -> torch.Tensor:
    """weights (B, N), each row summing to 1 -> (B,): exp of the entropy of each row."""
    raise NotImplementedError


def pool_spread(x: torch.Tensor, stds, seed: int = 0) -> list[float]:
    """For each std: mean effective tokens of a fresh AttentionPool(dim=D, init_std=std) on x (B, N, D)."""
    raise NotImplementedError


print("query stds to try:", STDS)
# try: pool_spread(x, STDS)
half_std = None
_ = check_pool_spread(effective_tokens, pool_spread, half_std)

# %% [markdown]
# ## Summary
#
# - A **CLS token** is one learned vector prepended to the tokens (N + 1 in every block); the head
#   reads output 0. In the last block only the CLS row matters: the patch outputs get no gradient.
# - **Mean pooling** averages the N outputs: no parameters, no extra token, blind to order.
# - **Attention pooling** lets a learned query weight the N outputs after the encoder (3D² + 4D
#   parameters here). With a zero query it *is* mean pooling, and that is where it starts.
# - `x[:, 0]` is a CLS read-out only if a CLS token was prepended. Without one (VideoMAE, issue
#   #21016) it is the first patch token. On AdrenalMNIST3D that patch is empty in every clip, the
#   tokens mix into near-copies, and the misread costs almost nothing, which is how such a bug survives.
# - On AdrenalMNIST3D with a small ViViT, the three read-outs reach the same test AUC within the seed
#   spread; the choice matters less here than the encoder and the data.
#
# **Next:** notebook 04 builds the attention that all three read-outs rely on, from scratch.
#
# **References**
# - A. Arnab et al., ViViT: A Video Vision Transformer, ICCV 2021 (CLS token; Model 3 drops it;
#   Model 2 reads each frame by CLS or global average pooling).
# - A. Piergiovanni, W. Kuo, A. Angelova, Rethinking Video ViTs: Sparse Video Tubes for Joint Image and
#   Video Learning (TubeViT), CVPR 2023 (attention pooling + FC head).
# - Z. Tong et al., VideoMAE, NeurIPS 2022 (no CLS token; mean pooling for fine-tuning).
# - D. Neimark et al., Video Transformer Network (VTN), 2021 (a [CLS] token on a temporal encoder
#   over per-frame features).
# - Hugging Face `transformers` issue #21016 (VideoMAE has no CLS token; `[:, 0]` is a patch token)
#   and `VideoMAEForVideoClassification` (`use_mean_pooling`).
