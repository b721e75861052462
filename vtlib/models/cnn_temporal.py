"""Video CNNs that treat space and time separately (notebook 11).

``FrameTemporalCNN``, the classic "spatial then temporal" network:

    x (B, C, T, H, W)
      -> fold time into the batch     (B*T, C, H, W)         einops "b c t h w -> (b t) c h w"
      -> per-frame 2D stack           (B*T, w, H/2^L, W/2^L)  [Conv2d 3x3 -> BN2d -> ReLU -> MaxPool 2] x L
      -> unfold                       (B, w, T, H', W')      "(b t) c h w -> b c t h w"
      -> temporal Conv3d (k, 1, 1)    (B, temporal_width, T - k + 1, H', W')  -> BN3d -> ReLU
      -> global average pool          (B, temporal_width)
      -> Linear head                  (B, num_classes)

The 2D stack never mixes frames: frame t's features depend on frame t alone (in eval mode; in
training mode BatchNorm2d's batch statistics are shared by all B*T frames). Only the temporal
conv, and then the pooling, combine frames.

``Conv2Plus1d`` and ``R2Plus1dCNN`` (Tran et al., CVPR 2018): a t x d x d Conv3d factored into
a spatial (1, d, d) conv, BN + ReLU, and a temporal (t, 1, 1) conv. The intermediate width

    M = (t * d * d * N_in * N_out) // (d * d * N_in + t * N_out)             (``midplanes``)

makes the two convs hold (up to the floor) as many weights as the t x d x d Conv3d, so the gain
of (2+1)D comes from the extra nonlinearity between space and time, not from extra parameters.

A broken version is widely copied from blog posts. It builds ``nn.Conv2d`` and calls it on the
5-D clip, then hands the result to a ``Conv3d`` after a wrong reshape. Written out with shapes
(B=2, C=1, T=28, 28 x 28 frames, 32 spatial channels):

    x = (2, 1, 28, 28, 28)
    nn.Conv2d(1, 32, 3)(x)              RuntimeError: conv2d takes 3-D or 4-D input, x is 5-D
    f = conv2d(x.view(2 * 28, 1, 28, 28))   (56, 32, 28, 28)   runs; correct only because C == 1:
                                        for C > 1, view mixes channels with frames (C and T are not
                                        adjacent in (B, C, T, H, W)); rearrange says which axes move
    f = f.view(2, 28, 32, 28, 28)       (B, T, C', H, W): time sits where Conv3d expects channels
    nn.Conv3d(32, 64, (3, 1, 1))(f)     RuntimeError: expected 32 channels, got 28
    nn.Conv3d(28, 64, (3, 1, 1))(f)     "fixed" by in_channels=T: runs, but now T is the channel
                                        axis and the (3, 1, 1) kernel slides over the 32 features

The fix is the one-line unfold ``"(b t) c h w -> b c t h w"`` used below. A permute of the
(B, T, C', H, W) tensor to (B, C', T, H, W) is equally right; the error is skipping it.

All models here take clips (B, C, T, H, W) and return logits (B, num_classes). Inputs in
float16, bfloat16 or float64 are cast to the model's parameter dtype on entry; integer volumes
are refused (convert uint8 volumes with vtlib.data.to_video first).
"""
from __future__ import annotations

from typing import Sequence

from einops import rearrange
from torch import Tensor, nn

from vtlib.errors import bad_arg, check_positive_int
from vtlib.shapes import check_video


def _widths(name: str, widths) -> tuple[int, ...]:
    if isinstance(widths, int) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise bad_arg(name, "a non-empty tuple of positive ints", repr(widths), f"pass e.g. {name}=(16, 32)")
    for w in widths:
        check_positive_int(name, w)
    return tuple(widths)


def _clip(x: Tensor, in_channels: int, min_thw: tuple[int, int, int], dtype, why: str) -> Tensor:
    """Check a clip (B, C, T, H, W) and cast it to the model's dtype."""
    check_video(x, in_channels)
    if any(s < m for s, m in zip(x.shape[2:], min_thw)):
        raise bad_arg("x", f"(T, H, W) at least {min_thw} ({why})", f"shape {tuple(x.shape)}",
                      "use longer clips / larger frames, or a smaller kernel/fewer layers")
    return x.to(dtype)


