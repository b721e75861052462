"""CNN baselines: ACS convolution and converters, frame/temporal CNNs, (2+1)D, fusion, 3D ResNets."""
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlib.acs import ACSConv3d, acs_split, conv2d_to_3d, conv2d_to_25d, conv2d_to_acs
from vtlib.errors import VtlibError
from vtlib.models.cnn_temporal import Conv2Plus1d, FrameTemporalCNN, R2Plus1dCNN, midplanes
from vtlib.models.fusion import FUSIONS, FusionCNN
from vtlib.models.resnet3d import CONVS, ResNet3D, resnet18_3d, resnet18_3d_small
from vtlib.utils import count_parameters

# name -> (model factory, input clip shape); 28^3 volumes, fusion on 10 frames of 28 x 28 (x[:, :, ::3])
SMALL = {
    "frame_temporal": (lambda: FrameTemporalCNN(widths=(4, 8), temporal_width=8), (2, 1, 28, 28, 28)),
    "r2plus1d": (lambda: R2Plus1dCNN(widths=(4, 8, 8)), (2, 1, 28, 28, 28)),
    **{f"fusion_{f}": (lambda f=f: FusionCNN(fusion=f, frames=10, width=4), (2, 1, 10, 28, 28)) for f in FUSIONS},
    **{f"resnet_{c}": (lambda c=c: ResNet3D(conv=c, widths=(4, 8, 8, 8)), (2, 1, 28, 28, 28)) for c in CONVS},
}


# ---------------------------------------------------------------- shapes

@pytest.mark.parametrize("make, shape", [
    (lambda: FrameTemporalCNN(num_classes=3), (2, 1, 28, 28, 28)),
    (lambda: R2Plus1dCNN(num_classes=3), (2, 1, 28, 28, 28)),
    *[(lambda f=f: FusionCNN(fusion=f, frames=28, num_classes=3), (2, 1, 28, 28, 28))
      for f in ("single", "late", "early")],
    (lambda: FusionCNN(fusion="slow", frames=10, num_classes=3), (2, 1, 10, 28, 28)),
    (lambda: FusionCNN(fusion="slow", frames=26, num_classes=3), (2, 1, 26, 28, 28)),
    *[(lambda c=c: resnet18_3d_small(conv=c, num_classes=3), (2, 1, 28, 28, 28)) for c in CONVS],
    *[(lambda c=c: ResNet3D(conv=c, widths=(4, 8, 8, 8), num_classes=3), (2, 1, 64, 64, 64)) for c in CONVS],
])
def test_output_shapes(make, shape):
    assert make()(torch.randn(shape)).shape == (2, 3)


def test_conv2plus1d_shapes_and_stride():
    c = Conv2Plus1d(in_channels=4, out_channels=8, stride=2)
    assert c(torch.randn(2, 4, 10, 28, 28)).shape == (2, 8, 5, 14, 14)
    assert c.mid_channels == midplanes(4, 8)


# ---------------------------------------------------------------- ACS

@pytest.mark.parametrize("out_channels, split", [(9, (3, 3, 3)), (10, (4, 3, 3)), (11, (4, 4, 3)),
                                                 (1, (1, 0, 0)), (2, (1, 1, 0))])
def test_acs_split_remainder_goes_to_first_parts(out_channels, split):
    assert acs_split(out_channels) == split


def zero_padded_parts(acs: ACSConv3d) -> list[torch.Tensor]:
    """The axial, coronal and sagittal parts as k^3 kernels, zero except in their middle slice."""
    k, mid = acs.kernel_size, acs.kernel_size // 2
    parts = acs.weight.split(acs.split, dim=0)
    out = [torch.zeros(p.shape[0], p.shape[1], k, k, k, dtype=p.dtype) for p in parts]
    out[0][:, :, mid, :, :] = parts[0]     # axial (1, k, k) -> middle depth slice
    out[1][:, :, :, mid, :] = parts[1]     # coronal (k, 1, k) -> middle height slice
    out[2][:, :, :, :, mid] = parts[2]     # sagittal (k, k, 1) -> middle width slice
    return out


