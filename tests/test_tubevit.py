"""TubeViT: shapes, images and clips through one model, the closed gate, cost, joint batches, errors."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vtlib.attention import record_attention
from vtlib.cost import measure_flops
from vtlib.errors import VtlibError
from vtlib.experiments.tubevit import (
    JointLoader,
    build_gated,
    build_image,
    build_tubevit,
    build_vivit,
    slice_loaders,
    summary_rows,
)
from vtlib.models.tubevit import CrossAttention, GatedTubeViT, TubeViT
from vtlib.tubes import Tube, tube_preset


def small(**kw):
    return TubeViT(dim=24, depth=1, heads=2, **kw).eval()


@pytest.mark.parametrize("position", ["none", "learned", "fixed-index", "fixed"])
def test_clips_and_frames(position):
    torch.manual_seed(0)
    m = small(position=position)
    x = torch.randn(2, 1, 28, 28, 28)
    with torch.no_grad(), record_attention(m) as maps:
        logits = m(x)
    assert logits.shape == (2, 2) and m.num_tokens == 76 and m.num_image_tokens == 16
    assert len(maps) == 1 and maps[0].shape == (2, 2, 76, 76)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 76))
    with torch.no_grad():
        torch.testing.assert_close(logits, m(x))                 # recording does not change the logits
    frames = x[:, :, 5]                                          # (B, C, H, W)
    assert m(frames).shape == (2, 2)
    torch.testing.assert_close(m(frames), m(frames.unsqueeze(2)))  # (B, C, H, W) == (B, C, 1, H, W)


@pytest.mark.parametrize("position", ["learned", "fixed"])
def test_image_model_reads_the_middle_frame_of_a_clip(position):
    torch.manual_seed(0)
    m = TubeViT(tubes=tube_preset(28)[3:], dim=24, depth=1, heads=2, position=position).eval()
    x = torch.randn(2, 1, 28, 28, 28)
    torch.testing.assert_close(m(x), m(x[:, :, 14]))             # same tokens, same positions


@pytest.mark.parametrize("position", ["learned", "fixed"])
def test_closed_gate_leaves_the_image_model_unchanged(position):
    torch.manual_seed(0)
    image = TubeViT(tubes=tube_preset(28)[3:], dim=24, depth=2, heads=2, position=position).eval()
    gated = GatedTubeViT(image_model=image, tubes=tube_preset(28)[:3], heads=2).eval()
    x = torch.randn(3, 1, 28, 28, 28)
    assert gated.gate.item() == 0.0
    torch.testing.assert_close(gated(x), image(x), rtol=0, atol=0)           # clips
    torch.testing.assert_close(gated(x[:, :, 9]), image(x[:, :, 9]), rtol=0, atol=0)  # frames
    # the gate is trainable: it gets a gradient at once, and once open the clips change
    gated(x).sum().backward()
    assert gated.alpha.grad is not None and gated.alpha.grad.abs().item() > 0
    with torch.no_grad():
        gated.alpha.fill_(0.5)
    assert not torch.allclose(gated(x), image(x))
    torch.testing.assert_close(gated(x[:, :, 9]), image(x[:, :, 9]))         # frames never see the tubes


def test_experiment_builders_and_64():
    torch.manual_seed(0)
    image = build_image(28, dim=12, depth=1)
    assert isinstance(build_gated(image), GatedTubeViT)
    assert [build_tubevit(28, num_tubes=n, dim=12, depth=1).num_tokens for n in (1, 2, 4)] == [16, 32, 76]
    m = build_tubevit(64, dim=12, depth=1, heads=2)
    x = torch.randn(2, 1, 64, 64, 64)
    m(x).sum().backward()
    assert m.num_tokens == 80 and all(c.weight.grad is not None for c in m.embed.convs)


@pytest.mark.parametrize("size", [28, 64])
def test_sparse_tubes_cost_fewer_flops_than_vivit(size):
    tube, vivit = build_tubevit(size, dim=24, depth=1, heads=2), build_vivit(size, dim=24, depth=1, heads=2)
    x = torch.zeros(1, 1, size, size, size)
    assert tube.num_tokens < vivit.num_tokens
    assert measure_flops(tube, x) < measure_flops(vivit, x)


def test_joint_loader_alternates_clips_and_frames():
    clips = DataLoader(TensorDataset(torch.zeros(6, 1, 4, 8, 8), torch.zeros(6, dtype=torch.long)), batch_size=2)
    frames = DataLoader(TensorDataset(torch.zeros(3, 1, 1, 8, 8), torch.zeros(3, dtype=torch.long)), batch_size=2)
    batches = list(JointLoader(clips, frames))
    assert len(batches) == len(JointLoader(clips, frames)) == 6
    assert [b[0].shape[2] for b in batches] == [4, 1, 4, 1, 4, 1]       # frames cycle when exhausted


def test_errors():
    m = small()
    with pytest.raises(VtlibError, match="^x:"):
        m(torch.zeros(1, 1, 28, 28, 20))
    with pytest.raises(VtlibError, match="^x:"):
        m(torch.zeros(1, 1, 14, 28, 28))
    with pytest.raises(VtlibError, match="^x:"):
        m(torch.zeros(28, 28, 28))
    with pytest.raises(VtlibError, match="^x:.*no 2D tube"):
        TubeViT(tubes=tube_preset(28, 1), dim=12, depth=1, heads=2)(torch.zeros(1, 1, 28, 28))
    with pytest.raises(VtlibError, match="^tubes:"):
        TubeViT(video_shape=(16, 28, 28), dim=12, depth=1, heads=2)
    with pytest.raises(VtlibError, match="^kernel:"):
        TubeViT(video_shape=(16, 16, 16), tubes=[Tube((8, 8, 8), 8, (0, 10, 0))], dim=12, depth=1, heads=2)
    with pytest.raises(VtlibError, match="^dim:"):
        TubeViT(dim=64)                                          # fixed sin-cos needs dim % 6 == 0
    with pytest.raises(VtlibError, match="^image_model:"):
        GatedTubeViT(image_model=build_tubevit(28, num_tubes=1, dim=12, depth=1), tubes=tube_preset(28)[:3])
    with pytest.raises(VtlibError, match="^heads:"):
        CrossAttention(dim=12, heads=5)
    with pytest.raises(VtlibError, match="^context:"):
        CrossAttention(dim=12, heads=2)(torch.zeros(1, 3, 12), torch.zeros(1, 3, 6))
    with pytest.raises(VtlibError, match="^frames:"):
        JointLoader(DataLoader(TensorDataset(torch.zeros(2, 1))), [])


def test_slice_loaders_label_every_slice_with_its_clip():
    x = torch.arange(3 * 5, dtype=torch.float32).view(3, 1, 5, 1, 1).expand(3, 1, 5, 2, 2).contiguous()
    y = torch.tensor([0, 1, 0])
    out = slice_loaders({"test": DataLoader(TensorDataset(x, y))}, frames=(1, 3))["test"]
    xs, ys = out.dataset.tensors
    assert xs.shape == (6, 1, 1, 2, 2) and ys.tolist() == [0, 0, 1, 1, 0, 0]
    assert xs[:, 0, 0, 0, 0].tolist() == [1, 3, 6, 8, 11, 13]              # clip-major, then slice
    with pytest.raises(VtlibError, match="^frames:"):
        slice_loaders({"test": DataLoader(TensorDataset(x, y))}, frames=(5,))


def test_summary_rows_mean_and_std_per_config():
    rows = [dict(config="a", test_auc=0.6, test_acc=0.7), dict(config="a", test_auc=0.8, test_acc=0.7),
            dict(config="b", test_auc=0.5, test_acc=0.5, slice_test_auc=0.6, slice_test_acc=0.6)]
    out = {r["config"]: r for r in summary_rows(rows)}
    assert out["a"]["n"] == 2 and abs(out["a"]["test_auc_mean"] - 0.7) < 1e-9
    assert "slice_test_auc_mean" in out["b"] and "slice_test_auc_mean" not in out["a"]
