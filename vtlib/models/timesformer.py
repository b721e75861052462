"""TimeSformer: divided space-time attention and four alternatives (notebook 07).

Bertasius, Wang & Torresani, "Is Space-Time Attention All You Need for Video Understanding?",
ICML 2021, arXiv 2102.05095. One backbone; ``attention=`` picks the scheme of the paper's Table 1:

    "space"         space only (S): each frame is a separate image with its own copy of the CLS
                    token and no time embedding; the per-frame CLS features are averaged at the end.
                    Frame order cannot matter.
    "joint"         joint space-time (ST): every token attends to all 1 + T*N tokens (ViViT Model 1).
    "divided"       divided space-time (T+S): in every block, temporal attention (a patch attends to
                    the T patches at its spatial position), then spatial attention (the N patches of
                    its frame and the CLS), then the MLP. Each attention has its own LayerNorm and
                    projections.
    "local_global"  sparse local-global (L+G), small-scale version: local attention inside the four
                    windows of T x nh/2 x nw/2 patches (all frames, one quadrant of the patch grid),
                    then global attention over the patches that share (t mod 2, h mod 2, w mod 2),
                    i.e. a stride of 2 along time, height and width. The paper's local neighbourhood
                    is F x H/2 x W/2 patches too; here the windows do not overlap, so both steps
                    are plain reshapes. T, nh and nw must be even.
    "axial"         axial (T+W+H): attention along time, then along the width, then the height.

Shapes: x (B, C, T, H, W) -> each frame cut into p x p patches by one Conv2d (``FrameEmbed``)
-> tokens (B, T*N, D) in (t h w) order, N = nh*nw = (H/p)(W/p). Embeddings as the reference code:
``space_pos`` (1, N+1, D), a learned spatial position for the CLS and each patch, shared by all
frames; ``time_pos`` (1, T, D), a learned time embedding added to the patches only and
**initialised to zero** (the reference's ``pos_embed`` and ``time_embed``; the model lists them,
with ``cls_token``, in ``no_weight_decay``, so ``vtlib.train`` does not weight-decay them).

The factorised schemes run their sub-attentions on reshaped views, never with Python loops:

    time    "b (t h w) d -> (b h w) t d"     B*N sequences of T tokens
    space   "b (t h w) d -> (b t) (h w) d"   B*T sequences of N tokens
    width   "b (t h w) d -> (b t h) w d"     height  "b (t h w) d -> (b t w) h d"

**The CLS token**, as the reference code (and Hugging Face) handle it: it is left out of every
sub-attention but the last; in the last one (spatial for "divided") it is repeated once per group
(per frame), joins each group's attention, and its G outputs are averaged back into one CLS update.
The paper's equations instead let the patches also see the CLS as a key in temporal attention:
``cls_in_time=True`` adds it as a key (its own output there is discarded) to every sub-attention.
Comparisons per patch query in one block, for N patches per frame and T frames (paper, section 3):

    joint  N*T + 1     divided  N + T + 1 (reference code)  or  N + T + 2 (cls_in_time=True)

:func:`attention_masks` draws these patterns; the tests count them in the model's own attention maps.

**Attention maps** (``vtlib.attention.record_attention``): block i records one map per sub-attention,
in the order applied, named ``blocks.i.mixers.<name>.attn`` for the earlier ones and ``blocks.i.attn``
for the last (and for "joint" / "space"). Each is (B*G, heads, L', L'): the G groups of L patches of
:data:`GROUPINGS`, clip-major, L' = L (+1 at index 0 where the CLS joined); for "space" G = T frames,
for "joint" G = 1. ``rearrange(w, "(b g) h i j -> b g h i j", b=B)`` splits the groups.

**Zero-initialised temporal projection.** In the factorised blocks the last sub-attention is named
like a ViT block's (``norm1``, ``attn``); every earlier one is a new branch in ``block.mixers`` that
ends in an extra Linear ``fc`` (the reference's ``temporal_fc``), initialised to zero. At init the
temporal branch therefore adds exactly 0: with ``time_pos`` also zero, a divided TimeSformer *is*
its spatial part, an image ViT applied frame by frame (given a still clip, it returns the image
model's logits). Starting from ImageNet weights, training grows the temporal path from zero
without first destroying the spatial features. ``temporal_init="default"`` keeps PyTorch's init
and ``time_init="normal"`` draws the time embedding like ``space_pos``. (At the very first step the
gradient reaches ``fc`` but not the temporal attention behind it. Trained from scratch on the synthetic
direction task, the zero ``fc`` cost reliability: see ``vtlib.experiments.timesformer``, notebook 07.)

Parameters per block beyond a ViT block (width D): divided and local-global +5D^2 + 7D (one more
attention, LayerNorm and ``fc``), axial twice that, as in Table 1 (121.4M / 156.8M vs 85.9M).
Differences from the reference worth knowing: the space-only model averages the per-frame CLS
*after* the final LayerNorm (the reference averages all tokens over frames before it; Hugging Face
does not average at all and returns one prediction per frame); stochastic depth drops each branch
per clip (the reference drops per grouped sequence, e.g. per spatial position in temporal attention).
"""
from __future__ import annotations