class FrameTemporalCNN(nn.Module):
    """Per-frame 2D CNN, then a temporal Conv3d: clips (B, C, T, H, W) -> logits (B, num_classes).

    ``widths``: channels of the 2D layers (each halves H and W). ``temporal_kernel`` = k frames
    (no temporal padding, so T >= k). Clips need H, W >= 2 ** len(widths).
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, widths: Sequence[int] = (16, 32),
                 temporal_width: int = 64, temporal_kernel: int = 3):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes),
                        ("temporal_width", temporal_width), ("temporal_kernel", temporal_kernel)):
            check_positive_int(name, v)
        widths = _widths("widths", widths)
        self.in_channels, self.temporal_kernel, self.widths = in_channels, temporal_kernel, widths
        self.min_hw = 2 ** len(widths)
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.spatial = nn.Sequential(*layers)
        self.temporal = nn.Sequential(
            nn.Conv3d(c, temporal_width, (temporal_kernel, 1, 1), bias=False),
            nn.BatchNorm3d(temporal_width), nn.ReLU(inplace=True))
        self.head = nn.Linear(temporal_width, num_classes)

    def frame_features(self, x: Tensor) -> Tensor:
        """The 2D stack on every frame: (B, C, T, H, W) -> (B, widths[-1], T, H', W')."""
        x = _clip(x, self.in_channels, (self.temporal_kernel, self.min_hw, self.min_hw),
                  self.head.weight.dtype, f"{self.temporal_kernel} frames for the temporal kernel, "
                  f"{self.min_hw} pixels for {len(self.widths)} 2x poolings")
        b = x.shape[0]
        f = self.spatial(rearrange(x, "b c t h w -> (b t) c h w"))   # every frame is its own image
        return rearrange(f, "(b t) c h w -> b c t h w", b=b)

    def forward(self, x: Tensor) -> Tensor:
        f = self.temporal(self.frame_features(x))                    # (B, temporal_width, T-k+1, H', W')
        return self.head(f.mean(dim=(2, 3, 4)))


def midplanes(in_ch: int, out_ch: int, t: int = 3, d: int = 3) -> int:
    """R(2+1)D intermediate width: (t*d*d*in*out) // (d*d*in + t*out).

    Then d*d*in*M + t*M*out (the two factored convs) <= t*d*d*in*out (the full Conv3d), with a
    shortfall smaller than d*d*in + t*out from the floor.
    """
    for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("t", t), ("d", d)):
        check_positive_int(name, v)
    return (t * d * d * in_ch * out_ch) // (d * d * in_ch + t * out_ch)


class Conv2Plus1d(nn.Module):
    """(2+1)D conv: (B, in, T, H, W) -> spatial (1, d, d) -> BN -> ReLU -> temporal (t, 1, 1) -> (B, out, T', H', W').

    ``stride`` applies to H, W in the spatial conv and to T in the temporal conv; padding keeps
    sizes ("same" for odd kernels, then divided by the stride). ``mid_channels`` defaults to
    ``midplanes(in, out, t, d)``. No bias: a BatchNorm follows in every network built from it.
    """

    def __init__(self, *, in_channels: int, out_channels: int, mid_channels: int | None = None,
                 t: int = 3, d: int = 3, stride: int = 1):
        super().__init__()
        check_positive_int("stride", stride)
        mid = midplanes(in_channels, out_channels, t, d) if mid_channels is None else mid_channels
        check_positive_int("mid_channels", mid)
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid
        self.spatial = nn.Conv3d(in_channels, mid, (1, d, d), stride=(1, stride, stride),
                                 padding=(0, d // 2, d // 2), bias=False)
        self.norm = nn.BatchNorm3d(mid)
        self.act = nn.ReLU(inplace=True)
        self.temporal = nn.Conv3d(mid, out_channels, (t, 1, 1), stride=(stride, 1, 1),
                                  padding=(t // 2, 0, 0), bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.act(self.norm(self.spatial(x))))


class R2Plus1dCNN(nn.Module):
    """A small plain (no residual) R(2+1)D net: clips (B, C, T, H, W) -> logits (B, num_classes).

    One ``Conv2Plus1d -> BN3d -> ReLU`` layer per entry of ``widths``, with the matching
    ``strides`` (on T, H and W), then global average pooling and a Linear head.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, widths: Sequence[int] = (16, 32, 64),
                 strides: Sequence[int] = (1, 2, 2)):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        widths, strides = _widths("widths", widths), _widths("strides", strides)
        if len(strides) != len(widths):
            raise bad_arg("strides", f"one stride per width ({len(widths)})", repr(strides),
                          "pass as many strides as widths")
        self.in_channels = in_channels
        self.min_size = 1
        for s in strides:
            self.min_size *= s
        layers, c = [], in_channels
        for w, s in zip(widths, strides):
            layers += [Conv2Plus1d(in_channels=c, out_channels=w, stride=s), nn.BatchNorm3d(w),
                       nn.ReLU(inplace=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        m = self.min_size
        x = _clip(x, self.in_channels, (m, m, m), self.head.weight.dtype, f"the total stride is {m}")
        return self.head(self.features(x).mean(dim=(2, 3, 4)))
