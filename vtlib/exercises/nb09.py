"""Exercise checks for notebook 09 (sparse video tubes, TubeViT).

Each check calls the learner's function (or reads their answer) on fixed inputs, compares it with
``vtlib.tubes``, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <hint>") and
returns a bool. Inputs are fixed or come from a private seeded generator.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from vtlib.exercises.common import verdict
from vtlib.tubes import PAPER_TUBES, PAPER_VIDEO, Tube, as_tubes, tube_centres, tube_coverage, tube_grid

# (video_shape, kernel, stride, offset): the paper's tubes, a preset tube and awkward cases.
_CASES = [(PAPER_VIDEO, t.kernel, t.stride, t.offset) for t in PAPER_TUBES] + [
    ((28, 28, 28), (4, 4, 4), (7, 14, 14), (0, 0, 0)), ((28, 28, 28), (7, 2, 2), (3, 14, 14), (2, 4, 4)),
    ((11, 9, 13), (3, 2, 5), (4, 3, 2), (1, 0, 2)), ((9, 8, 8), (1, 4, 4), (9, 4, 4), (0, 0, 0))]


def check_tube_count(fn: Callable) -> bool:
    """fn(video_shape (T, H, W), kernel, stride, offset) -> number of tokens of that tube (an int)."""
    name = "check_tube_count"
    for shape, k, s, o in _CASES:
        want = math.prod(tube_grid(shape, Tube(k, s, o)))
        try:
            got = fn(shape, k, s, o)
        except Exception as err:                               # report, never crash the cell
            return verdict(name, f"it raised {type(err).__name__}; return an int")
        if got != want:
            if got == math.prod((d - ki) // si + 1 for d, ki, si in zip(shape, k, s)):
                return verdict(name, "subtract the offset too: (D - offset - kernel) // stride + 1 per axis")
            if got == math.prod(-(-(d - oi) // si) for d, oi, si in zip(shape, o, s)):
                return verdict(name, "a window must fit entirely: (D - offset - kernel) // stride + 1, "
                                     "not ceil((D - offset) / stride)")
            return verdict(name, f"for kernel {k}, stride {s}, offset {o} on {shape} expected {want}, "
                                 f"got {got}; multiply (D - o - k) // s + 1 over t, h, w")
    return verdict(name, None)


def check_tube_centres(fn: Callable) -> bool:
    """fn(video_shape, kernel, stride, offset) -> (N, 3) float tensor of (t, h, w) centres, (t h w) order."""
    name = "check_tube_centres"
    for shape, k, s, o in _CASES[4:]:
        want = tube_centres(shape, Tube(k, s, o))
        try:
            got = torch.as_tensor(fn(shape, k, s, o)).float()
        except Exception as err:
            return verdict(name, f"it raised {type(err).__name__}; return a tensor shaped (N, 3)")
        if got.shape != want.shape:
            return verdict(name, f"expected shape {tuple(want.shape)} for kernel {k}, stride {s} on {shape}, "
                                 f"got {tuple(got.shape)}")
        if torch.allclose(got, want - torch.tensor([(ki - 1) / 2 for ki in k])):
            return verdict(name, "that is the first voxel of each window; add (kernel - 1) / 2 for the centre")
        if torch.allclose(got, want - torch.tensor([(ki - 1) / 2 - ki // 2 for ki in k])):
            return verdict(name, "k // 2 is half a voxel off for even kernels: the centre of voxels "
                                 "a..a+k-1 is a + (k - 1) / 2")
        if not torch.allclose(got, want):
            return verdict(name, "centre = offset + index * stride + (kernel - 1) / 2 per axis, rows in "
                                 "(t h w) order (torch.meshgrid(..., indexing='ij'))")
    return verdict(name, None)


def check_closed_gate(fn: Callable) -> bool:
    """fn(z (B, N, D), contribution (B, N, D), alpha (scalar tensor)) -> gated z (B, N, D).

    Must equal z exactly at alpha = 0, let a gradient reach alpha at 0, and stay bounded.
    """
    name = "check_closed_gate"
    g = torch.Generator().manual_seed(9)
    z, c = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    alpha = torch.zeros((), requires_grad=True)
    try:
        out = fn(z, c, alpha)
        closed = isinstance(out, torch.Tensor) and out.shape == z.shape and torch.equal(out.detach(), z)
        if closed:
            out.sum().backward()
        grad = alpha.grad
        big = fn(z, c, torch.tensor(50.0))
        mid = fn(z, c, torch.tensor(0.3))
    except Exception as err:
        return verdict(name, f"it raised {type(err).__name__}; return z + gate * contribution")
    if not closed:
        if isinstance(out, torch.Tensor) and out.shape == z.shape and torch.allclose(out.detach(), z + 0.5 * c):
            return verdict(name, "sigmoid(0) = 0.5 leaves the gate half open; tanh(0) = 0 closes it")
        return verdict(name, "at alpha = 0 the output must be z itself (the image model's tokens)")
    if grad is None or grad.abs().item() == 0:
        return verdict(name, "alpha gets no gradient at 0, so the gate can never open: use tanh(alpha)")
    if not torch.allclose(big, z + c, atol=1e-4):
        return verdict(name, "the gate should saturate at 1 for large alpha: z + tanh(alpha) * contribution")
    if not torch.allclose(mid, z + math.tanh(0.3) * c, atol=1e-6):
        return verdict(name, "use z + tanh(alpha) * contribution")
    return verdict(name, None)


def check_tube_design(tubes, size: int = 28, max_tokens: int = 112, min_coverage: float = 0.25) -> bool:
    """Your own tubes for size^3 clips: >= 3 shapes including a 2D patch, every tube fits, at most
    ``max_tokens`` tokens (ViViT's 4x7x7 gives 112) and at least ``min_coverage`` of the voxels read."""
    name = "check_tube_design"
    shape = (size,) * 3
    try:
        tubes = as_tubes(tubes)
        tokens = sum(t.num_tokens(shape) for t in tubes)
        cover = tube_coverage(shape, tubes).float().mean().item()
    except Exception as err:
        return verdict(name, f"{type(err).__name__}: {err}")
    if len({t.kernel for t in tubes}) < 3:
        return verdict(name, "use at least three different kernel shapes")
    if not any(t.is_2d for t in tubes):
        return verdict(name, "include a 2D tube (kernel t = 1) so the model also reads single frames")
    if tokens > max_tokens:
        return verdict(name, f"{tokens} tokens; stay at or below {max_tokens}: larger strides")
    if cover < min_coverage:
        return verdict(name, f"the tubes read {cover:.1%} of the voxels; reach {min_coverage:.0%}: "
                             "larger kernels or offsets that fill the gaps")
    return verdict(name, None)