import torch
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from vtlib.attention import MultiHeadAttention
from vtlib.block import MLP, Block, DropPath, drop_path_rates, mlp_hidden_dim
from vtlib.errors import bad_arg, check_choice, check_positive_int, check_rank
from vtlib.position import trunc_normal_
from vtlib.shapes import check_clip_shape
from vtlib.tokens import FrameEmbed

ATTENTIONS = ("space", "joint", "divided", "local_global", "axial")
# The sub-attentions of each factorised scheme, in the order every block applies them.
SCHEMES: dict[str, tuple[str, ...]] = {
    "divided": ("time", "space"),
    "local_global": ("local", "global"),
    "axial": ("time", "width", "height"),
}
# How a sub-attention groups the patch tokens: (B, T*N, D) in (t h w) order -> (B*G, L, D).
GROUPINGS: dict[str, str] = {
    "time": "b (t h w) d -> (b h w) t d",
    "space": "b (t h w) d -> (b t) (h w) d",
    "width": "b (t h w) d -> (b t h) w d",
    "height": "b (t h w) d -> (b t w) h d",
    "local": "b (t h2 h1 w2 w1) d -> (b h2 w2) (t h1 w1) d",     # h = h2 * nh/2 + h1: 2 x 2 windows
    "global": "b (t t1 h h1 w w1) d -> (b t1 h1 w1) (t h w) d",  # t1 = t mod 2 (...): stride 2
}


def _grid(grid) -> tuple[int, int, int]:
    if not isinstance(grid, (tuple, list)) or len(grid) != 3:
        raise bad_arg("grid", "a patch grid (T, nh, nw)", repr(grid), "pass model.grid, e.g. (8, 4, 4)")
    for v in grid:
        check_positive_int("grid", v)
    return tuple(int(v) for v in grid)  # type: ignore[return-value]


