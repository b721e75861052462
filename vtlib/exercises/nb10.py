"""Exercise checks for notebook 10 (VTN: a per-frame backbone and a Longformer temporal encoder).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line.

- ``check_padded_mask``: who attends to whom in a batch of videos of different lengths, padded to
  T frames, with the CLS a global token, against ``vtlib.window.window_mask``.
- ``check_score_counts``: the number of attention scores of sliding-window and of full attention,
  as a formula that works for a million frames, against ``vtlib.experiments.vtn.window_score_count``.
- ``check_feature_cache``: inference mode 3 written by hand: the features of one long video, a chunk
  of frames at a time, without autograd; same logits as the model, bounded memory
  (``vtlib.cost.PeakTensorMemory``).
- ``check_receptive_field``: a small experiment: which frames can change the prediction of a VTN
  whose CLS is a local token, and the rule behind it.
"""
from __future__ import annotations

from typing import Callable

import torch

from vtlib.exercises.common import call, compare_count, compare_tensor, verdict
from vtlib.window import window_mask


# ----------------------------------------------------------------------------- exercise 1: padded mask
def _padded_patterns(lengths: list[int], T: int, w: int) -> dict[str, torch.Tensor]:
    """The right pattern for [CLS] + T frames (``lengths[b]`` real, one-sided width ``w``) and typical slips."""
    L = T + 1
    keep = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None] + 1          # (B, L): the CLS + real frames
    i = torch.arange(L)
    band = ((i[:, None] - i[None, :]).abs() <= w)[None]                           # (1, L, L)
    cls = torch.zeros(L, dtype=torch.bool)
    cls[0] = True
    base = band | cls[None, None, :] | cls[None, :, None]                         # the CLS row and column
    rows, cols = keep[:, :, None], keep[:, None, :]
    return {"right": base & rows & cols, "padding rows": base & cols, "padding keys": base & rows,
            "no global": band & rows & cols}


