"""Exercise checks for notebook 00 (video as data)."""
from __future__ import annotations

from typing import Callable

import torch

from vtlib.errors import bad_arg
from vtlib.exercises.common import verdict


def check_majority_accuracy(answer: float) -> bool:
    """Exercise 1: the test ACC of always predicting AdrenalMNIST3D's most common training class."""
    from vtlib.data import load_arrays
    from vtlib.metrics import majority_baseline

    _, ytr = load_arrays("adrenal", "train")
    _, yte = load_arrays("adrenal", "test")
    ref = majority_baseline(ytr, yte, num_classes=2, task="binary-class").acc
    ok = isinstance(answer, (int, float)) and abs(float(answer) - ref) < 1e-3
    return verdict("check_majority_accuracy", None if ok else
                   "find the most frequent label in the TRAIN split, then count how often it occurs in TEST")


def check_to_frames(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Exercise 2: (B, C, T, H, W) -> (B, T, C, H, W) without mixing up pixels."""
    x = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 3, 4, 5, 6)
    try:
        out = fn(x)
        ok = tuple(out.shape) == (2, 4, 3, 5, 6) and torch.equal(out, x.permute(0, 2, 1, 3, 4))
    except Exception:  # the learner's code may raise anything; the hint covers it
        ok = False
    return verdict("check_to_frames", None if ok else
                   "move axis 2 (time) before axis 1 (channels): permute or rearrange")


def check_motion_feature(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Exercise 3: one number per clip that tells left-to-right from right-to-left motion.

    ``fn`` maps clips (N, 1, T, H, W) to scores (N,); higher should mean class 1 (right to left).
    Passes when the AUC on fresh synthetic clips is at least 0.95.
    """
    from vtlib.data import make_motion_videos
    from vtlib.metrics import auc_score

    x, y = make_motion_videos(400, task="direction", seed=123)
    try:
        s = torch.as_tensor(fn(x)).reshape(-1).float()
        if s.shape != (400,):
            raise bad_arg("fn", "one score per clip", tuple(s.shape), "return a tensor shaped (N,)")
        auc = auc_score(y, torch.sigmoid(s), "binary-class")
    except Exception:
        auc = 0.0
    return verdict("check_motion_feature", None if auc >= 0.95 else
                   "follow the object from frame to frame (vtlib.data.motion_x is one answer)")