@pytest.mark.parametrize("out_channels", [6, 7, 8, 2])
@pytest.mark.parametrize("k, stride, padding", [(3, 1, 1), (3, 2, 1), (3, 1, 0), (3, 2, 2), (5, 2, 1)])
def test_acs_equals_zero_padded_conv3d(out_channels, k, stride, padding):
    torch.manual_seed(0)
    acs = ACSConv3d(in_channels=3, out_channels=out_channels, kernel_size=k, stride=stride,
                    padding=padding).double()
    x = torch.randn(2, 3, 9, 10, 11, dtype=torch.float64)           # unequal sizes catch axis mix-ups
    parts = zero_padded_parts(acs)
    # reference 1: three separate Conv3d with the zero-padded kernels, concatenated, plus bias
    refs = []
    for w in (w for w in parts if w.shape[0] > 0):                  # C_out = 2 has no sagittal part
        conv = nn.Conv3d(3, w.shape[0], k, stride=stride, padding=padding, bias=False).double()
        conv.weight.data.copy_(w)
        refs.append(conv(x))
    ref = torch.cat(refs, dim=1) + acs.bias.view(1, -1, 1, 1, 1)
    # reference 2: one Conv3d whose k^3 kernel is the concatenation of the zero-padded parts
    full = torch.cat(parts, dim=0)
    ref_single = F.conv3d(x, full, acs.bias, stride=stride, padding=padding)
    with torch.no_grad():
        out = acs(x)
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(out, ref_single)
        torch.testing.assert_close(acs.as_conv3d_weight(), full)


def test_acs_has_exactly_the_2d_parameters():
    acs = ACSConv3d(in_channels=5, out_channels=7, kernel_size=3)
    assert count_parameters(acs) == count_parameters(nn.Conv2d(5, 7, 3))


# ---------------------------------------------------------------- converters

@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_to_3d_inflation_on_a_still_clip(padding):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 5, 3, padding=padding)
    conv3 = conv2d_to_3d(conv)
    assert conv3.kernel_size == (3, 3, 3)
    frame = torch.randn(2, 2, 12, 12)
    clip = frame.unsqueeze(2).expand(-1, -1, 8, -1, -1).contiguous()  # 8 identical frames
    with torch.no_grad():
        out = conv3(clip)
        inner = out if padding == 0 else out[:, :, 1:-1]               # away from the depth border
        expected = conv(frame).unsqueeze(2).expand_as(inner)
        torch.testing.assert_close(inner, expected, atol=1e-5, rtol=1e-5)


def test_conv2d_to_25d_applies_the_2d_conv_to_every_frame():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 5, 3, padding=1)
    conv25 = conv2d_to_25d(conv)
    assert conv25.kernel_size == (1, 3, 3)
    x = torch.randn(2, 2, 6, 10, 10)
    with torch.no_grad():
        per_frame = rearrange(conv(rearrange(x, "b c t h w -> (b t) c h w")), "(b t) c h w -> b c t h w", b=2)
        torch.testing.assert_close(conv25(x), per_frame, atol=1e-5, rtol=1e-5)


def test_conv2d_to_acs_loads_the_2d_weights():
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    acs = conv2d_to_acs(conv)
    assert (acs.stride, acs.padding, acs.split) == (2, 1, (3, 3, 2))
    torch.testing.assert_close(acs.weight, conv.weight)
    torch.testing.assert_close(acs.bias, conv.bias)
    assert acs(torch.randn(1, 3, 8, 8, 8)).shape == (1, 8, 4, 4, 4)


