"""Exercise checks for notebook 08 (VideoMAE: masking, masked-autoencoder pre-training, fine-tuning).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line; an answer still set to ``None`` gets a fixed placeholder line.

- ``check_visible_count``: how many tokens the encoder sees per clip, for tube, random and frame
  masking on any token grid (the floor rule), against ``vtlib.masking.num_masked``.
- ``check_frame_mask``: a frame mask written by hand: whole token-frames hidden, the same count in
  every clip, a different draw per clip, from the generator it is given.
- ``check_hf_targets``: per-tubelet normalised targets of a multi-channel clip in Hugging Face's
  layout (channel last, each channel normalised on its own), against ``patch_targets``.
- ``check_decoder_vs_zero``: a small experiment: the pre-trained decoder's error relative to
  predicting zero, for tube masks at 50, 75 and 90 %, averaged over three mask seeds, and what it
  says about showing the decoder more of the clip.
"""
from __future__ import annotations

from typing import Callable

import torch
from einops import rearrange

from vtlib.exercises.common import call, compare_count, compare_tensor, verdict
from vtlib.masking import make_mask, masked, num_masked
from vtlib.models.videomae import patch_targets
from vtlib.tokens import patchify

PLACEHOLDER = "still None: run your function and put the result here"


# ----------------------------------------------------------------------------- exercise 1: visible count
_COUNT_CASES = [("tube", (8, 14, 14), 0.9), ("tube", (7, 7, 7), 0.75), ("random", (7, 7, 7), 0.75),
                ("frame", (8, 14, 14), 0.6), ("tube", (16, 4, 4), 0.95), ("random", (8, 14, 14), 0.75),
                ("frame", (5, 6, 6), 0.5), ("tube", (7, 4, 4), 0.9), ("random", (7, 4, 4), 0.9)]


def _count_slips(kind: str, grid, ratio: float) -> dict[str, int]:
    """Visible counts that typical slips give (only those that differ from the right count)."""
    nt, nh, nw = grid
    n, s = nt * nh * nw, nh * nw
    right = n - num_masked(kind, grid, ratio)
    units, per = {"tube": (s, nt), "random": (n, 1), "frame": (nt, s)}[kind]
    slips = {
        "masked": num_masked(kind, grid, ratio),
        "round": n - round(ratio * units) * per,
        "whole clip": n - int(ratio * n),
    }
    return {k: v for k, v in slips.items() if v != right}


def check_visible_count(fn: Callable) -> bool:
    """``fn(kind, grid, ratio) -> int``: the tokens the encoder sees per clip when ``kind`` masking
    ("tube", "random" or "frame") hides ``ratio`` of a (nt, nh, nw) token grid, with the floor rule."""
    name = "check_visible_count"
    hint = ("count the units each strategy draws (tube: the nh*nw positions of a frame, random: all N "
            "tokens, frame: the nt token-frames), hide int(ratio * units) of them, and subtract the "
            "hidden tokens from N")
    messages = {
        "masked": "that is the number of HIDDEN tokens; the encoder sees the others",
        "round": "int(ratio * n) rounds down (the floor rule); round() goes up when the fraction is >= 0.5",
        "whole clip": "that applies the floor to all N tokens at once; {kind} masking draws {unit}, "
                      "so the floor applies to them",
    }
    units = {"tube": "the nh*nw positions of one token-frame", "frame": "whole token-frames",
             "random": "single tokens"}
    for kind, grid, ratio in _COUNT_CASES:
        what = f"fn({kind!r}, {grid}, {ratio})"
        got, problem = call(fn, (kind, grid, ratio), what)
        if problem:
            return verdict(name, problem, hint)
        want = grid[0] * grid[1] * grid[2] - num_masked(kind, grid, ratio)
        problem = compare_count(got, want, what)
        if problem:
            for slip, value in _count_slips(kind, grid, ratio).items():
                if compare_count(got, value, what) is None:
                    problem = f"{what}: " + messages[slip].format(kind=kind, unit=units[kind])
                    break
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: frame mask
_FRAME_CASES = [(16, (7, 4, 4), 0.5), (8, (5, 3, 2), 0.75), (4, (8, 14, 14), 0.9)]