def _padded_reference(lengths: list[int], T: int, window: int) -> torch.Tensor:
    """vtlib's ``window_mask`` for [CLS] + T frames, ``lengths[b]`` of them real, the CLS global."""
    B, L = len(lengths), T + 1
    keep = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None] + 1
    is_global = torch.zeros(B, L, dtype=torch.bool)
    is_global[:, 0] = True
    return window_mask(L, window // 2, keep, is_global)


def check_padded_mask(fn: Callable) -> bool:
    """``fn(lengths, T, window) -> (B, 1 + T, 1 + T)`` bool: row i = query token, column j = key token.

    Token 0 is the CLS (global: it sees every real token, every real token sees it); tokens 1..T are
    frames 0..T-1, of which the first ``lengths[b]`` are real and the rest padding (never a key, and
    a padding row sees nothing). A real frame sees the real frames within ``window // 2`` tokens of
    itself (``window`` counts both sides, as Hugging Face's ``attention_window``).
    """
    name = "check_padded_mask"
    hint = ("start from the band |i - j| <= window // 2 over the 1 + T tokens, add the CLS's row and column, "
            "then remove padding columns everywhere and padding rows entirely")
    slips = {"padding rows": "padding rows still see keys; a padded query must see nothing",
             "padding keys": "real tokens attend to padded frames; a padded frame is never a key",
             "no global": "the CLS (token 0) must be global: its row holds every real token and every real "
                          "row holds it"}
    for lengths, T, window in (([5, 3], 6, 2), ([9, 2, 7], 9, 4), ([12, 12, 1], 12, 18)):
        want = _padded_reference(lengths, T, window)
        what = f"fn(lengths={lengths}, T={T}, window={window})"
        got, problem = call(fn, (list(lengths), T, window), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape):
            got = got.detach().bool().cpu()
            if torch.equal(got, _padded_patterns(lengths, T, window)["right"]):       # w = window: too wide
                problem = (f"{what}: each frame sees {window} tokens on each side; the window counts both "
                           f"sides, so w = window // 2 = {window // 2}")
            for slip, pattern in _padded_patterns(lengths, T, window // 2).items():
                if slip != "right" and torch.equal(got, pattern):
                    problem = f"{what}: {slips[slip]}"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == (len(lengths), T, T):
            problem = f"{what}: shape {tuple(got.shape)} has no CLS token; add it at index 0 (1 + T tokens)"
        if problem:
            return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: score counts
def _window_count(frames: int, window: int, global_cls: bool = True) -> int:
    from vtlib.experiments.vtn import window_score_count

    return window_score_count(frames, window, global_cls)


def check_score_counts(fn: Callable) -> bool:
    """``fn(frames, window) -> (window_scores, full_scores)``: the query-key pairs that ONE head of ONE
    layer scores over [CLS] + ``frames`` frames, the CLS global, for sliding-window attention (each
    pair once) and for full attention. Checked up to a million frames: use a formula, not a mask."""
    name = "check_score_counts"
    hint = ("count the band first: L = frames + 1 tokens, 2w + 1 keys per query, minus the keys that fall off "
            "both ends; then add the CLS's row and column, without the pairs the band "
            "already holds")
    for frames, window in ((3, 4), (10, 2), (255, 8), (100, 300), (4095, 18), (1_000_000, 18)):
        what = f"fn(frames={frames}, window={window})"
        got, problem = call(fn, (frames, window), what)
        if problem:
            return verdict(name, problem, hint)
        L, w = frames + 1, window // 2
        want = (_window_count(frames, window), L * L)
        problem = compare_count(got, want, what)
        if problem is None:
            continue
        try:
            win, full = (int(v) for v in got)
        except Exception:  # not two numbers
            return verdict(name, f"{what} should return two whole numbers (window_scores, full_scores)", hint)
        if full == frames * frames:
            problem = f"{what}: full attention runs over the CLS too: (frames + 1)^2 = {L * L} pairs"
        elif win == L * (2 * w + 1) + 2 * L - 1 - (2 * w + 1):
            problem = f"{what}: near the two ends a query has fewer than 2w + 1 keys; subtract the pairs off the ends"
        elif win == _window_count(frames, window, global_cls=False):
            problem = f"{what}: that is the band alone; the global CLS adds its whole row and column"
        elif win == _window_count(frames, window, global_cls=False) + 2 * L - 1:
            problem = f"{what}: the CLS's pairs inside the band were counted twice (band and global)"
        elif win == _window_count(frames, 2 * window):
            problem = f"{what}: window counts both sides: w = window // 2 = {w} keys on each side"
        elif full == L * L and win != want[0]:
            problem = f"{what}: the full count is right; the window count should be {want[0]}, got {win}"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: feature cache
def _cache_case():
    from vtlib.models.vtn import VTN

    torch.manual_seed(10)
    model = VTN(dim=16, depth=1, heads=2, window=4, max_frames=96, head_drop=0.0).eval()
    clip = torch.rand(1, 1, 96, 16, 16, generator=torch.Generator().manual_seed(10))
    return model, clip


def check_feature_cache(fn: Callable) -> bool:
    """``fn(model, clip, chunk) -> (1, T, F)``: the backbone features of ONE long video ``clip``
    (1, C, T, H, W), computed ``chunk`` frames at a time with ``model.backbone``, without autograd.

    Checked: ``model.classify_features(features)`` gives ``model(clip)``'s logits, the result needs no
    gradient, and the memory the call needs stays close to what ``chunk`` frames need (measured with
    ``vtlib.cost.PeakTensorMemory``), far below what all frames at once need.
    """
    from vtlib.cost import PeakTensorMemory

    name = "check_feature_cache"
    hint = ("under torch.no_grad(), fold the frames into a batch with rearrange, send them through model.backbone "
            "in slices of chunk frames, torch.cat the slices and unfold to (1, T, F)")
    model, clip = _cache_case()
    chunk = 8
    what = f"fn(model, clip {tuple(clip.shape)}, chunk={chunk})"
    args = (model, clip.clone(), chunk)
    with PeakTensorMemory() as probe:
        got, problem = call(fn, args, what)
    if problem:
        return verdict(name, problem, hint)
    with torch.no_grad():
        want = model.features(clip)
        logits = model(clip)
    problem = compare_tensor(got, want, what)
    if problem and isinstance(got, torch.Tensor):
        got_d = got.detach().float()
        if tuple(got_d.shape) == tuple(want.shape[1:]):
            problem = f"{what}: shape {tuple(got_d.shape)}; keep the batch axis of one video: (1, T, F)"
        elif got_d.shape == want.shape and torch.allclose(got_d.flip(1), want, atol=1e-5):
            problem = f"{what}: the frames come out in reverse order"
    if problem:
        return verdict(name, problem, hint)
    if got.requires_grad or got.grad_fn is not None:
        return verdict(name, f"{what}: the features carry autograd history (requires_grad); a cache is computed "
                             "under torch.no_grad()", hint)
    with torch.no_grad():
        back = model.classify_features(got)
    if not torch.allclose(back, logits, atol=1e-5):
        return verdict(name, "model.classify_features(your features) does not give model(clip)'s logits", hint)
    with torch.no_grad(), PeakTensorMemory() as ref_probe:
        model.features(clip, chunk=chunk)
    with torch.no_grad(), PeakTensorMemory() as all_probe:
        model.features(clip)
    limit = 2 * ref_probe.peak + want.numel() * 4
    if probe.peak > limit:
        return verdict(name, f"the call held {probe.peak / 1024:.0f} KiB of tensors at once, about what all "
                             f"{clip.shape[2]} frames at once need ({all_probe.peak / 1024:.0f} KiB); "
                             f"{chunk} frames at a time need about {ref_probe.peak / 1024:.0f} KiB", hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 4: receptive field
RF_FRAMES = 24


def _rf_model(depth: int, window: int, global_cls: bool):
    from vtlib.models.vtn import VTN

    torch.manual_seed(depth * 100 + window)
    return VTN(dim=16, depth=depth, heads=2, window=window, max_frames=RF_FRAMES, head_drop=0.0,
               global_cls=global_cls).eval()


def receptive_field(model, frames: int = RF_FRAMES) -> list[int]:
    """The frames (0-based) whose features change ``model``'s logits: each frame in turn gets new random
    features (a constant shift would vanish in the first LayerNorm)."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, frames, model.feature_dim, generator=g)
    with torch.no_grad():
        base = model.classify_features(f)
        seen = []
        for t in range(frames):
            h = f.clone()
            h[:, t] = torch.randn(model.feature_dim, generator=g)
            if (model.classify_features(h) - base).abs().max() > 1e-6:
                seen.append(t)
    return seen


def check_receptive_field(frames_seen: Callable, rule: Callable, depth_to_see_frame_128) -> bool:
    """``frames_seen(model, frames) -> list of frame indices`` whose features can change the logits of
    ``model`` (probe it with ``model.classify_features``); ``rule(depth, window) -> int``: how many frames
    a LOCAL CLS (``global_cls=False``) sees, from your measurements; ``depth_to_see_frame_128``: the
    smallest depth at which a local CLS with window 8 sees frame 128."""
    name = "check_receptive_field"
    hint = ("perturb one frame at a time by REPLACING its features with new random numbers, keep the frames "
            "whose change moves the logits, then fit a rule to depth and window // 2 (frame t is token t + 1)")
    cases = [(1, 4, False), (2, 4, False), (3, 2, False), (2, 8, False), (1, 4, True)]
    for depth, window, global_cls in cases:
        model = _rf_model(depth, window, global_cls)
        what = f"frames_seen(VTN(depth={depth}, window={window}, global_cls={global_cls}), {RF_FRAMES})"
        got, problem = call(frames_seen, (model, RF_FRAMES), what)
        if problem:
            return verdict(name, problem, hint)
        want = receptive_field(model)
        try:
            got_list = sorted(int(t) for t in got)
        except Exception:  # not a list of numbers
            return verdict(name, f"{what} should return a list of frame indices, got {type(got).__name__}", hint)
        if got_list != want:
            if not got_list:
                why = ("found no frame at all: a constant added to a frame's features vanishes in the first "
                       "LayerNorm; replace them with new random numbers")
            elif got_list == [t + 1 for t in want if t + 1 <= RF_FRAMES] or got_list == [t + 1 for t in want]:
                why = "those are token indices; token 0 is the CLS, frame t is token t + 1"
            else:
                why = f"the model's logits move for frames {want[:3]}...{want[-1:]} ({len(want)} frames)"
            return verdict(name, f"{what} gave {len(got_list)} frames: {why}", hint)
    for depth, window in ((1, 2), (1, 8), (2, 4), (3, 6), (4, 18), (5, 10)):
        what = f"rule(depth={depth}, window={window})"
        got, problem = call(rule, (depth, window), what)
        problem = problem or compare_count(got, depth * (window // 2), what)
        if problem:
            if isinstance(got, (int, float)) and got == depth * window:
                problem = f"{what}: window counts both sides; each layer reaches window // 2 frames further"
            elif isinstance(got, (int, float)) and got == depth * (window // 2) + 1:
                problem = f"{what}: one too many; the CLS itself is token 0, not a frame"
            return verdict(name, problem, hint)
    problem = compare_count(depth_to_see_frame_128, 128 // 4 + 1, "depth_to_see_frame_128")
    if problem:
        if depth_to_see_frame_128 == 128 // 4:
            problem = ("depth_to_see_frame_128: at that depth the CLS sees frames 0..127; frame 128 is the 129th "
                       "frame")
        return verdict(name, problem, hint)
    return verdict(name, None, hint)
