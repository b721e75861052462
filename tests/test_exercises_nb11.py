"""Notebook 11's checks: the solutions pass, the stubs print "not yet", typical slips get their hint."""
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange
from exercise_helpers import NOT_YET, stub

from vtlib.exercises import nb11
from vtlib.exercises.solutions import nb11 as sol


# ----------------------------------------------------------------------------- exercise 1: ACS
def test_acs_solution_stub_and_slips(capsys):
    assert nb11.check_acs_conv(sol.acs_conv3d)
    assert capsys.readouterr().out.strip() == "check_acs_conv: correct"
    assert not nb11.check_acs_conv(stub)
    assert NOT_YET in capsys.readouterr().out

    def swapped(x, weight, split, stride=1):            # coronal and sagittal kernels swapped
        p = weight.shape[-1] // 2
        a, c, s = weight.split(list(split), dim=0)
        return torch.cat([F.conv3d(x, a.unsqueeze(2), stride=stride, padding=(0, p, p)),
                          F.conv3d(x, c.unsqueeze(4), stride=stride, padding=(p, p, 0)),
                          F.conv3d(x, s.unsqueeze(3), stride=stride, padding=(p, 0, p))], dim=1)

    assert not nb11.check_acs_conv(swapped)
    assert "you swapped them" in capsys.readouterr().out

    def padded_everywhere(x, weight, split, stride=1):  # padding k // 2 on the unit axis too
        p = weight.shape[-1] // 2
        a, c, s = weight.split(list(split), dim=0)
        return torch.cat([F.conv3d(x, w, stride=stride, padding=p)
                          for w in (a.unsqueeze(2), c.unsqueeze(3), s.unsqueeze(4))], dim=1)

    assert not nb11.check_acs_conv(padded_everywhere)
    assert "no padding along the axis" in capsys.readouterr().out

    def thirds(x, weight, split, stride=1):             # ignores the split it is given
        return sol.acs_conv3d(x, weight, nb11.acs_split(weight.shape[0]), stride)

    assert not nb11.check_acs_conv(thirds)
    assert "equal-thirds split" in capsys.readouterr().out


def test_acs_reference_is_vtlib():
    """The check's reference (ACSConv3d with another split) equals the plain-F.conv3d variant."""
    x, w = torch.randn(2, 3, 7, 8, 9), torch.randn(5, 3, 5, 5)
    for stride in (1, 2):
        assert torch.allclose(nb11._acs_reference(x, w, (2, 2, 1), stride),
                              nb11._acs_variant(x, w, (2, 2, 1), stride), atol=1e-4)


# ----------------------------------------------------------------------------- exercise 2: folding
def test_channels_last_solution_stub_and_slips(capsys):
    assert nb11.check_channels_last_frames(sol.to_frames, sol.from_frames)
    assert capsys.readouterr().out.strip() == "check_channels_last_frames: correct"
    assert not nb11.check_channels_last_frames(stub, stub)
    assert NOT_YET in capsys.readouterr().out
    assert not nb11.check_channels_last_frames(sol.to_frames, stub)
    assert NOT_YET in capsys.readouterr().out

    def time_first(x):
        return rearrange(x, "b t h w c -> (t b) c h w")

    assert not nb11.check_channels_last_frames(time_first, sol.from_frames)
    assert "(t b) order" in capsys.readouterr().out

    def plain_reshape(x):
        b, t, h, w, c = x.shape
        return x.reshape(b * t, c, h, w)

    assert not nb11.check_channels_last_frames(plain_reshape, sol.from_frames)
    assert "reshape only relabels memory" in capsys.readouterr().out

    assert not nb11.check_channels_last_frames(lambda x: x.flatten(0, 1), sol.from_frames)
    assert "keeps channels last" in capsys.readouterr().out

    def unfold_reshape(f, b):
        n, c, h, w = f.shape
        return f.reshape(b, n // b, h, w, c)

    assert not nb11.check_channels_last_frames(sol.to_frames, unfold_reshape)
    assert "reshape does not move the channel axis" in capsys.readouterr().out


# ----------------------------------------------------------------------------- exercise 3: scrambled frames
FAST = dict(size=16, n_train=256, epochs=2)


def test_scrambled_reference_solves_the_task():
    ref = nb11.scrambled_reference(**FAST)
    assert ref["early"] >= nb11.SOLVED and ref["slow"] >= nb11.SOLVED


def test_scrambled_solution_stub_and_slips(capsys):
    ref = nb11.scrambled_reference(**FAST)
    fast = partial(sol.scrambled_test_auc, **FAST)
    assert nb11.check_scrambled_fusion(fast, sol.ANSWERS, reference=ref)
    assert capsys.readouterr().out.strip() == "check_scrambled_fusion: correct"

    assert not nb11.check_scrambled_fusion(stub, {"early": None, "slow": None}, reference=ref)
    assert NOT_YET in capsys.readouterr().out

    assert not nb11.check_scrambled_fusion(fast, {"early": None, "slow": None}, reference=ref)
    assert "set answers" in capsys.readouterr().out

    assert not nb11.check_scrambled_fusion(fast, {"early": True, "slow": False}, reference=ref)  # the usual guess
    out = capsys.readouterr().out
    assert "answers['slow'] = False" in out and "hint:" in out

    def per_clip_shuffle(fusion, order):               # slip: a new random order for every clip
        data = nb11._scrambled_data(order, FAST["size"], FAST["n_train"])
        g = torch.Generator().manual_seed(0)
        loaders = {}
        for split, loader in data.items():
            x, y = loader.dataset.tensors
            idx = torch.argsort(torch.rand(x.shape[0], x.shape[2], generator=g), dim=1)
            x = torch.gather(x, 2, idx[:, None, :, None, None].expand_as(x))
            loaders[split] = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32,
                                                         shuffle=split == "train")
        from vtlib.models.fusion import FusionCNN
        from vtlib.train import TrainConfig, fit
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=FAST["epochs"], lr=3e-3, progress=False, device="cpu")
        return fit(FusionCNN(fusion=fusion, frames=10, width=8), loaders["train"], loaders["val"], cfg,
                   test_loader=loaders["test"]).test["auc"]

    assert not nb11.check_scrambled_fusion(per_clip_shuffle, sol.ANSWERS, reference=ref)
    assert "its own order" in capsys.readouterr().out

    assert not nb11.check_scrambled_fusion(lambda fusion, order: "high", sol.ANSWERS, reference=ref)
    assert "test AUC in [0, 1]" in capsys.readouterr().out
