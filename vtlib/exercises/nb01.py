"""Exercise checks for notebook 01 (patches and tubelets).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line, and a number left at ``None`` gets a fixed "set ... first" line.

- ``check_valid_conv_tokens``: the tokens a VALID ``Conv3d`` with any kernel and stride makes, and the
  share of voxels no window touches, against a brute-force count of the covered voxels.
- ``check_channels_last_weight``: the ``Linear`` weight that reproduces a ``Conv3d`` tubelet embedding on
  tubelets flattened channels-last, ``(t p1 p2 c)``, against ``einops.rearrange``.
- ``check_first_frame_embed``: a ``TubeletEmbed`` built from a 2D patch embedding that equals uniform
  frame sampling with offset 0 (``FrameEmbed(..., offset=0)``).
- ``check_empty_tokens``: a small experiment: the share of tubelet tokens that hold no gland voxel on
  the AdrenalMNIST3D training clips, for several tubelets, and what it means for the course's default.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from einops import rearrange
from torch import nn

from vtlib.exercises.common import as_number, call, compare_count, compare_tensor, placeholder, verdict
from vtlib.tokens import FrameEmbed, TubeletEmbed, patchify


# ----------------------------------------------------------------------------- exercise 1: VALID conv tokens
def valid_conv_reference(video_shape, kernel, stride) -> tuple[int, float]:
    """(tokens, ignored share) of a VALID Conv3d: per axis (S - k) // s + 1 windows reaching (n - 1)·min(s, k) + k."""
    n = [(S - k) // s + 1 for S, k, s in zip(video_shape, kernel, stride)]
    reach = [(m - 1) * min(s, k) + k for m, k, s in zip(n, kernel, stride)]
    return math.prod(n), 1 - math.prod(reach) / math.prod(video_shape)


def covered_share(video_shape, kernel, stride) -> float:
    """Brute force: the share of voxels that at least one window of a VALID Conv3d touches."""
    seen = []
    for S, k, s in zip(video_shape, kernel, stride):
        axis = torch.zeros(S, dtype=torch.bool)
        for start in range(0, S - k + 1, s):
            axis[start:start + k] = True
        seen.append(axis.float().mean().item())
    return math.prod(seen)


def _valid_slips(video_shape, kernel, stride) -> dict[str, tuple[int, float]]:
    right, ignored = valid_conv_reference(video_shape, kernel, stride)
    n = [(S - k) // s + 1 for S, k, s in zip(video_shape, kernel, stride)]
    vol = math.prod(video_shape)
    return {"no stride": (math.prod(S // k for S, k in zip(video_shape, kernel)), ignored),
            "no plus one": (math.prod((S - k) // s for S, k, s in zip(video_shape, kernel, stride)), ignored),
            "seen share": (right, 1 - ignored),
            "overlap twice": (right, 1 - math.prod(m * k for m, k in zip(n, kernel)) / vol),
            "no gaps": (right, 1 - math.prod((m - 1) * s + k for m, k, s in zip(n, kernel, stride)) / vol)}


def check_valid_conv_tokens(fn: Callable) -> bool:
    """``fn(video_shape=(T, H, W), kernel=(kt, kh, kw), stride=(st, sh, sw)) -> (tokens, ignored_share)``:
    the number of outputs of ``nn.Conv3d(C, D, kernel_size=kernel, stride=stride)`` (no padding) on one
    clip, and the share of the clip's voxels that no window touches. The kernel fits the clip."""
    name = "check_valid_conv_tokens"
    hint = ("per axis, count the window starts 0, s, 2s, ... at which a whole window still fits; a voxel is "
            "ignored if it lies beyond the last window or in a gap between two windows")
    slips = {"no stride": "that counts windows of the kernel's size side by side; with a stride s the windows "
                          "start every s voxels",
             "no plus one": "one window too few per axis: the window that starts at 0 counts too",
             "seen share": "that is the share of voxels the windows see; the question asks for the share ignored",
             "overlap twice": "overlapping windows count some voxels twice; count each voxel once",
             "no gaps": "with a stride larger than the kernel, the voxels between two windows are ignored too"}
    cases = [((16, 28, 28), (2, 7, 7), (2, 7, 7)), ((28, 28, 28), (4, 8, 8), (2, 6, 6)),
             ((32, 64, 64), (3, 16, 16), (4, 16, 16)), ((20, 30, 45), (3, 7, 7), (3, 7, 7)),
             ((10, 12, 12), (4, 4, 4), (5, 5, 3)), ((28, 28, 28), (8, 8, 8), (8, 8, 8))]
    for shape, kernel, stride in cases:
        what = f"fn({shape}, kernel={kernel}, stride={stride})"
        got, problem = call(fn, (shape, kernel, stride), what)
        if problem:
            return verdict(name, problem, hint)
        tokens, ignored = valid_conv_reference(shape, kernel, stride)
        try:
            got_tokens, got_ignored = got
        except (TypeError, ValueError):
            return verdict(name, f"{what} should return two numbers (tokens, ignored_share), got "
                                 f"{type(got).__name__}", hint)
        share, problem = as_number(got_ignored, f"{what}'s ignored_share")
        found = _valid_slips(shape, kernel, stride)
        count_problem = compare_count(got_tokens, tokens, f"{what}'s token count")
        if count_problem:
            slip = next((s for s in ("no stride", "no plus one") if found[s][0] != tokens
                         and compare_count(got_tokens, found[s][0], "") is None), None)
            problem = f"{what}: {slips[slip]}" if slip else count_problem
        elif problem is None and abs(share - ignored) > 1e-6:
            slip = next((s for s in ("seen share", "overlap twice", "no gaps") if abs(found[s][1] - ignored) > 1e-6
                         and abs(share - found[s][1]) <= 1e-6), None)
            problem = (f"{what}: {slips[slip]}" if slip else
                       f"{what}'s ignored_share is {share:.4g}, not the share of voxels no window touches")
        if problem is None:
            continue
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: channels last
def channels_last_reference(weight: torch.Tensor) -> torch.Tensor:
    """(D, C, t, p1, p2) Conv3d weight -> (D, t*p1*p2*C): the Linear weight for (t p1 p2 c) tubelets."""
    return rearrange(weight, "d c t p1 p2 -> d (t p1 p2 c)")


def check_channels_last_weight(fn: Callable) -> bool:
    """``fn(weight) -> (D, t*p1*p2*C)``: from a Conv3d tubelet weight (D, C, t, p1, p2), the weight ``W`` with
    ``tubelets @ W.T + conv.bias == conv(x).flatten(2).transpose(1, 2)``, where each tubelet of ``x`` is
    flattened channels-last: ``rearrange(x, "b c (nt t) (nh p1) (nw p2) -> b (nt nh nw) (t p1 p2 c)")``."""
    name = "check_channels_last_weight"
    hint = "move the channel axis behind the three kernel axes, then flatten: permute or rearrange"
    for D, C, t, p1, p2 in ((6, 3, 2, 4, 4), (5, 2, 3, 2, 5), (4, 3, 1, 3, 2)):
        weight = torch.randn(D, C, t, p1, p2, generator=torch.Generator().manual_seed(D))
        what = f"fn(weight {(D, C, t, p1, p2)})"
        got, problem = call(fn, (weight.clone(),), what)
        if problem:
            return verdict(name, problem, hint)
        want = channels_last_reference(weight)
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape):
            got = got.detach().cpu()
            if torch.equal(got, weight.flatten(1)):
                problem = (f"{what}: that is patchify's (c t p1 p2) order (a reshape or view keeps it: it relabels "
                           "the axes without moving them); here each tubelet vector ends with the channel")
            elif torch.equal(got, rearrange(weight, "d c t p1 p2 -> d (t p2 p1 c)")):
                problem = f"{what}: p1 (rows) and p2 (columns) are swapped"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: first-frame init
def first_frame_reference(conv2d: nn.Conv2d, t: int) -> TubeletEmbed:
    """A t x p x p TubeletEmbed: the 2D filter at time 0, zeros elsewhere, the bias copied."""
    embed = TubeletEmbed(dim=conv2d.out_channels, tubelet=(t, *conv2d.kernel_size), in_channels=conv2d.in_channels)
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.weight[:, :, 0] = conv2d.weight
        embed.proj.bias.copy_(conv2d.bias)
    return embed


def _frame_embed(conv2d: nn.Conv2d, t: int, offset: int) -> FrameEmbed:
    frames = FrameEmbed(dim=conv2d.out_channels, patch=conv2d.kernel_size[0], in_channels=conv2d.in_channels,
                        frame_stride=t, offset=offset)
    frames.proj.load_state_dict(conv2d.state_dict())
    return frames


def check_first_frame_embed(fn: Callable) -> bool:
    """``fn(conv2d, t) -> TubeletEmbed``: from a 2D patch embedding ``conv2d`` (Conv2d, kernel = stride = p),
    a t x p x p tubelet embedding whose tokens equal uniform frame sampling of the FIRST frame of every block
    of t frames, ``FrameEmbed(dim=D, patch=p, in_channels=C, frame_stride=t, offset=0)`` with conv2d's weights."""
    name = "check_first_frame_embed"
    hint = ("build a TubeletEmbed of tubelet (t, p, p); its Conv3d weight (D, C, t, p, p) should be zero except "
            "at the one time index that must read the first frame, which gets conv2d.weight; copy the bias too")
    for C, D, p, t, shape in ((3, 6, 7, 3, (1, 3, 9, 14, 14)), (1, 8, 4, 2, (2, 1, 8, 12, 12)),
                              (1, 5, 4, 4, (2, 1, 8, 8, 8))):
        with torch.random.fork_rng():                               # leave the caller's random state alone
            torch.manual_seed(C * 10 + t)
            conv2d = nn.Conv2d(C, D, kernel_size=p, stride=p)
        clip = torch.randn(shape, generator=torch.Generator().manual_seed(t))
        what = f"fn(Conv2d({C}, {D}, kernel_size={p}, stride={p}), t={t})"
        before = {k: v.clone() for k, v in conv2d.state_dict().items()}
        embed, problem = call(fn, (conv2d, t), what)
        if problem:
            return verdict(name, problem, hint)
        if not all(torch.equal(v, conv2d.state_dict()[k]) for k, v in before.items()):
            return verdict(name, f"{what} changed conv2d's weights; copy them, do not edit them", hint)
        if not isinstance(embed, TubeletEmbed):
            return verdict(name, f"{what} should return a vtlib.tokens.TubeletEmbed (one Conv3d over t x p x p "
                                 f"tubelets), got {type(embed).__name__}", hint)
        with torch.no_grad():
            got, problem = call(embed, (clip,), f"your embedding on a clip {shape}")
            want = _frame_embed(conv2d, t, 0)(clip)
            if problem:
                return verdict(name, problem, hint)
            problem = compare_tensor(got, want, f"your embedding on a clip {shape}", atol=1e-4)
            if problem is None:
                continue
            if isinstance(got, torch.Tensor) and got.shape == want.shape:
                diff = got - want
                if t > 1 and torch.allclose(got, _frame_embed(conv2d, t, t // 2)(clip), atol=1e-4):
                    problem = (f"{what}: your tubelet reads the middle frame t // 2 of each block (central-frame "
                               "init); offset 0 is the first frame")
                elif t > 1 and torch.allclose(got, _frame_embed(conv2d, t, t - 1)(clip), atol=1e-4):
                    problem = f"{what}: your tubelet reads the LAST frame of each block; offset 0 is the first"
                elif torch.allclose(diff, diff[:, :1].expand_as(diff), atol=1e-4):
                    problem = (f"{what}: the tokens are off by the same vector at every position: copy "
                               "conv2d.bias into the Conv3d's bias")
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: empty tokens
TUBELETS = ((1, 4, 4), (2, 7, 7), (4, 7, 7), (7, 7, 7), (4, 14, 14))


def _keys(shares: dict) -> list | None:
    """The dict's keys as sorted int tuples, or None if some key is not a (t, p, p) sequence of ints."""
    try:
        return sorted(tuple(int(v) for v in k) for k in shares)
    except (TypeError, ValueError):
        return None


def empty_share_reference(clips: torch.Tensor, tubelet) -> float:
    """The share of all tokens of ``clips`` (N, C, T, H, W) whose tubelet holds only zeros (no gland voxel)."""
    return (patchify(clips, tubelet).abs().amax(-1) == 0).float().mean().item()


def _empty_cases() -> list[tuple[torch.Tensor, tuple[int, int, int]]]:
    g = torch.Generator().manual_seed(1)
    sparse = (torch.rand(3, 1, 8, 8, 8, generator=g) < 0.02) * torch.rand(3, 1, 8, 8, 8, generator=g) * 0.4
    two = (torch.rand(2, 2, 4, 6, 6, generator=g) < 0.05).float()
    return [(sparse, (2, 4, 4)), (sparse, (1, 2, 2)), (sparse, (8, 8, 8)), (two, (2, 3, 3)), (two, (1, 1, 1))]


def check_empty_tokens(fn: Callable, shares, gland_tokens) -> bool:
    """``fn(clips, tubelet) -> float``: the share of ALL tokens of ``clips`` (N, C, T, H, W) whose t x p x p
    tubelet is entirely zero (no gland voxel, in any channel); ``shares``: {tubelet: fn(x, tubelet)} on
    notebook 01's training clips ``x`` for every tubelet in ``TUBELETS``; ``gland_tokens``: how many of the
    112 tokens of the course's default 4 x 7 x 7 tubelet hold some gland in an average clip."""
    from vtlib.data import load_split

    name = "check_empty_tokens"
    hint = ("cut the clips into tubelets with patchify (or rearrange), call a token empty when the largest "
            "voxel of its tubelet is 0, and average over all tokens of all clips")
    for clips, tub in _empty_cases():
        what = f"fn(clips {tuple(clips.shape)}, tubelet={tub})"
        got, problem = call(fn, (clips.clone(), tub), what)
        if problem:
            return verdict(name, problem, hint)
        value, problem = as_number(got, what)
        if problem:
            return verdict(name, problem, hint)
        want = empty_share_reference(clips, tub)
        if abs(value - want) <= 1e-6:
            continue
        voxels = (clips == 0).float().mean().item()
        tokens = patchify(clips, tub)
        if abs(value - (1 - want)) <= 1e-6:
            why = "that is the share of tokens that DO hold gland"
        elif abs(value - voxels) <= 1e-6 and abs(voxels - want) > 1e-6:
            why = "that is the share of empty VOXELS; a token is empty when all t·p·p voxels of its tubelet are 0"
        elif any(abs(value - (tokens.amax(-1) < c).float().mean().item()) <= 1e-6 for c in (0.5, 0.25)) or \
                abs(value - (tokens.mean(-1) < 0.5).float().mean().item()) <= 1e-6:
            why = "a token with any voxel above 0 holds gland; test for a maximum of exactly 0, not a threshold"
        else:
            why = f"got {value:.4g}, not the share of tokens whose tubelet is all zeros"
        return verdict(name, f"{what}: {why}", hint)
    if shares is None:
        return verdict(name, placeholder("shares"))
    if not isinstance(shares, dict) or _keys(shares) != sorted(TUBELETS):
        keys = sorted(shares) if isinstance(shares, dict) else type(shares).__name__
        return verdict(name, f"shares should be a dict with one share for each tubelet in {TUBELETS}, got {keys}",
                       "shares = {tub: empty_share(x, tub) for tub in tubelets}")
    x, _ = load_split("adrenal", "train", size=28)
    ref = {tub: empty_share_reference(x, tub) for tub in TUBELETS}
    by_tuple = {tuple(int(v) for v in k): v for k, v in shares.items()}
    for tub in TUBELETS:
        value, problem = as_number(by_tuple[tub], f"shares[{tub}]")
        if problem:
            return verdict(name, problem, hint)
        if abs(value - ref[tub]) > 1e-4:
            return verdict(name, f"shares[{tub}] = {value:.4f} is not the share measured on the training clips x",
                           "measure with your function on x, the 28³ training clips loaded in the setup")
    value, problem = as_number(gland_tokens, "gland_tokens")
    if problem:
        return verdict(name, problem, None if gland_tokens is None else hint)
    want = 112 * (1 - ref[(4, 7, 7)])
    if abs(value - want) > 0.5:
        why = ("that counts the EMPTY tokens" if abs(value - 112 * ref[(4, 7, 7)]) <= 0.5 else
               "not the average number of 4 x 7 x 7 tokens per clip with some gland")
        return verdict(name, f"gland_tokens = {value:.4g}: {why}", "112 tokens per clip times the share that is "
                                                                    "not empty")
    return verdict(name, None, hint)
