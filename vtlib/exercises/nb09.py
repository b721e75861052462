"""Exercise checks for notebook 09 (sparse video tubes, TubeViT).

Each check calls the learner's function (or reads their answer) on fixed inputs, compares it with a
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed "write the
function first" line; an answer still set to ``None`` gets a fixed placeholder line.

- ``check_fit_stride``: the largest stride that gives a tube exactly n windows along one axis (or
  None when no stride does), against a brute-force search.
- ``check_dilated_centres``: the centres of a DILATED tube's tokens, against the mean coordinate of
  the voxels each window reads (a dilated averaging ``conv3d`` over coordinate volumes).
- ``check_closed_gate``: a per-channel gate that starts closed, can open and stays bounded; any gate
  function with the stated properties passes (tanh is one of them, not a requirement).
- ``check_tube_design``: a small experiment: measure how many windows of a set of tubes touch the
  gland, then design tubes (at most 76 tokens, three shapes or more, one of them a 2D patch) whose
  windows touch it at least 40 % of the time.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from vtlib.exercises.common import call, compare_count, verdict
from vtlib.tubes import Tube, as_tubes, tube_preset

PLACEHOLDER = "still None: set it to your answer"


# ----------------------------------------------------------------------------- exercise 1: fit a stride
_STRIDE_CASES = [(28, 4, 0, 4), (28, 7, 2, 3), (224, 4, 8, 7), (10, 4, 3, 3), (28, 1, 14, 2), (64, 8, 0, 5),
                 (12, 14, 0, 2), (20, 4, 0, 30), (28, 4, 0, 2), (32, 16, 4, 3), (13, 3, 0, 4)]


def fit_stride_reference(size: int, kernel: int, offset: int, n: int) -> int | None:
    """The largest stride s with (size - offset - kernel) // s + 1 == n, or None (brute force, n >= 2)."""
    room = size - offset - kernel
    return next((s for s in range(room, 0, -1) if room // s + 1 == n), None)


def check_fit_stride(fn: Callable) -> bool:
    """``fn(size, kernel, offset, n) -> int or None``: along one axis of ``size`` voxels, the LARGEST
    stride that gives a tube with this kernel and offset exactly ``n`` windows (n >= 2), or None if
    no stride gives exactly n."""
    name = "check_fit_stride"
    hint = ("n windows leave n - 1 gaps in the room R = size - offset - kernel, so s <= R // (n - 1); "
            "then count the windows that stride really gives, (R // s) + 1, and return None if it is not n")
    for size, kernel, offset, n in _STRIDE_CASES:
        what = f"fn(size={size}, kernel={kernel}, offset={offset}, n={n})"
        got, problem = call(fn, (size, kernel, offset, n), what)
        if problem:
            return verdict(name, problem, hint)
        want = fit_stride_reference(size, kernel, offset, n)
        room = size - offset - kernel
        if want is None:
            if got is None:
                continue
            if isinstance(got, (int, float)) and got >= 1 and room >= 0:
                problem = (f"{what}: with stride {got} the tube gives {room // int(got) + 1} windows, not {n}, and "
                           "no stride gives exactly n here: return None")
            elif room < 0:
                problem = f"{what}: the kernel does not fit after the offset (R = {room} < 0): return None"
            else:
                problem = f"{what}: no stride gives exactly {n} windows here: return None"
            return verdict(name, problem, hint)
        problem = None if got is not None and compare_count(got, want, what) is None else f"{what} should be {want}"
        if problem:
            if got is not None and isinstance(got, (int, float)) and got >= 1:
                g = int(got)
                if g == (size - kernel) // (n - 1) and offset:
                    problem = f"{what}: subtract the offset too: the room is size - offset - kernel = {room}"
                elif g == room // n:
                    problem = f"{what}: n windows have n - 1 gaps between their starts, not n"
                elif g < want and room // g + 1 == n:
                    problem = f"{what}: stride {g} gives {n} windows, but so does the larger {want}"
                else:
                    problem = f"{what}: stride {g} gives {room // g + 1} windows; the answer is {want}"
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: dilated centres
_DILATED_CASES = [((16, 16, 16), (2, 3, 3), (5, 4, 4), (1, 1, 1), (3, 2, 2)),
                  ((28, 28, 28), (4, 4, 4), (7, 14, 14), (0, 0, 0), (2, 2, 2)),
                  ((28, 28, 28), (1, 7, 7), (28, 7, 7), (14, 0, 0), (1, 1, 1)),
                  ((11, 9, 13), (3, 2, 2), (4, 3, 2), (1, 0, 2), (2, 3, 1))]


def dilated_centres_reference(video_shape, kernel, stride, offset, dilation) -> torch.Tensor:
    """(N, 3) mean (t, h, w) coordinate of the voxels each window of a dilated tube reads, rows in
    (t h w) order: a dilated averaging convolution over the three coordinate volumes."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(d, dtype=torch.float64) for d in video_shape],
                                        indexing="ij"))                        # (3, T, H, W)
    ot, oh, ow = offset
    weight = torch.full((1, 1, *kernel), 1.0 / math.prod(kernel), dtype=torch.float64)
    out = F.conv3d(coords[:, None, ot:, oh:, ow:], weight, stride=stride, dilation=dilation)  # (3, 1, nt, nh, nw)
    return out.flatten(1).T.float()                                             # (N, 3)


def check_dilated_centres(fn: Callable) -> bool:
    """``fn(video_shape, kernel, stride, offset, dilation) -> (N, 3)`` float tensor: the (t, h, w)
    centres of the tokens of a tube whose kernel reads every ``dilation``-th voxel (a Conv3d with
    that dilation on the clip cropped at the offset), rows in (t h w) order."""
    name = "check_dilated_centres"
    hint = ("a dilated window reads o + i*s + j*d for j = 0..k-1, so it spans (k - 1)*d + 1 voxels (use that in "
            "the count) and its centre is o + i*s + (k - 1)*d / 2; build the grid with "
            "torch.meshgrid(..., indexing='ij')")
    for shape, k, s, o, d in _DILATED_CASES:
        what = f"fn({shape}, kernel={k}, stride={s}, offset={o}, dilation={d})"
        got, problem = call(fn, (shape, k, s, o, d), what)
        if problem:
            return verdict(name, problem, hint)
        want = dilated_centres_reference(shape, k, s, o, d)
        try:
            got = torch.as_tensor(got).float()
        except Exception:  # not convertible to a tensor
            return verdict(name, f"{what}: expected an (N, 3) tensor, got {type(got).__name__}", hint)
        if tuple(got.shape) != tuple(want.shape):
            plain = math.prod((D - oi - ki) // si + 1 for D, ki, si, oi in zip(shape, k, s, o))
            if got.ndim == 2 and got.shape[0] == plain and plain != want.shape[0]:
                problem = (f"{what}: {plain} windows is the count of an undilated kernel; a dilated one spans "
                           f"(k - 1)*d + 1 voxels, which leaves {want.shape[0]} windows")
            else:
                problem = f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
            return verdict(name, problem, hint)
        if torch.allclose(got, want, atol=1e-4):
            continue
        shift = torch.tensor([(ki - 1) * di / 2 for ki, di in zip(k, d)])
        if torch.allclose(got, want - shift + torch.tensor([(ki - 1) / 2 for ki in k]), atol=1e-4):
            problem = f"{what}: that centre ignores the dilation: add (k - 1)*d / 2, not (k - 1) / 2"
        elif torch.allclose(got, want - shift, atol=1e-4):
            problem = f"{what}: that is the first voxel of each window; add (k - 1)*d / 2 for the centre"
        elif torch.allclose(got, want - shift + torch.tensor([ki * di / 2 for ki, di in zip(k, d)]), atol=1e-4):
            problem = (f"{what}: k*d / 2 is off; the voxels o + i*s + j*d, j = 0..k-1, average to "
                       "o + i*s + (k - 1)*d / 2")
        elif torch.allclose(got[torch.argsort(got[:, 0] * 1e6 + got[:, 1] * 1e3 + got[:, 2])],
                            want[torch.argsort(want[:, 0] * 1e6 + want[:, 1] * 1e3 + want[:, 2])], atol=1e-4):
            problem = f"{what}: the right centres in the wrong order: rows in (t h w) order, meshgrid indexing='ij'"
        else:
            problem = f"{what}: wrong centres"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: a closed gate
def check_closed_gate(fn: Callable) -> bool:
    """``fn(z (B, N, D), contribution (B, N, D), alpha (D,)) -> (B, N, D)``: z plus g(alpha[d]) times
    channel d of the contribution, one gate per channel, where the gate function g

    - is exactly 0 at alpha = 0 (the output is then z itself, bit for bit),
    - has a non-zero slope at 0 (every alpha[d] gets a gradient at 0, so training can open it),
    - stays between -1 and 1 for every alpha, and opens fully, g -> 1, for large alpha.

    Any g with these properties passes (tanh is one; sigmoid, alpha itself or alpha**2 are not).
    """
    name = "check_closed_gate"
    hint = "z + g(alpha) * contribution with g(0) = 0, g'(0) != 0 and -1 <= g <= 1, e.g. g = tanh"
    g = torch.Generator().manual_seed(9)
    z, c = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    z, c = z.sign() * (z.abs() + 0.5), c.sign() * (c.abs() + 0.5)       # no entry near 0: out - z divides by c
    zero = torch.zeros(6, requires_grad=True)
    what = "fn(z, contribution, alpha=zeros(6))"
    out, problem = call(fn, (z.clone(), c.clone(), zero), what)
    if problem:
        return verdict(name, problem, hint)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(z.shape):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return verdict(name, f"{what}: expected a tensor of shape {tuple(z.shape)}, got {shape}", hint)
    if not torch.equal(out.detach(), z):
        if torch.allclose(out.detach(), z + 0.5 * c):
            problem = f"{what}: sigmoid(0) = 0.5 leaves the gate half open; the gate must be 0 at alpha = 0"
        else:
            problem = f"{what}: at alpha = 0 the output must be z itself (the image model's tokens)"
        return verdict(name, problem, hint)
    if not out.requires_grad:
        return verdict(name, f"{what}: the output does not depend on alpha; multiply the contribution by "
                             "g(alpha)", hint)
    (out * torch.linspace(0.5, 1.5, 6)).sum().backward()
    if zero.grad is None or (zero.grad == 0).any():
        return verdict(name, f"{what}: some alpha[d] get no gradient at 0, so those gates can never open; "
                             "g needs a non-zero slope at 0 (alpha**2 and relu have none)", hint)
    alphas = torch.tensor([-3.0, -0.7, 0.2, 0.9, 2.0, 1e4])
    what = f"fn(z, contribution, alpha={alphas.tolist()})"
    out, problem = call(fn, (z.clone(), c.clone(), alphas.clone()), what)
    if problem:
        return verdict(name, problem, hint)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(z.shape):
        return verdict(name, f"{what}: expected a tensor of shape {tuple(z.shape)}", hint)
    delta = out.detach() - z
    gate = delta / c                                                   # (B, N, D): g(alpha[d]) in every token
    if not torch.allclose(gate, gate[:1, :1].expand_as(gate), atol=1e-4):
        on_z = delta / z
        if torch.allclose(on_z, on_z[:1, :1].expand_as(on_z), atol=1e-4):
            problem = f"{what}: the gate multiplies z; it should multiply the contribution"
        else:
            problem = f"{what}: out - z should be g(alpha[d]) * contribution[..., d], the same g for every token"
        return verdict(name, problem, hint)
    g_of = gate[0, 0]
    if torch.allclose(g_of, g_of[:1].expand_as(g_of), atol=1e-6):
        return verdict(name, f"{what}: every channel got the same gate; channel d is gated by alpha[d]", hint)
    if g_of.abs().max() > 1 + 1e-5:
        return verdict(name, f"{what}: the gate reached {g_of.abs().max().item():.2f}; keep it between -1 and 1 "
                             "(alpha itself is unbounded: squash it)", hint)
    if abs(g_of[-1].item() - 1) > 1e-3:
        return verdict(name, f"{what}: at alpha = 1e4 the gate is {g_of[-1].item():.3f}; it should open fully (g -> 1)",
                       hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: tube design
DESIGN_SIZE, MAX_TOKENS, MIN_RATE = 28, 76, 0.40
_OFFSET_TUBES = (Tube((1, 7, 7), (28, 7, 7), (14, 7, 7)), Tube((8, 8, 8), (8, 8, 8), (10, 8, 8)),
                 Tube((12, 4, 4), (12, 4, 4), (8, 8, 8)))


def hit_rate_reference(tubes, gland: torch.Tensor) -> float:
    """Share of all windows of ``tubes`` (over all clips) holding at least one gland voxel.

    ``gland``: (N, 1, T, H, W), 1 inside the gland and 0 outside."""
    hits = windows = 0
    for tube in as_tubes(tubes):
        ot, oh, ow = tube.offset
        touched = F.max_pool3d(gland[:, :, ot:, oh:, ow:], tube.kernel, tube.stride)   # (N, 1, nt, nh, nw)
        hits, windows = hits + touched.sum().item(), windows + touched.numel()
    return hits / windows


def _rate_slips(tubes, gland: torch.Tensor) -> dict[str, float]:
    per_tube, no_offset, mean_share = [], 0.0, 0.0
    total = sum(t.num_tokens(gland.shape) for t in tubes)
    for tube in tubes:
        ot, oh, ow = tube.offset
        view = gland[:, :, ot:, oh:, ow:]
        per_tube.append(F.max_pool3d(view, tube.kernel, tube.stride).mean().item())
        mean_share += F.avg_pool3d(view, tube.kernel, tube.stride).mean().item() * tube.num_tokens(gland.shape)
        try:
            no_offset += F.max_pool3d(gland, tube.kernel, tube.stride)[..., :tube.grid(gland.shape)[0],
                                      :tube.grid(gland.shape)[1], :tube.grid(gland.shape)[2]].sum().item()
        except RuntimeError:
            pass
    return {"per tube": sum(per_tube) / len(per_tube), "no offset": no_offset / (total * len(gland)),
            "mean": mean_share / total}


def check_tube_design(hit_rate: Callable, tubes, gland: torch.Tensor, max_tokens: int = MAX_TOKENS,
                      min_rate: float = MIN_RATE) -> bool:
    """``hit_rate(tubes, gland) -> float``: the share of ALL the windows of ``tubes`` (every tube, every
    clip of ``gland`` (N, 1, 28, 28, 28), 1 = gland) that hold at least one gland voxel.

    ``tubes``: your design for 28^3 clips: every tube fits, at least three kernel shapes, one of them
    a 2D patch (kernel t = 1), at most ``max_tokens`` tokens (the preset's 76), and a hit rate of at
    least ``min_rate`` on ``gland``.
    """
    name = "check_tube_design"
    hint = ("for each tube: max_pool3d(gland cropped at the offset, kernel, stride) marks the windows that touch "
            "the gland; add up the marks and the windows over all tubes, then divide")
    messages = {"per tube": "that averages the tubes' own rates; weight each tube by its windows: all hits / "
                            "all windows",
                "no offset": "crop the clip at each tube's offset before pooling",
                "mean": "that is the share of gland VOXELS in the windows; a window counts once if ANY voxel "
                        "is gland (max, not mean)"}
    for case in (tube_preset(DESIGN_SIZE), _OFFSET_TUBES):
        what = f"hit_rate({len(case)} tubes, gland)"
        got, problem = call(hit_rate, (case, gland), what)
        if problem:
            return verdict(name, problem, hint)
        want = hit_rate_reference(case, gland)
        try:
            value = float(got)
        except (TypeError, ValueError):
            return verdict(name, f"{what}: expected a number, got {type(got).__name__}", hint)
        if abs(value - want) > 1e-4:
            problem = f"{what}: expected about {want:.4f}, got {value:.4f}"
            for slip, v in _rate_slips(as_tubes(case), gland).items():
                if abs(value - v) <= 1e-4:
                    problem = f"{what}: {messages[slip]}"
                    break
            return verdict(name, problem, hint)
    if tubes is None:
        return verdict(name, f"my_tubes is {PLACEHOLDER}", "a list of Tube(kernel, stride, offset)")
    shape = (DESIGN_SIZE,) * 3
    try:
        tubes = as_tubes(tubes)
        tokens = sum(t.num_tokens(shape) for t in tubes)
    except Exception as err:  # a tube that does not fit, or not a tube at all
        return verdict(name, f"my_tubes: {type(err).__name__}: {err}"[:300], "every tube must fit a 28^3 clip")
    if len({t.kernel for t in tubes}) < 3:
        return verdict(name, "my_tubes: use at least three different kernel shapes", hint)
    if not any(t.is_2d for t in tubes):
        return verdict(name, "my_tubes: include a 2D patch (kernel t = 1) so the model also reads single frames", hint)
    if tokens > max_tokens:
        return verdict(name, f"my_tubes give {tokens} tokens; stay at or below {max_tokens}: larger strides or "
                             "fewer windows where the gland never is", hint)
    rate = hit_rate_reference(tubes, gland)
    if rate < min_rate:
        return verdict(name, f"my_tubes: {rate:.1%} of their windows touch the gland; reach {min_rate:.0%}: put the "
                             "windows where the gland usually is (the presence map of section 2)", hint)
    return verdict(name, None, hint)
