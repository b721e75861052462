"""Exercise checks for notebook 00 (video as data).

Each check calls the learner's function (or reads the learner's numbers), compares with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed "write the
function first" line, and a number left at ``None`` gets a fixed "set ... first" line.

- ``check_balanced_accuracy``: the test balanced accuracy of the majority rule and of the
  gland-volume logistic regression on AdrenalMNIST3D (numbers: Python, NumPy or one-element tensors).
- ``check_frame_strip``: a clip (B, C, T, H, W) laid out as one image per clip, frames left to
  right and then top to bottom, against ``einops.rearrange``.
- ``check_two_frame_motion``: a small experiment: a direction score that reads only frames 0 and
  k of a synthetic motion clip, its AUC for several gaps k, the first gap at which it fails, and why.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from einops import rearrange

from vtlib.exercises.common import as_number, call, compare_tensor, placeholder, verdict


# ----------------------------------------------------------------------------- exercise 1: balanced accuracy
def _recalls(y_true: np.ndarray, y_pred: np.ndarray) -> list[float]:
    """The recall of each class present in ``y_true``: the share of its clips predicted as that class."""
    return [float((y_pred[y_true == c] == c).mean()) for c in np.unique(y_true)]


def _volume_rule():
    """The notebook's gland-volume logistic regression and the train/test volumes and labels."""
    from sklearn.linear_model import LogisticRegression

    from vtlib.data import load_arrays

    (xtr, ytr), (xte, yte) = load_arrays("adrenal", "train"), load_arrays("adrenal", "test")
    vol_tr = torch.as_tensor(xtr).float().mean(dim=(1, 2, 3)).numpy()[:, None] * 10
    vol_te = torch.as_tensor(xte).float().mean(dim=(1, 2, 3)).numpy()[:, None] * 10
    return LogisticRegression().fit(vol_tr, ytr), (vol_tr, ytr), (vol_te, yte)


def balanced_reference() -> dict[str, dict[str, float]]:
    """For each rule ("majority", "volume"): the right test balanced accuracy and the numbers of typical slips."""
    clf, (vol_tr, ytr), (vol_te, yte) = _volume_rule()
    majority = int(np.bincount(ytr).argmax())
    out = {}
    for rule, pred_tr, pred_te in (("majority", np.full_like(ytr, majority), np.full_like(yte, majority)),
                                   ("volume", clf.predict(vol_tr), clf.predict(vol_te))):
        rec = _recalls(yte, pred_te)
        out[rule] = {"right": float(np.mean(rec)), "accuracy": float((pred_te == yte).mean()),
                     "recall 0": rec[0], "recall 1": rec[1], "train": float(np.mean(_recalls(ytr, pred_tr)))}
    return out