def check_frame_mask(fn: Callable) -> bool:
    """``fn(batch, grid, ratio, generator) -> (batch, N)`` bool: True = hidden, tokens in (t h w)
    order, int(ratio * nt) whole token-frames hidden per clip, drawn per clip from ``generator``."""
    name = "check_frame_mask"
    hint = ("draw int(ratio * nt) frames per clip with the generator (as section 1 drew spatial positions), "
            "then repeat each frame's flag over its nh * nw tokens, frame index first")
    for batch, grid, ratio in _FRAME_CASES:
        nt, nh, nw = grid
        n, s = nt * nh * nw, nh * nw
        what = f"fn({batch}, {grid}, {ratio}, generator)"
        got, problem = call(fn, (batch, grid, ratio, torch.Generator().manual_seed(0)), what)
        if problem:
            return verdict(name, problem, hint)
        if not isinstance(got, torch.Tensor):
            return verdict(name, f"{what}: expected a torch.Tensor, got {type(got).__name__}", hint)
        if tuple(got.shape) != (batch, n):
            return verdict(name, f"{what}: expected shape {(batch, n)}, got {tuple(got.shape)}", hint)
        if got.dtype != torch.bool:
            return verdict(name, f"{what}: expected a bool mask (True = hidden), got {got.dtype}", hint)
        counts = set(got.sum(1).tolist())
        k = num_masked("frame", grid, ratio)
        if counts != {k}:
            if counts == {n - k}:
                problem = f"{what}: True must mean hidden; your mask marks the visible tokens"
            elif counts == {int(ratio * n)}:
                problem = (f"{what}: hide int(ratio * nt) = {k // s} whole frames ({k} tokens), "
                           "not int(ratio * N) tokens")
            else:
                problem = f"{what}: every clip should hide {k} tokens ({k // s} frames of {s}), got {sorted(counts)}"
            return verdict(name, problem, hint)
        frames = rearrange(got.cpu(), "b (t s) -> b t s", t=nt)
        if not torch.equal(frames.all(-1), frames.any(-1)):
            strided = rearrange(got.cpu(), "b (s t) -> b t s", t=nt)
            if torch.equal(strided.all(-1), strided.any(-1)):
                problem = (f"{what}: your frames are interleaved: tokens are in (t h w) order, so the frame index "
                           "comes first: repeat with 'b t -> b (t s)', not 'b t -> b (s t)'")
            else:
                problem = f"{what}: some token-frames are only partly hidden; hide whole token-frames"
            return verdict(name, problem, hint)
        again, _ = call(fn, (batch, grid, ratio, torch.Generator().manual_seed(0)), what)
        other, _ = call(fn, (batch, grid, ratio, torch.Generator().manual_seed(1)), what)
        if not (isinstance(again, torch.Tensor) and torch.equal(again.cpu(), got.cpu())) or (
                batch >= 8 and isinstance(other, torch.Tensor) and torch.equal(other.cpu(), got.cpu())):
            return verdict(name, f"{what}: the same seed must give the same mask and another seed another "
                                 "one; draw with the generator you are given", hint)
        if batch >= 8 and len({tuple(r) for r in frames.any(-1).tolist()}) == 1:
            return verdict(name, f"{what}: every clip hides the same frames; draw the frames for each clip", hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: HF targets
def _hf_cases() -> list[tuple[torch.Tensor, tuple[int, int, int]]]:
    g = torch.Generator().manual_seed(8)
    a = torch.rand(2, 3, 4, 8, 8, generator=g)
    a[0, :, :2, :4, :4] = 0.25                                        # a constant tubelet: targets 0
    b = torch.rand(1, 2, 6, 6, 9, generator=g)
    return [(a, (2, 4, 4)), (b, (3, 3, 3))]


def _hf_reference(x: torch.Tensor, tubelet) -> torch.Tensor:
    """vtlib's per-channel normalised targets, voxels moved to HF's (t p1 p2 c) order."""
    return rearrange(patch_targets(x, tubelet), "b n (c v) -> b n (v c)", c=x.shape[1])


def _hf_slips(x: torch.Tensor, tubelet) -> dict[str, torch.Tensor]:
    t, p, q = tubelet
    raw = rearrange(x, "b c (nt t) (nh p) (nw q) -> b (nt nh nw) (t p q) c", t=t, p=p, q=q)

    def norm(v, dims, unbiased=True):
        return (v - v.mean(dims, keepdim=True)) / (v.var(dims, unbiased=unbiased, keepdim=True).sqrt() + 1e-6)

    return {
        "channel first": patch_targets(x, tubelet),
        "all channels": norm(raw, (-2, -1)).flatten(-2),
        "biased": norm(raw, -2, unbiased=False).flatten(-2),
        "raw": raw.flatten(-2),
        "columns first": rearrange(norm(raw, -2), "b n (t p q) c -> b n (t q p c)", t=t, p=p, q=q),
    }


def check_hf_targets(fn: Callable) -> bool:
    """``fn(x (B, C, T, H, W), tubelet (t, p, p)) -> (B, N, t*p*p*C)``: the targets of
    ``VideoMAEForPreTraining`` with ``norm_pix_loss``: tokens in (t h w) order, the voxels of a
    tubelet in (t p1 p2 c) order (channel LAST), each channel of each tubelet normalised over its
    t*p*p voxels with the unbiased std and eps 1e-6 added to the std."""
    name = "check_hf_targets"
    hint = ("split the clip with einops into '(nt t) (nh p) (nw q)', arrange it as "
            "'b (nt nh nw) (t p q) c', normalise over the (t p q) axis, then flatten the last two axes")
    messages = {
        "channel first": "right numbers in vtlib's channel-major (c t p1 p2) order; Hugging Face puts the "
                         "channel LAST: (t p1 p2 c)",
        "all channels": "each channel of a tubelet has its own mean and std; you normalised all channels together",
        "biased": "use the unbiased std, var(unbiased=True).sqrt(), as VideoMAE does",
        "raw": "those are the raw voxels; normalise each tubelet and channel by its mean and std",
        "columns first": "inside a tubelet the voxels go frame, row (p1), column (p2), channel; your rows "
                         "and columns are swapped",
    }
    for x, tubelet in _hf_cases():
        what = f"fn(x {tuple(x.shape)}, tubelet={tubelet})"
        got, problem = call(fn, (x.clone(), tubelet), what)
        if problem:
            return verdict(name, problem, hint)
        want = _hf_reference(x, tubelet)
        problem = compare_tensor(got, want, what)
        if problem and isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape):
            for slip, value in _hf_slips(x, tubelet).items():
                if compare_tensor(got, value, what) is None:
                    problem = f"{what}: {messages[slip]}"
                    break
        if problem:
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: decoder vs zero
SWEEP_RATIOS = (0.5, 0.75, 0.9)
SWEEP_SEEDS = (0, 1, 2)


