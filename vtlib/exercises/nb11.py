"""Exercise checks for notebook 11 (CNN baselines).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line.

- ``check_acs_conv``: ACS convolution for any odd kernel size, any split of the output channels
  and a stride, against ``vtlib.acs.ACSConv3d``.
- ``check_channels_last_frames``: fold a channels-last clip (B, T, H, W, C) into frames
  (B*T, C, H, W) and back, against einops and ``FrameTemporalCNN.frame_features``.
- ``check_scrambled_fusion``: early and slow fusion trained on clips whose frames are put in one
  fixed scrambled order; the learner's measured AUCs and yes/no answers are compared with a
  small run recomputed here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import DataLoader, TensorDataset

from vtlib.acs import ACSConv3d, acs_split
from vtlib.exercises.common import call, compare_tensor, verdict
from vtlib.models.cnn_temporal import FrameTemporalCNN

# One fixed scrambled order of 10 frames, the same for every clip (exercise 3).
SCRAMBLE = (3, 7, 0, 9, 5, 1, 8, 2, 6, 4)
SOLVED = 0.9          # "still solves the direction task": test AUC at least this


# ----------------------------------------------------------------------------- exercise 1: ACS
# (x shape (B, C_in, D, H, W), C_out, kernel, split (axial, coronal, sagittal), stride)
_ACS_CASES = [((2, 3, 7, 8, 9), 5, 5, (2, 2, 1), 1),
              ((1, 2, 9, 6, 11), 6, 3, (1, 3, 2), 2),
              ((2, 4, 6, 7, 5), 7, 5, (3, 1, 3), 2)]


def _acs_reference(x: torch.Tensor, weight: torch.Tensor, split, stride: int) -> torch.Tensor:
    """vtlib's ACSConv3d with its split set to ``split`` and "same" padding k // 2."""
    k = weight.shape[-1]
    acs = ACSConv3d(in_channels=weight.shape[1], out_channels=weight.shape[0], kernel_size=k,
                    stride=stride, padding=k // 2, bias=False)
    acs.split = tuple(split)
    with torch.no_grad():
        acs.weight.copy_(weight)
        return acs(x)


def _acs_variant(x, weight, split, stride, unit_axes=(2, 3, 4), pad_unit_axis=False):
    """A plain-F.conv3d ACS with chosen unit axes per part: used to recognise typical slips."""
    p = weight.shape[-1] // 2
    outs = []
    for w, axis in zip(weight.split(list(split), dim=0), unit_axes):
        if w.shape[0] == 0:
            continue
        pad = [p, p, p]
        if not pad_unit_axis:
            pad[axis - 2] = 0
        outs.append(F.conv3d(x, w.unsqueeze(axis), stride=stride, padding=tuple(pad)))
    return torch.cat(outs, dim=1)


def check_acs_conv(fn: Callable) -> bool:
    """``fn(x (B, C_in, D, H, W), weight (C_out, C_in, k, k), split (a, c, s), stride) -> (B, C_out, D', H', W')``.

    ACS convolution without bias: the first ``a`` output channels use the 2D kernel as an axial
    (1, k, k) kernel, the next ``c`` as a coronal (k, 1, k) one, the last ``s`` as a sagittal
    (k, k, 1) one; padding k // 2 on the two axes each kernel spans, none on its unit axis.
    """
    name = "check_acs_conv"
    hint = ("split the weight on its output channels as given; each part is one F.conv3d with the 2D "
            "kernel given a unit axis (unsqueeze at 2, 3 or 4), padded by k // 2 only on the axes it spans")
    g = torch.Generator().manual_seed(11)
    for shape, c_out, k, split, stride in _ACS_CASES:
        x = torch.randn(shape, generator=g)
        w = torch.randn(c_out, shape[1], k, k, generator=g)
        what = f"fn(x {tuple(shape)}, weight {tuple(w.shape)}, split={split}, stride={stride})"
        got, problem = call(fn, (x.clone(), w.clone(), split, stride), what)
        if problem and "Sizes of tensors must match" in problem:
            return verdict(name, "the three parts came out with different sizes, so they do not concatenate: "
                                 "no padding along the axis where a kernel is 1 wide", hint)
        if problem:
            return verdict(name, problem, hint)
        want = _acs_reference(x, w, split, stride)
        problem = compare_tensor(got, want, what, atol=1e-4)
        if problem is None:
            continue
        if isinstance(got, torch.Tensor):
            got = got.detach().float()
            slips = [
                ((2, 4, 3), False, "the coronal kernel is (k, 1, k) (unit axis H, dim 3) and the sagittal one "
                                   "(k, k, 1) (unit axis W, dim 4): you swapped them"),
                ((2, 3, 4), True, "no padding along the axis where a kernel is 1 wide: padding k // 2 there "
                                  "adds 2 * (k // 2) positions on that axis"),
            ]
            for axes, pad_unit, why in slips:
                try:
                    alt = _acs_variant(x, w, split, stride, axes, pad_unit)
                except RuntimeError:          # parts of different sizes do not concatenate
                    continue
                if got.shape == alt.shape and torch.allclose(got, alt, rtol=1e-4, atol=1e-4):
                    return verdict(name, why, hint)
            thirds = acs_split(c_out)
            if tuple(thirds) != tuple(split):
                alt = _acs_variant(x, w, thirds, stride)
                if got.shape == alt.shape and torch.allclose(got, alt, rtol=1e-4, atol=1e-4):
                    return verdict(name, f"that is the equal-thirds split {thirds}; use the split you are "
                                         f"given, {split}", hint)
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: folding
def check_channels_last_frames(to_frames: Callable, from_frames: Callable) -> bool:
    """``to_frames(x (B, T, H, W, C)) -> (B*T, C, H, W)`` in (b t) order, and
    ``from_frames(f (B*T, C', H', W'), b) -> (B, T, H', W', C')``, for any channel count C'."""
    name = "check_channels_last_frames"
    hint = ("name every axis with einops: C has to travel from last to second before B and T merge "
            "(batch first), and the unfold undoes exactly that merge")
    g = torch.Generator().manual_seed(12)
    for b, t, h, w, c in ((2, 3, 5, 6, 4), (3, 2, 4, 4, 1)):
        x = torch.randn(b, t, h, w, c, generator=g)
        what = f"to_frames(x {(b, t, h, w, c)})"
        got, problem = call(to_frames, (x.clone(),), what)
        if problem:
            return verdict(name, problem, hint)
        want = rearrange(x, "b t h w c -> (b t) c h w")
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor):
            got = got.detach()
            if tuple(got.shape) == (b * t, h, w, c):
                problem = f"{what}: shape {tuple(got.shape)} keeps channels last; nn.Conv2d wants (B*T, C, H, W)"
            elif got.shape == want.shape and torch.equal(got, rearrange(x, "b t h w c -> (t b) c h w")):
                problem = (f"{what}: the frames come in (t b) order; put the batch first, (b t), so that "
                           "rows 0..T-1 are clip 0's frames and unfolding with b=B gives them back")
            elif got.shape == want.shape and c > 1 and torch.equal(got, x.reshape(b * t, c, h, w)):
                problem = (f"{what}: reshape only relabels memory, it does not move C from last to second; "
                           "move the axis (rearrange or permute) before merging")
        if problem:
            return verdict(name, problem, hint)
        # back from frames with another channel count and frame size (a 2D stack changes both)
        f = torch.randn(b * t, 7, h - 1, w + 1, generator=g)
        what = f"from_frames(f {tuple(f.shape)}, b={b})"
        got, problem = call(from_frames, (f.clone(), b), what)
        if problem:
            return verdict(name, problem, hint)
        want = rearrange(f, "(b t) c h w -> b t h w c", b=b)
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
            if torch.equal(got.detach(), rearrange(f, "(t b) c h w -> b t h w c", b=b)):
                problem = f"{what}: you unfolded in (t b) order; to_frames merged (b t), undo exactly that"
            elif torch.equal(got.detach(), f.reshape(want.shape)):
                problem = f"{what}: reshape does not move the channel axis back to the end; rearrange or permute"
        if problem:
            return verdict(name, problem, hint)
        round_trip, problem = call(from_frames, (to_frames(x.clone()), b), "from_frames(to_frames(x), b)")
        problem = problem or compare_tensor(round_trip, x, "from_frames(to_frames(x), b)")
        if problem:
            return verdict(name, problem, hint)
    # with a real per-frame 2D stack: the same features as vtlib's FrameTemporalCNN (eval mode)
    torch.manual_seed(0)
    model = FrameTemporalCNN(in_channels=3, widths=(4,), temporal_width=4, temporal_kernel=1).eval()
    x = torch.randn(2, 4, 8, 8, 3, generator=g)                                # (B, T, H, W, C)
    with torch.no_grad():
        want = rearrange(model.frame_features(rearrange(x, "b t h w c -> b c t h w")), "b c t h w -> b t h w c")
        got, problem = call(lambda v: from_frames(model.spatial(to_frames(v)), 2), (x,),
                            "from_frames(model.spatial(to_frames(x)), 2)")
    problem = problem or compare_tensor(got, want, "per-frame features through your fold and unfold")
    return verdict(name, problem, hint)


