"""When should a CNN combine frames? Karpathy et al.'s fusion variants (CVPR 2014), scaled down.

The paper's towers are AlexNet-like on 170 x 170 frames; here one small tower for 28 x 28
frames (BatchNorm stands in for the paper's local response normalisation):

    conv1 3x3, width      -> BN -> ReLU -> max-pool 2 (space only)
    conv2 3x3, 2*width    -> BN -> ReLU -> max-pool 2
    conv3 3x3, 4*width    -> BN -> ReLU -> global average pool   (B, 4*width) per tower
    FC 4*width -> ReLU -> Linear head (B, num_classes)

Every conv is a Conv3d; the four variants differ only in which frames go in and in each conv's
temporal kernel (kt) and stride (st), written for the paper's 10-frame clip:

    fusion   frames read            kt per conv   st per conv   the tower's time axis
    single   the central one, T//2  1, 1, 1       1, 1, 1       1 -> 1 -> 1
    late     the first and the last 1, 1, 1       1, 1, 1       two shared-weight towers (one per
                                                                frame), concatenated before the FC
    early    all T at once          T, 1, 1       1, 1, 1       T -> 1 after conv1
    slow     all T                  4, 2, 2       2, 2, 2       10 -> 4 -> 2 -> 1

Early fusion is implemented as a Conv3d whose temporal kernel spans the whole clip. That is the
same operation as a Conv2d reading the T frames stacked as T*C input channels (its weight is the
Conv3d weight reshaped to (width, C*T, 3, 3)); the Conv3d form keeps the (B, C, T, H, W) layout.

Slow fusion grows the temporal extent layer by layer: a conv1 output sees 4 frames, a conv2
output 6, a conv3 output 10, so with 10 frames the last conv sees the whole clip. Other clip
lengths that the three strided convs cover with no frame left over are 18, 26, ... (10 + 8m);
then conv3 has (frames - 2) // 8 outputs of 10 frames each and the pooling averages them.

Clips (B, C, T, H, W) must have T == frames. A 28-slice MedMNIST volume gives the paper's 10
frames with ``x[:, :, ::3]`` (slices 0, 3, ..., 27). Inputs in float16, bfloat16 or float64 are
cast to the model's parameter dtype on entry.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.shapes import check_video, to_dtype_of

FUSIONS = ("single", "late", "early", "slow")
SLOW_KERNELS, SLOW_STRIDES = (4, 2, 2), (2, 2, 2)


def slow_fusion_frames(frames: int) -> bool:
    """True if conv1 (4, stride 2), conv2 and conv3 (2, stride 2) cover ``frames`` with none left over."""
    return frames >= 10 and (frames - 10) % 8 == 0


class FusionCNN(nn.Module):
    """Single-frame, late, early or slow fusion: clips (B, C, frames, H, W) -> logits (B, num_classes).

    H and W must be at least 4 (two 2x poolings).
    """

    def __init__(self, *, fusion: str = "slow", frames: int = 10, in_channels: int = 1, num_classes: int = 2,
                 width: int = 16):
        super().__init__()
        check_choice("fusion", fusion, FUSIONS)
        for name, v in (("frames", frames), ("in_channels", in_channels), ("num_classes", num_classes),
                        ("width", width)):
            check_positive_int(name, v)
        if fusion == "late" and frames < 2:
            raise bad_arg("frames", "at least 2 for late fusion (it reads the first and the last frame)",
                          frames, "use longer clips, or fusion='single'")
        if fusion == "slow" and not slow_fusion_frames(frames):
            raise bad_arg("frames", "10, 18, 26, ... (10 + 8m) for slow fusion: conv1 (4 frames, stride 2) "
                          "and conv2, conv3 (2, stride 2) must cover the clip exactly", frames,
                          "sample 10 frames (x[:, :, ::3] of a 28-slice volume) and build with frames=10")
        self.fusion, self.frames, self.in_channels = fusion, frames, in_channels
        kernels = {"early": (frames, 1, 1), "slow": SLOW_KERNELS}.get(fusion, (1, 1, 1))
        strides = SLOW_STRIDES if fusion == "slow" else (1, 1, 1)
        widths = (width, 2 * width, 4 * width)
        layers, c = [], in_channels
        for i, (w, kt, st) in enumerate(zip(widths, kernels, strides)):
            layers += [nn.Conv3d(c, w, (kt, 3, 3), stride=(st, 1, 1), padding=(0, 1, 1), bias=False),
                       nn.BatchNorm3d(w), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool3d((1, 2, 2)))
            c = w
        self.tower = nn.Sequential(*layers)
        towers = 2 if fusion == "late" else 1
        self.fc = nn.Sequential(nn.Linear(towers * c, c), nn.ReLU(inplace=True))
        self.head = nn.Linear(c, num_classes)

    def select_frames(self, x: Tensor) -> Tensor:
        """The frames the tower reads: (B, C, T, H, W) -> (B', C, T', H, W); late folds its 2 frames into B."""
        if self.fusion == "single":
            t = x.shape[2] // 2
            return x[:, :, t:t + 1]                                         # (B, C, 1, H, W)
        if self.fusion == "late":
            pair = torch.stack([x[:, :, 0], x[:, :, -1]], dim=2)           # (B, C, 2, H, W)
            return rearrange(pair, "b c n h w -> (b n) c 1 h w")            # one tower per frame
        return x                                                            # early, slow: the whole clip

    def features(self, x: Tensor) -> Tensor:
        """Clip features after the first FC: (B, C, T, H, W) -> (B, 4*width)."""
        check_video(x, self.in_channels)
        x = to_dtype_of(x, self)
        if x.shape[2] != self.frames or min(x.shape[3:]) < 4:
            raise bad_arg("x", f"clips (B, {self.in_channels}, {self.frames}, H, W) with H, W >= 4",
                          f"shape {tuple(x.shape)}",
                          "take x[:, :, ::3] of a 28-slice volume for 10 frames, or build with frames=x.shape[2]")
        x = x.to(self.head.weight.dtype)
        b = x.shape[0]
        f = self.tower(self.select_frames(x)).mean(dim=(2, 3, 4))          # (B', 4*width)
        if self.fusion == "late":
            f = rearrange(f, "(b n) f -> b (n f)", b=b)                     # merge the two towers
        return self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