def check_balanced_accuracy(majority_bacc, volume_bacc) -> bool:
    """``majority_bacc``, ``volume_bacc``: the TEST balanced accuracy (the mean over the two classes of
    the share of that class's clips predicted right) of always answering the most frequent TRAIN class,
    and of the gland-volume logistic regression ``clf`` (its ``clf.predict``). Any number type works."""
    name = "check_balanced_accuracy"
    hint = ("predict every test clip, take each class's recall (the share of its test clips predicted as that "
            "class) and average the two recalls")
    slips = {"accuracy": "that is the plain accuracy; balanced accuracy averages the two classes' recalls, so "
                         "the small class counts as much as the large one",
             "recall 0": "that is the recall of the normal class alone; average it with the recall of class 1",
             "recall 1": "that is the recall of hyperplasia alone; average it with the recall of class 0",
             "train": "that is measured on the train split; report the test split"}
    ref = None
    for what, got, rule in (("majority_bacc", majority_bacc, "majority"), ("volume_bacc", volume_bacc, "volume")):
        value, problem = as_number(got, what)
        if problem:
            return verdict(name, problem, None if got is None else hint)
        ref = ref or balanced_reference()
        numbers = ref[rule]
        if abs(value - numbers["right"]) <= 1e-3:
            continue
        if 1 < value <= 100 and abs(value / 100 - numbers["right"]) <= 1e-3:
            problem = f"{what} = {value:.3g}: give a share between 0 and 1, not a percentage"
        else:
            slip = next((s for s in slips if abs(value - numbers[s]) <= 1e-3), None)
            problem = f"{what} = {value:.3g}: " + (slips[slip] if slip else "not the test balanced accuracy of "
                                                    + ("the majority rule" if rule == "majority" else "clf.predict"))
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 2: a frame strip
def frame_strip_reference(x: torch.Tensor, ncols: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, (T // ncols) * H, ncols * W): frame t at row t // ncols, column t % ncols."""
    return rearrange(x, "b c (r k) h w -> b c (r h) (k w)", k=ncols)


def _strip_slips(x: torch.Tensor, ncols: int) -> dict[str, torch.Tensor]:
    B, C, T, H, W = x.shape
    return {"time down the columns": rearrange(x, "b c (k r) h w -> b c (r h) (k w)", k=ncols),
            "reshape": x.reshape(B, C, (T // ncols) * H, ncols * W),
            "interleaved": rearrange(x, "b c (r k) h w -> b c (h r) (w k)", k=ncols)}


def check_frame_strip(fn: Callable) -> bool:
    """``fn(x, ncols) -> (B, C, (T // ncols) * H, ncols * W)``: each clip of ``x`` (B, C, T, H, W) as one
    image of its frames, ``ncols`` per row, time running left to right, then top to bottom (frame t at
    row t // ncols, column t % ncols), every channel kept apart. ``ncols`` divides T."""
    name = "check_frame_strip"
    hint = ("split T into (rows, ncols), then join each of the two with the image axis it runs along: rows with "
            "H, columns with W; einops.rearrange does both in one pattern")
    slips = {"time down the columns": "time runs down the columns; frame t belongs in row t // ncols, column "
                                      "t % ncols (t = 1 is the second frame of the first row)",
             "reshape": "the pixels are scrambled: reshape keeps the memory order, so it cannot move the time "
                        "axis next to the rows and columns; move the axes first (rearrange or permute)",
             "interleaved": "the pixels of different frames are interleaved; the frame index must be the outer "
                            "factor of each image axis: (r h) and (k w), not (h r) and (w k)"}
    for shape, ncols in (((2, 3, 6, 4, 5), 3), ((2, 3, 6, 4, 5), 2), ((1, 2, 8, 3, 2), 4), ((1, 1, 5, 2, 3), 5),
                         ((1, 1, 4, 3, 3), 1)):
        x = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)
        want = frame_strip_reference(x, ncols)
        what = f"fn(x {shape}, ncols={ncols})"
        got, problem = call(fn, (x.clone(), ncols), what)
        if problem:
            return verdict(name, problem, hint)
        problem = compare_tensor(got, want, what)
        if problem is None:
            continue
        B, C, T, H, W = shape
        swapped = (B, C, ncols * H, (T // ncols) * W)
        if isinstance(got, torch.Tensor) and tuple(got.shape) == swapped and ncols * ncols != T:
            problem = f"{what}: shape {tuple(got.shape)}; ncols = {ncols} frames per row gives {T // ncols} rows"
        elif isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape):
            slip = next((s for s, p in _strip_slips(x, ncols).items() if torch.equal(got.detach().cpu(), p)), None)
            if slip:
                problem = f"{what}: {slips[slip]}"
        return verdict(name, problem, hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: two frames
GAPS = (1, 4, 9, 14, 18, 23, 27)
FAIL_BELOW = 0.9


def two_frame_reference(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 1, T, H, W) -> (N,): minus the shortest wrapped horizontal move (pixels) from frame 0 to frame k."""
    from vtlib.data import centroid_x

    a = centroid_x(x[:, :, [0, k]])                                        # (N, 2) angles on the wrapped frame
    step = torch.remainder(a[:, 1] - a[:, 0] + torch.pi, 2 * torch.pi) - torch.pi
    return -step * x.shape[-1] / (2 * torch.pi)


def measure_aucs(score_fn: Callable, x: torch.Tensor, y: torch.Tensor, gaps=GAPS) -> dict[int, float]:
    """{k: AUC of score_fn(x, k)} with ``vtlib.metrics.auc_score`` on sigmoid(score), as the notebook asks."""
    from vtlib.metrics import auc_score

    return {k: auc_score(y, torch.sigmoid(torch.as_tensor(score_fn(x, k)).reshape(-1).float()), "binary-class")
            for k in gaps}


def _scores(fn: Callable, x: torch.Tensor, k: int, what: str) -> tuple[torch.Tensor | None, str | None]:
    got, problem = call(fn, (x.clone(), k), what)
    if problem:
        return None, problem
    try:
        s = torch.as_tensor(got).detach().reshape(-1).double()
    except Exception:  # not something a tensor can be made of
        return None, f"{what} should return one score per clip, got {type(got).__name__}"
    if s.numel() != len(x):
        return None, f"{what} should return {len(x)} scores (one per clip), got {s.numel()} values"
    if not torch.isfinite(s).all():
        return None, f"{what} returned NaN or infinite scores"
    return s, None


def check_two_frame_motion(score_fn: Callable, aucs, first_failing_gap, max_move_px) -> bool:
    """``score_fn(x, k) -> (N,)``: a direction score per clip (higher = right to left) that reads ONLY
    frames 0 and k of the clips ``x`` (N, 1, T, H, W); ``aucs``: {k: test AUC} of your score on
    ``xs_test, ys_test`` for every k in ``GAPS``, measured with ``auc_score(ys_test, torch.sigmoid(score),
    "binary-class")``; ``first_failing_gap``: the smallest k in ``GAPS`` whose AUC is below 0.9;
    ``max_move_px``: the largest move (pixels) between the two frames that a 28-pixel-wide wrapped frame
    can still show the right way round."""
    from sklearn.metrics import roc_auc_score

    from vtlib.data import make_motion_videos

    name = "check_two_frame_motion"
    hint = ("find the object's horizontal position in frames 0 and k as an angle on the wrapped frame "
            "(vtlib.data.centroid_x), take the difference the shortest way round, and flip its sign")
    x, y = make_motion_videos(200, task="direction", seed=123)
    g = torch.Generator().manual_seed(5)
    for k in (1, 9):
        what = f"score_fn(x, k={k})"
        s, problem = _scores(score_fn, x, k, what)
        if problem:
            return verdict(name, problem, hint)
        other = x.clone()
        keep = [0, k]
        rest = [t for t in range(x.shape[2]) if t not in keep]
        other[:, :, rest] = torch.rand(other[:, :, rest].shape, generator=g)
        s_other, problem = _scores(score_fn, other, k, what)
        if problem or not torch.allclose(s, s_other, rtol=1e-4, atol=1e-5):
            return verdict(name, f"{what}: your scores change when frames other than 0 and {k} change; "
                                 f"read only x[:, :, 0] and x[:, :, {k}]", hint)
        auc = roc_auc_score(y.numpy(), s.numpy())
        if auc < 0.05:
            return verdict(name, f"{what}: AUC {auc:.2f}: your score is higher for left-to-right motion; "
                                 "flip its sign", hint)
        if auc < 0.97:
            return verdict(name, f"{what}: AUC {auc:.2f} on clips that move less than a pixel per frame; a "
                                 "plain mean of column positions breaks when the object crosses the frame's "
                                 "edge (the frame wraps around), and the move must be taken the shortest way "
                                 "round", hint)
    if aucs is None:
        return verdict(name, placeholder("aucs"))
    if not isinstance(aucs, dict) or sorted(aucs) != sorted(GAPS):
        keys = sorted(aucs) if isinstance(aucs, dict) else type(aucs).__name__
        return verdict(name, f"aucs should be a dict with one AUC for each k in {GAPS}, got {keys}",
                       "aucs = {k: auc_score(ys_test, torch.sigmoid(two_frame_score(xs_test, k)), "
                       "'binary-class') for k in gaps}")
    xt, yt = make_motion_videos(500, task="direction", seed=1)             # the notebook's xs_test, ys_test
    measured = measure_aucs(score_fn, xt, yt)
    for k in GAPS:
        value, problem = as_number(aucs[k], f"aucs[{k}]")
        if problem:
            return verdict(name, problem, hint)
        if abs(value - measured[k]) > 0.01:
            return verdict(name, f"aucs[{k}] = {value:.3f}, but your score gives AUC {measured[k]:.3f} on "
                                 "xs_test, ys_test", "measure on the notebook's xs_test and ys_test")
    want = next((k for k in GAPS if measured[k] < FAIL_BELOW), None)
    value, problem = as_number(first_failing_gap, "first_failing_gap")
    if problem:
        return verdict(name, problem, None if first_failing_gap is None else hint)
    if want is None:
        return verdict(name, f"none of your AUCs is below {FAIL_BELOW}, yet two frames 27 steps apart cannot show "
                             "the direction of every clip", hint)
    if value != want:
        below_chance = next((k for k in GAPS if measured[k] < 0.5), None)
        why = ("that is where the AUC drops below chance (0.5); the question asks for the first gap below 0.9"
               if value == below_chance else f"the smallest k whose measured AUC is below {FAIL_BELOW} is {want}")
        return verdict(name, f"first_failing_gap = {value:g}: {why}", "read it off your aucs")
    value, problem = as_number(max_move_px, "max_move_px")
    if problem:
        return verdict(name, problem, None if max_move_px is None else hint)
    if not 13 <= value <= 14:
        return verdict(name, f"max_move_px = {value:g}: on a wrapped frame 28 pixels wide, a move of d pixels to "
                             "the right looks exactly like one of 28 - d pixels to the left; the shortest way round "
                             "is the true one only while d is the shorter of the two",
                       "which d makes both ways round equally long?")
    return verdict(name, None, hint)