# ---------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("cin, cout", [(1, 16), (16, 16), (16, 32), (64, 64), (3, 45), (64, 128)])
def test_conv2plus1d_matches_conv3d_parameters(cin, cout):
    c = Conv2Plus1d(in_channels=cin, out_channels=cout)
    factored = c.spatial.weight.numel() + c.temporal.weight.numel()
    full = nn.Conv3d(cin, cout, 3, bias=False).weight.numel()
    m = c.mid_channels
    assert m == (cin * cout * 27) // (cin * 9 + 3 * cout)               # torchvision's midplanes
    assert 0 <= full - factored < 9 * cin + 3 * cout                    # equal up to the floor
    assert (m + 1) * (9 * cin + 3 * cout) > full                        # and M is the largest such width


def resnet_param_formula(widths, blocks, kernel_volume, in_channels=1, num_classes=2) -> int:
    """Conv weights + BatchNorm (weight, bias) + fc, written out from the widths."""
    K = kernel_volume
    total = in_channels * widths[0] * K + 2 * widths[0]                 # stem conv + BN
    prev = widths[0]
    for i, (w, n) in enumerate(zip(widths, blocks)):
        for j in range(n):
            cin = prev if j == 0 else w
            total += cin * w * K + 2 * w + w * w * K + 2 * w            # conv1 + bn1 + conv2 + bn2
            if (i > 0 and j == 0) or cin != w:
                total += cin * w + 2 * w                                # 1x1x1 shortcut + BN
        prev = w
    return total + widths[-1] * num_classes + num_classes               # fc


@pytest.mark.parametrize("widths, counts", [
    ((64, 128, 256, 512), {"3d": 33_140_802, "2.5d": 11_168_706, "acs": 11_168_706}),
    ((8, 16, 32, 64), {"3d": 519_178, "2.5d": 175_738, "acs": 175_738}),
])
def test_resnet_parameter_counts(widths, counts):
    for conv, K in (("3d", 27), ("2.5d", 9), ("acs", 9)):
        n = count_parameters(resnet18_3d(conv=conv, widths=widths))
        assert n == resnet_param_formula(widths, (2, 2, 2, 2), K) == counts[conv]   # the module docstring's table


def test_small_preset_and_resnet10_counts():
    assert count_parameters(resnet18_3d_small()) == 519_178
    assert count_parameters(resnet18_3d_small(conv="acs")) == 175_738
    resnet10 = ResNet3D(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1))
    assert count_parameters(resnet10) == resnet_param_formula((8, 16, 32, 64), (1, 1, 1, 1), 27) == 224_938


# ---------------------------------------------------------------- what each model looks at

def test_frame_features_of_a_frame_depend_only_on_that_frame():
    torch.manual_seed(0)
    m = FrameTemporalCNN(widths=(4, 8), temporal_width=8).eval()     # eval: BN uses running stats
    x = torch.randn(2, 1, 12, 28, 28)
    y = x.clone()
    y[:, :, 5] += torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        fx, fy = m.frame_features(x), m.frame_features(y)
        assert fx.shape == (2, 8, 12, 7, 7)
        others = [t for t in range(12) if t != 5]
        torch.testing.assert_close(fx[:, :, others], fy[:, :, others])
        assert not torch.allclose(fx[:, :, 5], fy[:, :, 5])
        torch.testing.assert_close(fx[:, :, 3], m.spatial(x[:, :, 3]))   # folding = the 2D stack per frame