def _sizes(name: str, grid) -> dict[str, int]:
    """The einops axis sizes that pin down GROUPINGS[name] for a (T, nh, nw) grid."""
    T, nh, nw = _grid(grid)
    if name == "local":
        return dict(t=T, h2=2, h1=nh // 2, w2=2)
    if name == "global":
        return dict(t=T // 2, t1=2, h=nh // 2, h1=2, w1=2)
    return dict(t=T, h=nh)


def _check_grouping(name: str, grid) -> int:
    """Validate a sub-attention name and grid; return T*N."""
    check_choice("name", name, list(GROUPINGS))
    T, nh, nw = _grid(grid)
    if name in ("local", "global"):
        _check_local_global(grid)
    return T * nh * nw


def group(x: Tensor, name: str, grid) -> Tensor:
    """Patch tokens (B, T*N, D), (t h w) order -> (B*G, L, D): the G sequences ``name`` attends within."""
    n = _check_grouping(name, grid)
    check_rank("x", x, 3, "B T*N D")
    if x.shape[1] != n:
        raise bad_arg("x", f"(B, T*N = {n}, D) patch tokens for grid {tuple(grid)} (no CLS)",
                      f"shape {tuple(x.shape)}", "drop the CLS token (x[:, 1:]) or pass the model's grid")
    return rearrange(x, GROUPINGS[name], **_sizes(name, grid))


def ungroup(x: Tensor, name: str, grid, batch: int) -> Tensor:
    """Inverse of :func:`group`: (B*G, L, D) -> (B, T*N, D) in (t h w) order."""
    n = _check_grouping(name, grid)
    check_rank("x", x, 3, "B*G L D")
    check_positive_int("batch", batch)
    if x.shape[0] * x.shape[1] != batch * n or x.shape[0] % batch:
        raise bad_arg("x", f"(B*G, L, D) groups holding batch * T*N = {batch} * {n} tokens",
                      f"shape {tuple(x.shape)}", "pass what group() returned (without a prepended CLS)")
    left, right = GROUPINGS[name].split("->")
    return rearrange(x, f"{right.strip()} -> {left.strip()}", b=batch, **_sizes(name, grid))


def group_ids(name: str, grid) -> Tensor:
    """(T*N,) int64: the index of the group each patch token falls in for sub-attention ``name``."""
    T, nh, nw = _grid(grid)
    n = T * nh * nw
    members = group(torch.arange(n).view(1, n, 1), name, grid)          # (G, L, 1) token indices
    ids = torch.empty(n, dtype=torch.long)
    ids[members.flatten()] = torch.arange(members.shape[0]).repeat_interleave(members.shape[1])
    return ids


def _check_local_global(grid) -> None:
    T, nh, nw = _grid(grid)
    for axis, size in (("T (frames)", T), ("nh = H / patch", nh), ("nw = W / patch", nw)):
        if size % 2:
            raise bad_arg("video_shape", f"an even {axis} for attention='local_global' (2 x 2 windows, "
                          "stride 2)", f"{axis.split()[0]} = {size} (grid {(T, nh, nw)})",
                          "use an even frame count (vtlib.data.sample_frames) and patch grid, e.g. 8 frames "
                          "of 28 x 28 with patch 7")


def attention_masks(attention: str, grid, cls_in_time: bool = False) -> dict[str, Tensor]:
    """Who each query compares with, per sub-attention of one block: bool (1+T*N, 1+T*N) masks.

    Index 0 is the CLS token, then the patches in (t h w) order. Row i, column j True: query i
    scores key j in that sub-attention. The row sums of all masks together are the comparisons per
    query (N*T + 1 for "joint", N + T + 1 or N + T + 2 for "divided"). For "space" the CLS column
    stands for the query's own frame's CLS copy (each frame has one).
    """
    check_choice("attention", attention, ATTENTIONS)
    T, nh, nw = _grid(grid)
    n = T * nh * nw
    if attention == "joint":
        return {"joint": torch.ones(1 + n, 1 + n, dtype=torch.bool)}
    names = ("space",) if attention == "space" else SCHEMES[attention]
    if attention == "local_global":
        _check_local_global(grid)
    out = {}
    for i, name in enumerate(names):
        ids = group_ids(name, grid)
        m = torch.zeros(1 + n, 1 + n, dtype=torch.bool)
        m[1:, 1:] = ids[:, None] == ids[None, :]
        if i == len(names) - 1:
            m[0, :] = True                         # the CLS copies, pooled: every patch and the CLS
            m[1:, 0] = True
        elif cls_in_time:
            m[1:, 0] = True                        # the CLS as an extra key, not a query
        out[name] = m
    return out


class Mixer(nn.Module):
    """An extra sub-attention of a factorised block: LayerNorm -> attention within groups -> fc.

    ``fc`` (Linear(D, D), the reference's ``temporal_fc``) is the branch's output layer, zero at init.
    """

    def __init__(self, *, name: str, dim: int, heads: int, qkv_bias: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        check_choice("name", name, list(GROUPINGS))
        self.name = name
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, qkv_bias=qkv_bias)
        self.fc = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class FactorisedBlock(nn.Module):
    """Pre-norm block on (B, 1 + T*N, D), CLS first: the sub-attentions of ``scheme``, then the MLP.

    Every sub-attention ``name`` but the last is a :class:`Mixer` in ``mixers`` (a ModuleDict, e.g.
    ``mixers["time"]`` for "divided"); the last one uses ``norm1`` and ``attn``, the names of a ViT
    block, so an image model's block loads into it (``strict=False``: only ``mixers`` is new).

        x = x + mixer.fc(ungroup(mixer.attn(group(mixer.norm(x)))))   for each mixer; no CLS
        x = x + ungroup(attn(group(norm1(x))))   CLS repeated per group, its outputs averaged back
        x = x + mlp(norm2(x))

    Delete a mixer (``del block.mixers["time"]``) and the block runs without it.
    forward(x) -> (B, 1+T*N, D). Attention maps: see the module docstring.
    """

    def __init__(self, *, dim: int, heads: int, grid, scheme: str = "divided", mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path: float = 0.0, eps: float = 1e-6,
                 cls_in_time: bool = False, temporal_init: str = "zeros") -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_choice("scheme", scheme, list(SCHEMES))
        check_choice("temporal_init", temporal_init, ("zeros", "default"))
        check_choice("cls_in_time", cls_in_time, (False, True))
        self.grid, self.dim, self.scheme, self.cls_in_time = _grid(grid), dim, scheme, cls_in_time
        if scheme == "local_global":
            _check_local_global(self.grid)
        *extra, self.last = SCHEMES[scheme]
        self.mixers = nn.ModuleDict({n: Mixer(name=n, dim=dim, heads=heads, qkv_bias=qkv_bias, eps=eps)
                                     for n in extra})
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim=dim, hidden_dim=mlp_hidden_dim(dim, mlp_ratio))
        self.drop_path = DropPath(drop_path)
        if temporal_init == "zeros":                 # every new branch starts as a residual identity
            for m in self.mixers.values():
                nn.init.zeros_(m.fc.weight)
                nn.init.zeros_(m.fc.bias)

    def _attend(self, x: Tensor, name: str, norm: nn.Module, attn: nn.Module, with_cls: bool,
                pool_cls: bool) -> tuple[Tensor, Tensor]:
        """One sub-attention: the CLS update (B, 1, D) (zero unless pool_cls) and the patches' (B, T*N, D)."""
        B = x.shape[0]
        h = norm(x)
        seqs = group(h[:, 1:], name, self.grid)                                # (B*G, L, D)
        G = seqs.shape[0] // B
        if with_cls:
            seqs = torch.cat([repeat(h[:, :1], "b 1 d -> (b g) 1 d", g=G), seqs], dim=1)
        out = attn(seqs)
        cls_out = reduce(out[:, :1], "(b g) 1 d -> b 1 d", "mean", b=B) if pool_cls else x.new_zeros(B, 1, self.dim)
        return cls_out, ungroup(out[:, 1:] if with_cls else out, name, self.grid, B)

    def forward(self, x: Tensor) -> Tensor:
        T, nh, nw = self.grid
        check_rank("x", x, 3, "B 1+T*N D")
        if tuple(x.shape[1:]) != (1 + T * nh * nw, self.dim):
            raise bad_arg("x", f"(B, 1 + T*N = 1 + {T}*{nh * nw}, D={self.dim}) tokens, CLS first, (t h w) order",
                          f"shape {tuple(x.shape)}", "build the block with the model's patch grid and width")
        for name, m in self.mixers.items():             # 1-2 extra sub-attentions per block, not tokens
            cls_out, out = self._attend(x, name, m.norm, m.attn, self.cls_in_time, False)
            x = x + self.drop_path(torch.cat([cls_out, m.fc(out)], dim=1))     # one draw per clip
        cls_out, out = self._attend(x, self.last, self.norm1, self.attn, True, True)
        x = x + self.drop_path(torch.cat([cls_out, out], dim=1))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformer(nn.Module):
    """TimeSformer on clips (B, C, T, H, W) -> logits (B, num_classes); see the module docstring.

    ``video_shape`` = (T, H, W) of the clips (sample frames first, e.g. ``vtlib.data.sample_frames``);
    ``patch``: p x p patches per frame; ``attention``: one of ATTENTIONS; ``cls_in_time``: the paper's
    equation (CLS also a key in the earlier sub-attentions) instead of the reference code;
    ``temporal_init``: "zeros" (reference) or "default" for the ``fc`` of the factorised blocks.
    Attention maps: ``vtlib.attention.record_attention`` (see the module docstring for names and shapes).
    """

    no_weight_decay = ("cls_token", "space_pos", "time_pos")     # see vtlib.train.param_groups

    def __init__(self, *, num_classes: int = 2, video_shape: tuple[int, int, int] = (8, 28, 28), patch: int = 7,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0, in_channels: int = 1,
                 attention: str = "divided", cls_in_time: bool = False, temporal_init: str = "zeros",
                 time_init: str = "zeros", drop_path: float = 0.0, qkv_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("depth", depth)
        check_choice("attention", attention, ATTENTIONS)
        check_choice("cls_in_time", cls_in_time, (False, True))
        check_choice("time_init", time_init, ("zeros", "normal"))
        if cls_in_time and attention not in SCHEMES:
            raise bad_arg("cls_in_time", f"False for attention={attention!r} (its CLS already joins its only "
                          "attention)", cls_in_time, "use it with 'divided', 'local_global' or 'axial'")
        self.attention, self.cls_in_time, self.dim, self.heads = attention, cls_in_time, dim, heads
        self.embed = FrameEmbed(dim=dim, patch=patch, in_channels=in_channels)
        self.video_shape = tuple(video_shape)
        self.grid = self.embed.grid(self.video_shape)                 # (T, nh, nw)
        T, nh, nw = self.grid
        if attention == "local_global":
            _check_local_global(self.grid)
        self.cls_token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, dim)))
        self.space_pos = nn.Parameter(trunc_normal_(torch.zeros(1, nh * nw + 1, dim)))   # CLS + N patches
        self.time_pos = None
        if attention != "space":
            time_std = 0.0 if time_init == "zeros" else 0.02               # zeros: starts as space-only
            self.time_pos = nn.Parameter(trunc_normal_(torch.zeros(1, T, dim), time_std))
        rates = drop_path_rates(depth, drop_path)
        if attention in SCHEMES:
            blocks = [FactorisedBlock(dim=dim, heads=heads, grid=self.grid, scheme=attention, mlp_ratio=mlp_ratio,
                                      qkv_bias=qkv_bias, drop_path=r, eps=eps, cls_in_time=cls_in_time,
                                      temporal_init=temporal_init) for r in rates]
        else:
            blocks = [Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_path=r, eps=eps)
                      for r in rates]
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    @property
    def num_frames(self) -> int:
        return self.grid[0]

    @property
    def num_patches(self) -> int:
        """N: patches per frame."""
        return self.grid[1] * self.grid[2]

    @property
    def num_tokens(self) -> int:
        """Tokens the encoder holds per clip: 1 + T*N, or T*(1 + N) for "space" (a CLS per frame)."""
        T, N = self.num_frames, self.num_patches
        return T * (1 + N) if self.attention == "space" else 1 + T * N

    def comparisons_per_patch(self) -> int:
        """Keys one patch query scores in one block, summed over its sub-attentions (paper, section 3)."""
        masks = attention_masks(self.attention, self.grid, self.cls_in_time)
        return int(sum(m[1].sum() for m in masks.values()))

    def attention_score_entries(self) -> int:
        """Entries of all attention score matrices for one clip, all blocks and heads."""
        T, N = self.num_frames, self.num_patches
        if self.attention == "joint":
            per_head = (1 + T * N) ** 2
        elif self.attention == "space":
            per_head = T * (1 + N) ** 2
        else:
            names, per_head = SCHEMES[self.attention], 0
            for name in names:
                G = int(group_ids(name, self.grid).max()) + 1
                L = T * N // G + (name == names[-1] or self.cls_in_time)
                per_head += G * L * L
        return len(self.blocks) * self.heads * per_head

    def _tokens(self, x: Tensor) -> Tensor:
        check_clip_shape(x, self.video_shape, "sample the frames first (vtlib.data.sample_frames(x, T)) or build "
                         "the model with video_shape=x.shape[2:]")
        T = self.num_frames
        patches = rearrange(self.embed(x), "b (t n) d -> b t n d", t=T)   # (B, T, N, D)
        patches = patches + self.space_pos[:, None, 1:]
        cls = self.cls_token + self.space_pos[:, :1]                       # (1, 1, D)
        if self.attention == "space":                                      # each frame is an image
            patches = rearrange(patches, "b t n d -> (b t) n d")
            return torch.cat([cls.expand(patches.shape[0], -1, -1), patches], dim=1)   # (B*T, 1+N, D)
        patches = rearrange(patches + self.time_pos[:, :, None], "b t n d -> b (t n) d")
        return torch.cat([cls.expand(patches.shape[0], -1, -1), patches], dim=1)       # (B, 1+T*N, D)

    def features(self, x: Tensor) -> Tensor:
        """Clip features (B, D)."""
        h = self._tokens(x)
        for block in self.blocks:                                          # layers, not tokens
            h = block(h)
        feats = self.norm(h)[:, 0]                                         # CLS: (B, D) or (B*T, D)
        if self.attention == "space":
            feats = reduce(feats, "(b t) d -> b d", "mean", b=x.shape[0])  # average the frames
        return feats

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
