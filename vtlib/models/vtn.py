"""VTN: Video Transformer Network (Neimark, Bar, Zohar & Asselmann, ICCVW 2021, arXiv 2102.00719).

Any image model embeds each frame on its own; a light temporal transformer with Longformer attention
(vtlib.window) reads the sequence of frame vectors, and a head classifies the CLS token:

    x (B, C, T, H, W)
      -> frames (B*T, C, H, W)              einops "b c t h w -> (b t) c h w"
      -> backbone (B*T, F) -> (B, T, F)     any 2D network, one vector per frame (FrameCNN by default)
      -> Linear F -> D (if F != D), [CLS] + frames (B, 1+T, D), + learned position per frame index
      -> depth x WindowBlock                pre-norm blocks, sliding window of ``window`` frames (w = window/2
                                            each side), the CLS a global token: O(T * window), not O(T^2)
      -> head on the CLS                    LayerNorm -> Linear(D, D) -> GELU -> Dropout -> Linear(D, classes)

Design points taken from the authors' code (released in facebookresearch/SlowFast, since removed):
the backbone is a ViT-B applied per frame with no projection after it; the temporal encoder is a
3-layer Longformer with a full window of 18 frames; the CLS is a learned ``randn`` vector with global
attention; positions are learned, indexed by the frame's index in the decoded video, with separate
reserved rows for the CLS and for padding; the head is the one above, with dropout 0.5.
Here the CLS position is the reserved row ``max_frames`` of the table (there is no padding row:
padded frames are masked out through ``keep``). The blocks are pre-norm, like the rest of vtlib, where
Hugging Face's Longformer is post-norm; the head's LayerNorm is then the encoder's final norm.

Because the frames never meet before the temporal encoder, the paper runs it three ways, all with the
same result (tested here): ``forward(x)`` end to end; ``forward_chunked(x, chunk)`` with the frames sent
through the backbone ``chunk`` at a time, so a long video fits in memory; and ``features(x)`` once,
stored, then ``classify_features(f)``, where only the small temporal encoder runs.

``global_cls=False`` makes the CLS an ordinary local token (the ablation): after one layer it has seen
only the first w frames, after k layers the first k*w. ``attention="full"`` (the other ablation) builds
``FullBlock``s instead: every token attends to every real frame, O(T^2); ``use_full_attention(model)``
swaps them into a window VTN that is already built (new weights for the blocks).
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from vtlib.attention import key_mask
from vtlib.block import MLP, Block, DropPath, drop_path_rates, mlp_hidden_dim
from vtlib.errors import bad_arg, check_choice, check_dropout, check_positive_int, check_rank
from vtlib.pooling import ClsToken
from vtlib.position import trunc_normal_
from vtlib.shapes import check_video, to_dtype_of
from vtlib.window import SlidingWindowAttention


def _check_chunk(chunk) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        raise bad_arg("chunk", "a positive int, frames per backbone call", repr(chunk),
                      "pass e.g. chunk=16 (any size gives the same result; smaller needs less memory)")


class FrameCNN(nn.Module):
    """A tiny per-frame 2D CNN: frames (N, C, H, W) -> (N, out_dim).

    [Conv2d 3x3 stride 2 -> GroupNorm(1 group) -> GELU] per entry of ``widths``, global average pool,
    Linear(widths[-1], out_dim). GroupNorm normalises each frame on its own (no batch statistics), so
    a frame's vector never depends on the other frames in the batch, in training as in evaluation.
    """

    def __init__(self, *, in_channels: int = 1, out_dim: int = 64, widths: tuple[int, ...] = (16, 32)) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_dim", out_dim)
        if isinstance(widths, int) or not isinstance(widths, (tuple, list)) or not widths:
            raise bad_arg("widths", "a non-empty tuple of positive ints", repr(widths), "pass e.g. widths=(16, 32)")
        for w in widths:
            check_positive_int("widths", w)
        self.in_channels, self.out_dim = in_channels, out_dim
        layers, prev = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1), nn.GroupNorm(1, w), nn.GELU()]
            prev = w
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(prev, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        check_rank("x", x, 4, "N C H W")
        if x.shape[1] != self.in_channels:
            raise bad_arg("x", f"{self.in_channels} channel(s) on axis 1 of (N, C, H, W)", f"shape {tuple(x.shape)}",
                          "build FrameCNN with in_channels=x.shape[1]")
        return self.fc(self.convs(x).mean(dim=(-2, -1)))


class ImageBackbone(nn.Module):
    """Wrap an image model so it returns one vector per frame: (N, C, H, W) -> (N, out_dim).

    The wrapped model's output may be a tensor, a tuple (its first element is used) or an object with
    ``last_hidden_state`` (Hugging Face). Then (N, out_dim) is used as is, tokens (N, S, out_dim) are
    read at token 0 (``tokens="cls"``, a ViT's CLS) or averaged (``tokens="mean"``), and a feature map
    (N, out_dim, h, w) is averaged over space. ``channels``: repeat single-channel frames to this many
    channels first (grayscale MedMNIST into an RGB model). ``out_dim`` is checked on every call.
    """

    def __init__(self, model: nn.Module, *, out_dim: int, tokens: str = "cls", channels: int | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise bad_arg("model", "an nn.Module mapping images (N, C, H, W) to features", type(model).__name__,
                          "pass e.g. a ViT or ResNet without its classifier")
        check_positive_int("out_dim", out_dim)
        check_choice("tokens", tokens, ("cls", "mean"))
        if channels is not None:
            check_positive_int("channels", channels)
        self.model, self.out_dim, self.tokens, self.channels = model, out_dim, tokens, channels

    def forward(self, x: Tensor) -> Tensor:
        check_rank("x", x, 4, "N C H W")
        if self.channels is not None and x.shape[1] == 1:
            x = x.expand(-1, self.channels, -1, -1)
        out = self.model(x)
        out = getattr(out, "last_hidden_state", out)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, Tensor) and out.ndim == 3:
            out = out[:, 0] if self.tokens == "cls" else out.mean(dim=1)
        elif isinstance(out, Tensor) and out.ndim == 4:
            out = out.mean(dim=(-2, -1))
        if not isinstance(out, Tensor) or out.ndim != 2 or out.shape != (x.shape[0], self.out_dim):
            got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise bad_arg("model", f"an output (N={x.shape[0]}, {self.out_dim}), tokens (N, S, {self.out_dim}) "
                          f"or a map (N, {self.out_dim}, h, w)", got,
                          "drop the classifier (e.g. num_classes=0) and set out_dim to the feature width")
        return out


class WindowBlock(nn.Module):
    """Pre-norm block with sliding-window attention on (B, L, D):

        x = x + drop_path(SlidingWindowAttention(norm1(x), keep, is_global))
        x = x + drop_path(mlp(norm2(x)))
    """

    def __init__(self, *, dim: int, heads: int, window: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SlidingWindowAttention(dim=dim, heads=heads, window=window, qkv_bias=qkv_bias,
                                           attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim=dim, hidden_dim=mlp_hidden_dim(dim, mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, keep: Tensor | None = None, is_global: Tensor | None = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), keep, is_global))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class FullBlock(Block):
    """A pre-norm block with full attention (SDPA) that takes WindowBlock's arguments: every token,
    the CLS included, attends to every real token, so no token needs to be global.

    forward(x (B, L, D), keep (B, L) bool | None, is_global (ignored)) -> (B, L, D).
    """

    def forward(self, x: Tensor, keep: Tensor | None = None, is_global: Tensor | None = None) -> Tensor:
        return super().forward(x, mask=None if keep is None or bool(keep.all()) else key_mask(keep))


ATTENTIONS = ("window", "full")


class VTN(nn.Module):
    """VTN on clips (B, C, T, H, W) -> logits (B, num_classes); see the module docstring.

    ``backbone``: any nn.Module mapping frames (N, C, H, W) to (N, feature_dim); None builds
    ``FrameCNN(in_channels=in_channels, out_dim=feature_dim or dim)``. ``feature_dim`` defaults to
    ``backbone.out_dim`` if it has one, else ``dim``; a Linear maps it to ``dim`` when they differ.
    ``freeze_backbone=True``: the backbone gets no gradient, runs without autograd and stays in eval mode.
    ``window``: the full window in frames (even, Hugging Face's ``attention_window``); ``max_frames``: the
    size of the position table (clips may have fewer frames, never more). ``head_drop``: dropout in the head.
    ``attention``: "window" (WindowBlocks, the paper) or "full" (FullBlocks, O(T^2); ``window`` is then
    unused and ``model.window`` is None). The option adds no parameter: a window VTN's state_dict is as before.
    """

    no_weight_decay = ("pos",)                                       # see vtlib.train.param_groups

    def __init__(self, *, backbone: nn.Module | None = None, dim: int = 64, depth: int = 2, heads: int = 4,
                 window: int = 8, num_classes: int = 2, max_frames: int = 64, in_channels: int = 1,
                 feature_dim: int | None = None, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0, head_drop: float = 0.5, global_cls: bool = True,
                 freeze_backbone: bool = False, attention: str = "window", eps: float = 1e-6) -> None:
        super().__init__()
        check_choice("attention", attention, ATTENTIONS)
        for name, v in (("dim", dim), ("num_classes", num_classes), ("max_frames", max_frames),
                        ("in_channels", in_channels)):
            check_positive_int(name, v)
        check_dropout("head_drop", head_drop)
        check_choice("global_cls", global_cls, (True, False))
        check_choice("freeze_backbone", freeze_backbone, (True, False))
        if backbone is None:
            backbone = FrameCNN(in_channels=in_channels, out_dim=feature_dim or dim)
        if not isinstance(backbone, nn.Module):
            raise bad_arg("backbone", "an nn.Module mapping frames (N, C, H, W) to (N, feature_dim)",
                          type(backbone).__name__, "pass FrameCNN(...), ImageBackbone(model, out_dim=...) or None")
        feature_dim = feature_dim or getattr(backbone, "out_dim", dim)
        check_positive_int("feature_dim", feature_dim)
        self.backbone, self.freeze_backbone = backbone, freeze_backbone
        if freeze_backbone:
            backbone.requires_grad_(False)
            backbone.eval()
        self.dim, self.feature_dim, self.max_frames, self.in_channels = dim, feature_dim, max_frames, in_channels
        self.global_cls, self.attention = global_cls, attention
        self.window = window if attention == "window" else None
        self.proj = nn.Identity() if feature_dim == dim else nn.Linear(feature_dim, dim)
        self.cls = ClsToken(dim=dim, init_std=1.0)                   # the authors' randn(1, 1, D)
        pos = torch.zeros(max_frames + 1, dim)                       # rows 0..max_frames-1: frames; last: CLS
        trunc_normal_(pos, std=0.02)
        self.pos = nn.Parameter(pos)
        block_kw = dict(dim=dim, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop,
                        attn_drop=attn_drop, eps=eps)
        self.blocks = nn.ModuleList(
            WindowBlock(window=window, drop_path=rate, **block_kw) if attention == "window"
            else FullBlock(drop_path=rate, **block_kw)
            for rate in drop_path_rates(depth, drop_path)
        )
        self.head = nn.Sequential(nn.LayerNorm(dim, eps=eps), nn.Linear(dim, dim), nn.GELU(),
                                  nn.Dropout(head_drop), nn.Linear(dim, num_classes))

    def train(self, mode: bool = True) -> "VTN":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()                                     # frozen: no dropout, fixed norm statistics
        return self

    # ----------------------------------------------------------------------------- backbone
    def _frames(self, x: Tensor) -> Tensor:
        check_video(x, self.in_channels)
        if x.shape[2] > self.max_frames:
            raise bad_arg("x", f"at most max_frames={self.max_frames} frames (axis 2 of (B, C, T, H, W))",
                          f"shape {tuple(x.shape)}", "sample fewer frames (vtlib.data.sample_frames), or build "
                          f"VTN with max_frames >= {x.shape[2]}")
        return rearrange(to_dtype_of(x, self), "b c t h w -> (b t) c h w")

    def _embed(self, frames: Tensor) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            out = self.backbone(frames)
        if not isinstance(out, Tensor) or out.shape != (frames.shape[0], self.feature_dim):
            got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise bad_arg("backbone", f"one vector per frame, (N={frames.shape[0]}, feature_dim={self.feature_dim})",
                          got, "wrap an image model with ImageBackbone(model, out_dim=...), or set feature_dim")
        return out

    def features(self, x: Tensor, chunk: int | None = None) -> Tensor:
        """Per-frame features (B, T, feature_dim); with ``chunk``, at most ``chunk`` frames per backbone call."""
        frames = self._frames(x)
        if chunk is None:
            out = self._embed(frames)
        else:
            _check_chunk(chunk)
            out = torch.cat([self._embed(part) for part in frames.split(chunk)])
        return rearrange(out, "(b t) f -> b t f", b=x.shape[0])

    # ------------------------------------------------------------------------------ encoder
    def _check_features(self, f: Tensor, keep: Tensor | None, frame_ids: Tensor | None) -> Tensor:
        """Validate (B, T, F) features and the masks; returns frame_ids (B, T) int64."""
        check_rank("f", f, 3, "B T feature_dim")
        if not torch.is_floating_point(f) or f.shape[-1] != self.feature_dim or f.shape[1] == 0:
            raise bad_arg("f", f"float features (B, T >= 1, feature_dim={self.feature_dim})",
                          f"shape {tuple(f.shape)}, dtype {f.dtype}", "pass what model.features(x) returns")
        B, T, _ = f.shape
        if T > self.max_frames:
            raise bad_arg("f", f"at most max_frames={self.max_frames} frames (axis 1)", f"shape {tuple(f.shape)}",
                          f"use fewer frames or build VTN with max_frames >= {T}")
        if keep is not None and (not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.shape != (B, T)):
            got = f"shape {tuple(keep.shape)}, dtype {keep.dtype}" if isinstance(keep, Tensor) else type(keep).__name__
            raise bad_arg("keep", f"a bool tensor (B, T) = ({B}, {T}), True = real frame", got,
                          "mark padded frames False, e.g. torch.arange(T) < lengths[:, None]")
        if frame_ids is None:
            return torch.arange(T, device=f.device).expand(B, T)
        if not isinstance(frame_ids, Tensor) or frame_ids.dtype != torch.long or frame_ids.shape not in ((T,), (B, T)):
            got = (f"shape {tuple(frame_ids.shape)}, dtype {frame_ids.dtype}" if isinstance(frame_ids, Tensor)
                   else type(frame_ids).__name__)
            raise bad_arg("frame_ids", f"int64 frame indices shaped (T,) or (B, T) = ({B}, {T})", got,
                          "pass the sampled frames' indices, e.g. torch.arange(T)")
        if frame_ids.numel() and (frame_ids.min() < 0 or frame_ids.max() >= self.max_frames):
            raise bad_arg("frame_ids", f"indices in [0, max_frames={self.max_frames})",
                          f"range [{int(frame_ids.min())}, {int(frame_ids.max())}]",
                          "take the indices modulo max_frames (as the authors do), or build a larger table")
        return frame_ids.expand(B, T)

    def encode(self, f: Tensor, keep: Tensor | None = None, frame_ids: Tensor | None = None) -> Tensor:
        """Features (B, T, feature_dim) -> encoder output (B, 1+T, D), CLS first (before the head's norm).

        ``keep`` (B, T) bool marks real frames (for videos of different lengths padded to one T);
        ``frame_ids`` (T,) or (B, T) int64 picks each frame's position row (default 0..T-1).
        """
        frame_ids = self._check_features(f, keep, frame_ids)
        B, T, _ = f.shape
        x = self.proj(f) + self.pos[frame_ids]                                 # (B, T, D)
        cls = self.cls.token.expand(B, -1, -1) + self.pos[self.max_frames]     # the CLS's reserved row
        x = torch.cat([cls, x], dim=1)                                         # (B, 1+T, D)
        keep = torch.ones(B, T, dtype=torch.bool, device=f.device) if keep is None else keep
        keep = torch.cat([keep.new_ones(B, 1), keep], dim=1)                   # (B, 1+T), the CLS is real
        is_global = torch.zeros_like(keep)
        is_global[:, 0] = self.global_cls
        for block in self.blocks:
            x = block(x, keep, is_global)
        return x

    def classify_features(self, f: Tensor, keep: Tensor | None = None, frame_ids: Tensor | None = None) -> Tensor:
        """Precomputed features (B, T, feature_dim) -> logits (B, num_classes): the temporal part only."""
        return self.head(self.encode(f, keep, frame_ids)[:, 0])

    # -------------------------------------------------------------------------- three modes
    def forward(self, x: Tensor, frame_ids: Tensor | None = None) -> Tensor:
        """End to end: clips (B, C, T, H, W) -> logits (B, num_classes)."""
        return self.classify_features(self.features(x), frame_ids=frame_ids)

    def forward_chunked(self, x: Tensor, chunk: int, frame_ids: Tensor | None = None) -> Tensor:
        """As ``forward``, the frames sent through the backbone ``chunk`` at a time (same logits)."""
        _check_chunk(chunk)
        return self.classify_features(self.features(x, chunk=chunk), frame_ids=frame_ids)


def use_full_attention(model: VTN) -> VTN:
    """Replace the temporal encoder's window blocks by FullBlocks of the same size (new weights, drawn
    now): the same VTN with O(T^2) full attention over the frames. Returns ``model``.

    ``VTN(..., attention="full")`` builds such a model directly, with other random weights: this swap
    draws the new blocks after the whole window model. ``python -m vtlib.experiments.vtn`` builds its
    full-attention runs this way, so that their recorded initialisation stays the same.
    """
    if not isinstance(model, VTN):
        raise bad_arg("model", "a vtlib.models.vtn.VTN", type(model).__name__, "build a VTN first")
    blocks = []
    for b in model.blocks:
        attn = b.attn
        blocks.append(FullBlock(dim=attn.dim, heads=attn.heads, mlp_ratio=b.mlp.fc1.out_features / attn.dim,
                                qkv_bias=attn.query.bias is not None, eps=b.norm1.eps))
    model.blocks = nn.ModuleList(blocks).to(model.pos.device)
    model.window, model.attention = None, "full"
    return model
