"""Reference solutions for notebook 00's exercises (video as data)."""
from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from vtlib.data import centroid_x, load_arrays, make_motion_videos
from vtlib.metrics import auc_score


# exercise 1
def balanced_accuracy(y_true, y_pred) -> float:
    """The mean over the classes present in y_true of the share of their clips predicted right."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def balanced_accuracies() -> tuple[float, float]:
    """(majority_bacc, volume_bacc) on the test split, rebuilt as the notebook builds them."""
    from sklearn.linear_model import LogisticRegression

    (xtr, ytr), (xte, yte) = load_arrays("adrenal", "train"), load_arrays("adrenal", "test")
    vol_tr = torch.as_tensor(xtr).float().mean(dim=(1, 2, 3)).numpy()
    vol_te = torch.as_tensor(xte).float().mean(dim=(1, 2, 3)).numpy()
    clf = LogisticRegression().fit(vol_tr[:, None] * 10, ytr)
    majority = np.full_like(yte, np.bincount(ytr).argmax())        # the most frequent TRAIN label
    return balanced_accuracy(yte, majority), balanced_accuracy(yte, clf.predict(vol_te[:, None] * 10))


# exercise 2
def frame_strip(x, ncols):
    """(B, C, T, H, W) -> (B, C, (T // ncols) * H, ncols * W): frame t at row t // ncols, column t % ncols."""
    return rearrange(x, "b c (r k) h w -> b c (r h) (k w)", k=ncols)


# exercise 3
def two_frame_score(x, k):
    """(N, 1, T, H, W) -> (N,): minus the shortest wrapped horizontal move (pixels) from frame 0 to frame k."""
    a = centroid_x(x[:, :, [0, k]])                                  # (N, 2): positions as angles
    move = torch.remainder(a[:, 1] - a[:, 0] + torch.pi, 2 * torch.pi) - torch.pi
    return -move * x.shape[-1] / (2 * torch.pi)                      # right to left = positive


GAPS = (1, 4, 9, 14, 18, 23, 27)


def measure(gaps=GAPS) -> dict[int, float]:
    """{k: test AUC of two_frame_score} on the notebook's xs_test, ys_test."""
    xs_test, ys_test = make_motion_videos(500, task="direction", seed=1)
    return {k: auc_score(ys_test, torch.sigmoid(two_frame_score(xs_test, k)), "binary-class") for k in gaps}


FIRST_FAILING_GAP = 23      # AUC 1.0 up to k = 18, then 0.57 at k = 23 and below chance at k = 27
MAX_MOVE_PX = 14            # half the 28-pixel frame: beyond it the shortest way round points backwards