# ----------------------------------------------------------------------------- exercise 3: scrambled frames
def _scrambled_data(order, size: int, n_train: int, seed: int = 0) -> dict[str, DataLoader]:
    from vtlib.data import make_motion_videos

    n_eval = max(n_train // 4, 64)
    out = {}
    for i, (split, n) in enumerate((("train", n_train), ("val", n_eval), ("test", n_eval))):
        x, y = make_motion_videos(n, "direction", len(order), size, seed=i)
        out[split] = DataLoader(TensorDataset(x[:, :, list(order)], y), batch_size=32, shuffle=split == "train",
                                generator=torch.Generator().manual_seed(seed))
    return out


@lru_cache(maxsize=4)
def scrambled_reference(size: int = 16, n_train: int = 256, epochs: int = 2) -> dict[str, float]:
    """Test AUC of early and slow fusion (width 8) trained on direction clips in the order ``SCRAMBLE``."""
    from vtlib.models.fusion import FusionCNN
    from vtlib.train import TrainConfig, fit

    data = _scrambled_data(SCRAMBLE, size, n_train)
    out = {}
    for fusion in ("early", "slow"):
        torch.manual_seed(0)
        model = FusionCNN(fusion=fusion, frames=len(SCRAMBLE), width=8)
        cfg = TrainConfig(epochs=epochs, lr=3e-3, seed=0, progress=False, device="cpu")
        out[fusion] = float(fit(model, data["train"], data["val"], cfg, test_loader=data["test"]).test["auc"])
    return out


def check_scrambled_fusion(fn: Callable, answers, reference: dict | None = None) -> bool:
    """``fn(fusion, order) -> test AUC`` of ``FusionCNN(fusion=fusion, frames=10)`` trained and evaluated on
    direction clips whose frames are all put in the one fixed ``order``; ``answers`` = {"early": bool,
    "slow": bool}: does each still solve the task (test AUC >= 0.9)?

    The expected answers come from a small run recomputed here (``scrambled_reference``), or from
    ``reference`` = {"early": auc, "slow": auc} when given.
    """
    name = "check_scrambled_fusion"
    hint = ("scramble train, val and test clips alike with x[:, :, order] (one order for every clip), "
            "train as in section 4, and answer from your own AUCs")
    aucs = {}
    for fusion in ("early", "slow"):
        got, problem = call(fn, (fusion, SCRAMBLE), f"fn({fusion!r}, SCRAMBLE)")
        if problem:
            return verdict(name, problem, hint)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not 0 <= float(got) <= 1:
            return verdict(name, f"fn({fusion!r}, SCRAMBLE) should return a test AUC in [0, 1], got {got!r}", hint)
        aucs[fusion] = float(got)
    if not isinstance(answers, dict) or any(not isinstance(answers.get(f), bool) for f in ("early", "slow")):
        return verdict(name, 'set answers = {"early": True or False, "slow": True or False}', hint)
    ref = reference if reference is not None else scrambled_reference()
    expected = {f: ref[f] >= SOLVED for f in ("early", "slow")}
    for fusion in ("early", "slow"):
        if (aucs[fusion] >= SOLVED) != expected[fusion]:
            why = ("a fixed order still leaves every clip's motion readable, so it should stay near 1; "
                   "did you shuffle each clip with its own order, or scramble only some of the splits?"
                   if expected[fusion] else "the recomputed run does not solve it")
            return verdict(name, f"your {fusion}-fusion test AUC is {aucs[fusion]:.2f}, the reference run's "
                                 f"{ref[fusion]:.2f}: {why}", hint)
    for fusion in ("early", "slow"):
        if answers[fusion] != expected[fusion]:
            because = {"early": "its first conv weighs every frame with its own kernel slice: a fixed "
                                "scramble only permutes those slices, which training learns just as well",
                       "slow": "its first conv sees 4 frames at a time and its last conv all 10; within each "
                               "window the (scrambled) order is the same in every clip, so it can still learn "
                               "which frame comes first"}[fusion] if expected[fusion] else "read it from your AUC"
            return verdict(name, f"answers[{fusion!r}] = {answers[fusion]}, but your own AUC "
                                 f"({aucs[fusion]:.2f}) says {expected[fusion]}: {because}", hint)
    return verdict(name, None, hint)