def frame_gradient(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|d logits / d frame| summed per frame: (T,). Non-zero where the output depends on the frame."""
    x = x.clone().requires_grad_(True)
    m(x).sum().backward()
    return x.grad.abs().sum(dim=(0, 1, 3, 4))


@pytest.mark.parametrize("fusion, frames, reads", [
    ("single", 10, [5]), ("late", 10, [0, 9]), ("early", 10, list(range(10))),
    ("slow", 10, list(range(10))), ("slow", 18, list(range(18))),
])
def test_fusion_reads_the_right_frames(fusion, frames, reads):
    torch.manual_seed(0)
    m = FusionCNN(fusion=fusion, frames=frames, width=4).eval()
    x = torch.randn(2, 1, frames, 28, 28)
    g = frame_gradient(m, x)
    assert [t for t in range(frames) if g[t] > 0] == reads
    unread = [t for t in range(frames) if t not in reads]
    if unread:                                                        # changing unread frames changes nothing
        y = x.clone()
        y[:, :, unread] = torch.randn(2, 1, len(unread), 28, 28)
        with torch.no_grad():
            torch.testing.assert_close(m(x), m(y))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("name", list(SMALL))
def test_wrong_rank_and_channels_are_explained(name):
    make, shape = SMALL[name]
    m = make()
    with pytest.raises(VtlibError, match=r"^x: expected a 5-D tensor"):
        m(torch.randn(shape[0], *shape[2:]))                          # channel axis missing
    with pytest.raises(VtlibError, match=r"^x: expected 1 channel"):
        m(torch.randn(shape[0], 3, *shape[2:]))
    with pytest.raises(VtlibError, match=r"^x: expected a floating-point"):
        m(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize("make, arg", [
    (lambda: FusionCNN(fusion="middle"), "^fusion"),
    (lambda: FusionCNN(fusion="slow", frames=6), "^frames"),
    (lambda: FusionCNN(fusion="slow", frames=12), "^frames"),
    (lambda: FusionCNN(fusion="late", frames=1), "^frames"),
    (lambda: ResNet3D(conv="2d"), "^conv"),
    (lambda: ResNet3D(widths=(8, 16), blocks=(2, 2, 2)), "^blocks"),
    (lambda: R2Plus1dCNN(widths=(8, 16), strides=(1,)), "^strides"),
    (lambda: FrameTemporalCNN(widths=()), "^widths"),
    (lambda: ACSConv3d(in_channels=1, out_channels=0), "^out_channels"),
    (lambda: conv2d_to_acs(nn.Linear(3, 3)), "^conv2d"),
    (lambda: conv2d_to_3d(nn.Conv2d(1, 2, 3), inflate="central"), "^inflate"),
    (lambda: conv2d_to_25d(nn.Conv2d(1, 2, (3, 5))), "^conv2d"),
])
def test_bad_config(make, arg):
    with pytest.raises(VtlibError, match=arg):
        make()


@pytest.mark.parametrize("make, shape", [
    (lambda: FusionCNN(fusion="slow", frames=10, width=4), (1, 1, 8, 28, 28)),     # too few frames
    (lambda: FusionCNN(fusion="single", frames=10, width=4), (1, 1, 28, 28, 28)),  # not the built length
    (lambda: FrameTemporalCNN(widths=(4, 8)), (1, 1, 2, 28, 28)),                  # T < temporal kernel
    (lambda: ResNet3D(widths=(4, 4, 4, 4)), (1, 1, 4, 28, 28)),                    # T < total stride 8
    (lambda: R2Plus1dCNN(widths=(4, 4, 4)), (1, 1, 28, 2, 28)),
    (lambda: ACSConv3d(in_channels=1, out_channels=3, kernel_size=3), (1, 1, 2, 8, 8)),
])
def test_too_small_clips_are_explained(make, shape):
    with pytest.raises(VtlibError, match=r"^x: expected"):
        make()(torch.randn(shape))


# ---------------------------------------------------------------- dtype and backward

@pytest.mark.parametrize("name", list(SMALL))
def test_float64_and_bfloat16_inputs_give_float32_logits(name):
    make, shape = SMALL[name]
    m = make().eval()
    x = torch.randn(shape)
    with torch.no_grad():
        ref = m(x)
        for dtype in (torch.float64, torch.bfloat16):
            out = m(x.to(dtype))
            assert out.dtype == torch.float32 and out.shape == (2, 2)
        torch.testing.assert_close(m(x.double()), ref)                # float64 -> float32 is exact here


@pytest.mark.parametrize("name", list(SMALL))
def test_backward_gives_finite_gradients(name):
    torch.manual_seed(0)
    make, shape = SMALL[name]
    m = make()
    loss = F.cross_entropy(m(torch.randn(shape)), torch.tensor([0, 1]))
    loss.backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
