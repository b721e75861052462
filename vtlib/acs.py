"""ACS convolution and three ways to turn a 2D conv into a 3D one (notebook 11).

A volume (B, C, D, H, W) has three viewing planes. Read as a video, D is time (T) and each
depth slice is a frame:

    axial     the (H, W) plane: one frame            kernel (1, k, k)
    coronal   the (D, W) plane: time x width         kernel (k, 1, k)
    sagittal  the (D, H) plane: time x height        kernel (k, k, 1)

``ACSConv3d`` (Yang et al., "Reinventing 2D convolutions for 3D images", 2021) keeps a plain 2D
kernel (C_out, C_in, k, k) and splits it on its OUTPUT channels into three groups. The first
group is used as an axial kernel, the second as a coronal one, the third as a sagittal one. All
three read the same input; their outputs are concatenated on channels and the bias is added:

    weight (C_out, C_in, k, k)  --split C_out-->  a + c + s = C_out
      a: (a, C_in, 1, k, k)   c: (c, C_in, k, 1, k)   s: (s, C_in, k, k, 1)
    y = cat([conv3d(x, a), conv3d(x, c), conv3d(x, s)], dim=1) + bias      (B, C_out, D', H', W')

So an ACS layer has exactly the parameters of the 2D layer (2D weights load unchanged), yet its
output channels jointly see all three axes. Each part equals a full k x k x k Conv3d whose kernel
is zero except in its middle slice along the unit axis (index k // 2), with the same padding p
on every axis; ``ACSConv3d.as_conv3d_weight`` builds that k^3 kernel so you can check it.

The three converters of a trained (or random) ``nn.Conv2d`` give new modules with the 2D weights:

    conv2d_to_acs(conv)   ACSConv3d: every output channel sees one plane, all planes together
    conv2d_to_25d(conv)   Conv3d (1, k, k): the 2D conv applied to every frame on its own ("2.5D");
                          no channel ever mixes information across frames
    conv2d_to_3d(conv)    Conv3d (k, k, k): the kernel stacked k times along depth and divided by k
                          (I3D inflation); on a clip whose frames are all equal it gives the 2D
                          response of one frame

Strides and paddings are one int (the same on every axis), as in ACSConv's converters: a 2D conv
with stride 2 becomes a 3D conv with stride 2 on depth too.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import repeat
from torch import Tensor, nn

from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.shapes import check_video

PLANES = ("axial", "coronal", "sagittal")


def acs_split(out_channels: int) -> tuple[int, int, int]:
    """Output channels per plane (axial, coronal, sagittal): equal thirds, the remainder to the first.

    >>> acs_split(9), acs_split(10), acs_split(11)
    ((3, 3, 3), (4, 3, 3), (4, 4, 3))
    """
    check_positive_int("out_channels", out_channels)
    n, r = divmod(out_channels, 3)
    return (n + (r > 0), n + (r > 1), n)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad_arg(name, f"one int >= {minimum} (used on every axis)", repr(value),
                      f"pass e.g. {name}={max(minimum, 1)}")
    return value


def _unit_axis_conv(x: Tensor, w: Tensor, axis: int, k: int, stride: int, padding: int) -> Tensor:
    """conv3d with a kernel that is 1 wide on ``axis`` (2, 3 or 4 of (B, C, D, H, W)).

    Equal to the k x k x k conv (padding p on every axis) whose kernel holds ``w`` in its middle
    slice k // 2 along ``axis``: that conv's output o reads padded position o * stride + k // 2
    on the axis, so we pad by p, keep the positions k // 2, k // 2 + stride, ..., and convolve
    with padding 0 there.
    """
    out = (x.shape[axis] + 2 * padding - k) // stride + 1     # the k^3 conv's output size
    pad = [0] * 6
    pad[2 * (4 - axis)] = pad[2 * (4 - axis) + 1] = padding    # F.pad lists the last axis first
    x = F.pad(x, pad).narrow(axis, k // 2, (out - 1) * stride + 1)
    conv_padding = [padding] * 3
    conv_padding[axis - 2] = 0
    return F.conv3d(x, w, None, stride, conv_padding)


class ACSConv3d(nn.Module):
    """ACS convolution: (B, C_in, D, H, W) -> (B, C_out, D', H', W'), with a 2D kernel (C_out, C_in, k, k).

    D' = (D + 2p - k) // stride + 1, the same as a k^3 ``nn.Conv3d`` (and likewise H', W').
    """

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.split = acs_split(out_channels)
        self.kernel_size = _check_int("kernel_size", kernel_size, 1)
        self.stride = _check_int("stride", stride, 1)
        self.padding = _check_int("padding", padding, 0)
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k, k))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # The same initialisation as nn.Conv2d, so a fresh ACS layer starts like a fresh 2D layer.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(in_channels * k * k)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, split={self.split}")

    def plane_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """The three 3D kernels: axial (a, C_in, 1, k, k), coronal (c, C_in, k, 1, k), sagittal (s, C_in, k, k, 1)."""
        a, c, s = self.weight.split(self.split, dim=0)
        return a.unsqueeze(2), c.unsqueeze(3), s.unsqueeze(4)

    def as_conv3d_weight(self) -> Tensor:
        """The equivalent k^3 kernel (C_out, C_in, k, k, k): each part zero-padded to k^3, concatenated."""
        k, mid = self.kernel_size, self.kernel_size // 2
        w = self.weight.new_zeros(self.out_channels, self.in_channels, k, k, k)
        a, c, _ = self.split
        w[:a, :, mid] = self.weight[:a]                        # axial: the middle depth slice
        w[a:a + c, :, :, mid] = self.weight[a:a + c]           # coronal: the middle height slice
        w[a + c:, :, :, :, mid] = self.weight[a + c:]          # sagittal: the middle width slice
        return w

    def forward(self, x: Tensor) -> Tensor:
        check_video(x, self.in_channels)
        k, s, p = self.kernel_size, self.stride, self.padding
        if min(x.shape[2:]) + 2 * p < k:
            raise bad_arg("x", f"every size of (D, H, W) + 2 * padding >= kernel_size={k}",
                          f"shape {tuple(x.shape)} with padding={p}",
                          "use a larger input or more padding")
        if x.dtype != self.weight.dtype:
            raise bad_arg("x", f"dtype {self.weight.dtype} (the layer's weight dtype)", f"dtype {x.dtype}",
                          f"convert with x.to({self.weight.dtype}) or the layer with .to(x.dtype)")
        parts = [_unit_axis_conv(x, w, axis, k, s, p)
                 for axis, w, n in zip((2, 3, 4), self.plane_weights(), self.split) if n > 0]
        y = torch.cat(parts, dim=1)                            # (B, C_out, D', H', W')
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


def _check_conv2d(conv2d) -> tuple[int, int, int]:
    """(k, stride, padding) of a plain square Conv2d, or a clear error."""
    if not isinstance(conv2d, nn.Conv2d):
        raise bad_arg("conv2d", "an nn.Conv2d", type(conv2d).__name__, "pass the 2D layer itself, e.g. model.conv1")
    (kh, kw), (sh, sw) = conv2d.kernel_size, conv2d.stride
    pad = conv2d.padding
    if isinstance(pad, str) or kh != kw or sh != sw or pad[0] != pad[1] or conv2d.groups != 1 \
            or tuple(conv2d.dilation) != (1, 1) or conv2d.padding_mode != "zeros":
        raise bad_arg("conv2d", "a square Conv2d: kernel k x k, one stride, one int padding, groups=1, "
                      "dilation=1, zero padding", repr(conv2d),
                      "build it as nn.Conv2d(C_in, C_out, kernel_size=k, stride=s, padding=p)")
    return kh, sh, pad[0]


def conv2d_to_acs(conv2d: nn.Conv2d) -> ACSConv3d:
    """An ``ACSConv3d`` holding ``conv2d``'s weight and bias unchanged."""
    k, s, p = _check_conv2d(conv2d)
    acs = ACSConv3d(in_channels=conv2d.in_channels, out_channels=conv2d.out_channels, kernel_size=k,
                    stride=s, padding=p, bias=conv2d.bias is not None)
    acs = acs.to(device=conv2d.weight.device, dtype=conv2d.weight.dtype)
    with torch.no_grad():
        acs.weight.copy_(conv2d.weight)
        if conv2d.bias is not None:
            acs.bias.copy_(conv2d.bias)
    return acs


def _conv3d_like(conv2d: nn.Conv2d, kernel: tuple[int, int, int], padding: tuple[int, int, int],
                 stride: int, weight: Tensor) -> nn.Conv3d:
    conv = nn.Conv3d(conv2d.in_channels, conv2d.out_channels, kernel, stride=stride, padding=padding,
                     bias=conv2d.bias is not None)
    conv = conv.to(device=conv2d.weight.device, dtype=conv2d.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv2d.bias is not None:
            conv.bias.copy_(conv2d.bias)
    return conv


def conv2d_to_25d(conv2d: nn.Conv2d) -> nn.Conv3d:
    """A Conv3d with kernel (1, k, k) and no depth padding: ``conv2d`` applied to every frame.

    With stride 1, ``out[:, :, t] == conv2d(x[:, :, t])`` for every frame t. The stride is used on
    depth too (as in ACSConv's Conv2_5d), so stride 2 also keeps every other frame.
    """
    k, s, p = _check_conv2d(conv2d)
    return _conv3d_like(conv2d, (1, k, k), (0, p, p), s, conv2d.weight.unsqueeze(2))


def conv2d_to_3d(conv2d: nn.Conv2d, inflate: str = "repeat") -> nn.Conv3d:
    """A k x k x k Conv3d by I3D inflation: the 2D kernel stacked k times along depth, divided by k.

    On a clip whose frames are all equal, every output frame away from the depth border equals
    ``conv2d`` on one frame (the k copies of the kernel sum back to the 2D kernel).
    """
    check_choice("inflate", inflate, ("repeat",),
                 "pass inflate='repeat'; for a central-frame kernel see vtlib.tokens.central_frame_2d")
    k, s, p = _check_conv2d(conv2d)
    weight = repeat(conv2d.weight, "o i h w -> o i d h w", d=k) / k
    return _conv3d_like(conv2d, (k, k, k), (p, p, p), s, weight)