def decoder_vs_zero(mae, x: torch.Tensor, kind: str, ratio: float, seed: int) -> float:
    """The model's masked-tubelet MSE divided by the MSE of predicting zero for every hidden target
    (normalised targets, hidden tubelets only), on clips ``x`` with a mask of ``seed``."""
    mask = make_mask(kind, len(x), mae.grid, ratio, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        loss, _ = mae(x, mask)
    zero = masked(patch_targets(x, mae.tubelet), mask).pow(2).mean()
    return (loss / zero).item()


def _sweep(mae, x: torch.Tensor) -> dict[float, float]:
    return {r: sum(decoder_vs_zero(mae, x, "tube", r, s) for s in SWEEP_SEEDS) / len(SWEEP_SEEDS)
            for r in SWEEP_RATIOS}


def _ratio_slips(mae, x, kind, ratio, seed) -> dict[str, float]:
    mask = make_mask(kind, len(x), mae.grid, ratio, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        loss, _ = mae(x, mask)
    target = patch_targets(x, mae.tubelet)
    zero = masked(target, mask).pow(2).mean()
    return {"all tubelets": (loss / target.pow(2).mean()).item(), "inverted": (zero / loss).item(),
            "raw": (loss / masked(patchify(x, mae.tubelet), mask).pow(2).mean()).item(),
            "difference": (zero - loss).item()}


def check_decoder_vs_zero(fn: Callable, tube_ratios, more_visible_helps, mae, x: torch.Tensor) -> bool:
    """``fn(mae, x, kind, ratio, seed) -> float``: ``mae``'s loss on clips ``x`` under the mask
    ``make_mask(kind, len(x), mae.grid, ratio, torch.Generator().manual_seed(seed))``, divided by the
    MSE of predicting 0 for every hidden normalised target.

    ``tube_ratios``: {0.5: ..., 0.75: ..., 0.9: ...}, that ratio for tube masks, the mean over seeds
    0, 1 and 2, measured on ``x``; ``more_visible_helps``: True if hiding 50 % gives a lower mean ratio
    than hiding 75 % (the ratio the model was pre-trained with), else False.
    """
    name = "check_decoder_vs_zero"
    hint = ("run the model on x and the mask under torch.no_grad() for its loss, then divide by the mean "
            "square of the hidden tubelets' normalised targets (what predicting zero scores)")
    messages = {"all tubelets": "the predict-zero MSE must be over the HIDDEN tubelets only, like the loss",
                "inverted": "that is predict-zero / decoder; divide the decoder's loss by the predict-zero MSE",
                "raw": "the decoder predicts normalised targets; predict zero for patch_targets, not raw voxels",
                "difference": "return the ratio loss / predict-zero MSE, not their difference"}
    small = x[:12]
    for kind, ratio, seed in (("tube", 0.75, 0), ("random", 0.5, 3), ("frame", 0.75, 1)):
        what = f"fn(mae, x[:12], {kind!r}, {ratio}, seed={seed})"
        got, problem = call(fn, (mae, small, kind, ratio, seed), what)
        if problem:
            return verdict(name, problem, hint)
        want = decoder_vs_zero(mae, small, kind, ratio, seed)
        try:
            value = float(got)
        except (TypeError, ValueError):
            return verdict(name, f"{what}: expected a number, got {type(got).__name__}", hint)
        if abs(value - want) > 1e-4:
            problem = f"{what}: expected about {want:.4f}, got {value:.4f}"
            for slip, v in _ratio_slips(mae, small, kind, ratio, seed).items():
                if abs(value - v) <= 1e-4:
                    problem = f"{what}: {messages[slip]}"
                    break
            else:
                problem += (f"; build the mask with make_mask({kind!r}, len(x), mae.grid, {ratio}, "
                            f"torch.Generator().manual_seed({seed}))")
            return verdict(name, problem, hint)
    if tube_ratios is None:
        return verdict(name, f"tube_ratios is {PLACEHOLDER}", "{0.5: mean over seeds 0-2, 0.75: ..., 0.9: ...}")
    ref = _sweep(mae, x)
    if not isinstance(tube_ratios, dict) or set(tube_ratios) != set(SWEEP_RATIOS):
        return verdict(name, "tube_ratios should be a dict with the keys 0.5, 0.75 and 0.9", hint)
    for r in SWEEP_RATIOS:
        try:
            value = float(tube_ratios[r])
        except (TypeError, ValueError):
            return verdict(name, f"tube_ratios[{r}] should be a number", hint)
        if abs(value - ref[r]) > 5e-3:
            seed0 = decoder_vs_zero(mae, x, "tube", r, 0)
            why = ("that is seed 0 alone; average over the seeds 0, 1 and 2" if abs(value - seed0) <= 1e-4
                   else f"the mean over seeds 0, 1 and 2 on all {len(x)} clips of x is {ref[r]:.3f}")
            return verdict(name, f"tube_ratios[{r}] = {value:.3f}: {why}", hint)
    if more_visible_helps is None:
        return verdict(name, f"more_visible_helps is {PLACEHOLDER}", "True or False, from tube_ratios")
    want = ref[0.5] < ref[0.75]
    if isinstance(more_visible_helps, torch.Tensor) and more_visible_helps.numel() == 1:
        more_visible_helps = bool(more_visible_helps.item())
    if type(more_visible_helps).__name__ not in ("bool", "bool_") or bool(more_visible_helps) != want:
        return verdict(name, f"more_visible_helps: your own measurements give {ref[0.5]:.3f} at 50 % and "
                             f"{ref[0.75]:.3f} at 75 %; a lower ratio is better", "answer True or False")
    return verdict(name, None, hint)
