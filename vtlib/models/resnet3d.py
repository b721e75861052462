"""The MedMNIST v2 3D baseline: a CIFAR-style ResNet-18 made 3D three ways (notebook 11).

MedMNIST's 3D baselines take kuangliu's CIFAR ResNet (a small-image ResNet: 3x3 stem, stride 1,
no max-pool) and convert every 2D conv with ACSConv's converters. The same network here:

    x (B, C, T, H, W)                                       28^3: T = H = W = 28
      -> conv 3x3 (stride 1, pad 1) -> BN -> ReLU           (B, w0, 28, 28, 28)   no max-pool
      -> stage 1: blocks[0] BasicBlocks, stride 1           (B, w0, 28, 28, 28)
      -> stage 2: blocks[1] BasicBlocks, stride 2           (B, w1, 14, 14, 14)
      -> stage 3: blocks[2] BasicBlocks, stride 2           (B, w2,  7,  7,  7)
      -> stage 4: blocks[3] BasicBlocks, stride 2           (B, w3,  4,  4,  4)
      -> global average pool -> Linear                      (B, num_classes)

    BasicBlock: conv 3x3 (stride s) -> BN -> ReLU -> conv 3x3 -> BN, plus the shortcut
    (identity, or a 1x1x1 conv with stride s -> BN when the shape changes), then ReLU.

``conv`` picks what "conv 3x3" means; BatchNorm3d everywhere, 1x1x1 shortcut convs in all three:

    "3d"    nn.Conv3d 3x3x3: every filter sees a 3x3x3 neighbourhood          27 weights per in/out pair
    "2.5d"  nn.Conv3d (1, 3, 3): 2D filters on every slice, the stride also    9 weights per pair
            on depth; depth is mixed only by the shortcuts and the final pooling
    "acs"   vtlib.acs.ACSConv3d: a 2D kernel split into axial, coronal and      9 weights per pair
            sagittal 3D kernels (the same parameters as "2.5d")

MedMNIST builds its 3D nets by converting a randomly initialised 2D net (``--pretrained_3d
i3d`` inflates random 2D weights and divides by 3); here the 3D layers are initialised directly.
With a BatchNorm after every conv the scale of that initialisation hardly matters.

Parameters (in_channels=1, num_classes=2; ``vtlib.utils.count_parameters``):

    widths               "3d"          "2.5d" / "acs"
    (64, 128, 256, 512)  33,140,802    11,168,706          ``resnet18_3d``
    (8, 16, 32, 64)         519,178       175,738          ``resnet18_3d_small`` (2-core CPU)

(With blocks=(1, 1, 1, 1), a ResNet-10, the small widths give 224,938 parameters in "3d".)

Inputs in float16, bfloat16 or float64 are cast to the model's parameter dtype on entry.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from vtlib.acs import ACSConv3d
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.shapes import check_video, to_dtype_of

CONVS = ("3d", "2.5d", "acs")
RESNET18_WIDTHS = (64, 128, 256, 512)
SMALL_WIDTHS = (8, 16, 32, 64)


def conv3x3(conv: str, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """The "3x3" conv of the given kind, padding 1, no bias (a BatchNorm follows)."""
    check_choice("conv", conv, CONVS)
    if conv == "3d":
        return nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
    if conv == "2.5d":
        return nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=stride, padding=(0, 1, 1), bias=False)
    return ACSConv3d(in_channels=in_channels, out_channels=out_channels, kernel_size=3, stride=stride,
                     padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block: (B, in, T, H, W) -> (B, out, T/s, H/s, W/s) (sizes rounded up)."""

    def __init__(self, *, in_channels: int, out_channels: int, stride: int = 1, conv: str = "3d"):
        super().__init__()
        self.conv1 = conv3x3(conv, in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.conv2 = conv3x3(conv, out_channels, out_channels)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm3d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet3D(nn.Module):
    """CIFAR-style 3D ResNet: clips (B, C, T, H, W) -> logits (B, num_classes).

    Stage i has ``blocks[i]`` BasicBlocks of width ``widths[i]``; stride 1 in the first stage, 2 in
    the others. T, H and W must be at least 2 ** (len(widths) - 1), the total stride, so that the
    last stage still sees at least one voxel of the input rather than only zero padding.
    """

    def __init__(self, *, conv: str = "3d", widths: Sequence[int] = RESNET18_WIDTHS,
                 blocks: Sequence[int] = (2, 2, 2, 2), in_channels: int = 1, num_classes: int = 2):
        super().__init__()
        check_choice("conv", conv, CONVS)
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        for name, seq in (("widths", widths), ("blocks", blocks)):
            if isinstance(seq, int) or not isinstance(seq, Sequence) or len(seq) == 0:
                raise bad_arg(name, "a non-empty tuple of positive ints", repr(seq), f"pass e.g. {name}=(2, 2, 2, 2)")
            for v in seq:
                check_positive_int(name, v)
        if len(widths) != len(blocks):
            raise bad_arg("blocks", f"one block count per stage ({len(widths)} widths)", repr(tuple(blocks)),
                          "pass as many block counts as widths")
        self.conv, self.in_channels = conv, in_channels
        self.min_size = 2 ** (len(widths) - 1)
        self.stem = nn.Sequential(conv3x3(conv, in_channels, widths[0]), nn.BatchNorm3d(widths[0]),
                                  nn.ReLU(inplace=True))
        stages, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = [BasicBlock(in_channels=c if j == 0 else w, out_channels=w,
                                 stride=(1 if i == 0 else 2) if j == 0 else 1, conv=conv) for j in range(n)]
            stages.append(nn.Sequential(*layers))
            c = w
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Globally pooled features of the last stage: (B, C, T, H, W) -> (B, widths[-1])."""
        check_video(x, self.in_channels)
        x = to_dtype_of(x, self)
        m = self.min_size
        if min(x.shape[2:]) < m:
            raise bad_arg("x", f"T, H, W >= {m} (the total stride of {len(self.stages)} stages)",
                          f"shape {tuple(x.shape)}", "use larger clips, or fewer widths/stages")
        x = x.to(self.fc.weight.dtype)
        return self.stages(self.stem(x)).mean(dim=(2, 3, 4))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def resnet18_3d(*, conv: str = "3d", widths: Sequence[int] = RESNET18_WIDTHS, in_channels: int = 1,
                num_classes: int = 2) -> ResNet3D:
    """ResNet-18 (BasicBlocks [2, 2, 2, 2]) as in the MedMNIST v2 3D baselines."""
    return ResNet3D(conv=conv, widths=widths, blocks=(2, 2, 2, 2), in_channels=in_channels,
                    num_classes=num_classes)


def resnet18_3d_small(*, conv: str = "3d", in_channels: int = 1, num_classes: int = 2) -> ResNet3D:
    """The same ResNet-18 at widths (8, 16, 32, 64): small enough to train on a 2-core CPU."""
    return resnet18_3d(conv=conv, widths=SMALL_WIDTHS, in_channels=in_channels, num_classes=num_classes)
