"""MedMNIST metrics: ACC and AUC exactly as the official evaluator computes them, plus baselines.

Tasks are named as in ``medmnist.INFO[...]["task"]``: ``"binary-class"`` or ``"multi-class"``.
Scores are what the model outputs after softmax: shape (N, num_classes). For binary tasks the
positive-class column ``[:, -1]`` is used, thresholded at 0.5 for ACC (as medmnist does).
Inputs are checked: labels must be whole numbers, scores finite probabilities with rows summing
to 1, so logits or swapped arguments get an error instead of a meaningless number.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

from vtlib.errors import bad_arg, check_choice

TASKS = ("binary-class", "multi-class")


class Metrics(NamedTuple):
    auc: float
    acc: float


def _as_numpy(a, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(a)
    if a.size == 0:
        raise bad_arg(name, "a non-empty array", "an empty array", "pass at least one sample")
    return a


def _labels(y_true) -> np.ndarray:
    """Integer class labels; floats are accepted only when every value is a whole number."""
    y = _as_numpy(y_true, "y_true").reshape(-1)
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise bad_arg("y_true", "integer class labels", f"dtype {y.dtype}", "pass labels as ints, e.g. y.long()")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise bad_arg("y_true", "integer class labels (0, 1, ...)", f"values such as {y[y != np.round(y)][:3]}",
                          "pass the dataset labels, not scores or probabilities (scores go in y_score)")
    return y.astype(np.int64)


def _probabilities(y_score) -> np.ndarray:
    """Scores must be probabilities: finite, in [0, 1], and rows of (N, C) summing to 1."""
    s = _as_numpy(y_score, "y_score")
    if s.dtype == bool or not np.issubdtype(s.dtype, np.number):
        raise bad_arg("y_score", "float probabilities", f"dtype {s.dtype}", "pass softmax(logits) as floats")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise bad_arg("y_score", "finite probabilities", f"{int((~np.isfinite(s)).sum())} NaN/inf value(s)",
                      "the model diverged or its inputs hold NaN; check the loss and the data")
    if s.min() < 0 or s.max() > 1:
        raise bad_arg("y_score", "probabilities in [0, 1]", f"values in [{s.min():.3g}, {s.max():.3g}]",
                      "these look like logits: pass logits.softmax(-1) (or .sigmoid() for one column)")
    if s.ndim == 2 and s.shape[1] > 1 and not np.allclose(s.sum(axis=1), 1.0, atol=1e-3):
        worst = float(np.abs(s.sum(axis=1) - 1).max())
        raise bad_arg("y_score", "rows that sum to 1 (softmax probabilities)", f"rows off by up to {worst:.3g}",
                      "apply softmax over the class axis: logits.softmax(-1)")
    return s


def _prepare(y_true, y_score, task: str) -> tuple[np.ndarray, np.ndarray]:
    check_choice("task", task, TASKS)
    y_true = _labels(y_true)
    y_score = _probabilities(y_score)
    if y_score.ndim == 1:
        if task != "binary-class":
            raise bad_arg("y_score", "shape (N, num_classes) for a multi-class task",
                          f"shape {y_score.shape}", "pass softmax probabilities for every class")
        y_score = np.stack([1.0 - y_score, y_score], axis=1)
    if y_score.ndim != 2 or y_score.shape[0] != y_true.shape[0]:
        raise bad_arg("y_score", f"shape (N={y_true.shape[0]}, num_classes)", f"shape {y_score.shape}",
                      "pass one row of class probabilities per label in y_true")
    if y_true.min() < 0 or y_true.max() >= y_score.shape[1]:
        raise bad_arg("y_true", f"labels in [0, {y_score.shape[1] - 1}]",
                      f"labels in [{y_true.min()}, {y_true.max()}]",
                      "check that y_score has one column per class and labels start at 0")
    if task == "binary-class" and y_score.shape[1] != 2:
        raise bad_arg("y_score", "2 columns for a binary task", f"{y_score.shape[1]} columns",
                      "use a 2-way classifier head (or pass the positive-class probability as 1-D)")
    return y_true, y_score


def auc_score(y_true, y_score, task: str) -> float:
    """AUC as medmnist's getAUC: ROC-AUC of the positive class (binary) or mean one-vs-rest (multi)."""
    y_true, y_score = _prepare(y_true, y_score, task)
    if task == "binary-class":
        if len(np.unique(y_true)) < 2:
            return float("nan")
        return float(roc_auc_score(y_true, y_score[:, -1]))
    aucs = [roc_auc_score((y_true == i).astype(float), y_score[:, i])
            for i in range(y_score.shape[1]) if 0 < (y_true == i).sum() < len(y_true)]
    # medmnist averages over all classes; a class absent from y_true has no AUC, so it is skipped
    return float(np.mean(aucs))


def acc_score(y_true, y_score, task: str) -> float:
    """ACC as medmnist's getACC: positive-class score > 0.5 (binary) or argmax (multi)."""
    y_true, y_score = _prepare(y_true, y_score, task)
    if task == "binary-class":
        return float(accuracy_score(y_true, y_score[:, -1] > 0.5))
    return float(accuracy_score(y_true, y_score.argmax(axis=1)))


def evaluate_scores(y_true, y_score, task: str) -> Metrics:
    """Both metrics, as medmnist reports them: ``Metrics(auc, acc)``."""
    return Metrics(auc_score(y_true, y_score, task), acc_score(y_true, y_score, task))


def majority_baseline(train_labels, eval_labels, num_classes: int, task: str) -> Metrics:
    """Predict the most frequent TRAINING class for every sample; AUC is 0.5 by construction."""
    train_labels = _as_numpy(train_labels, "train_labels").reshape(-1).astype(np.int64)
    eval_labels = _as_numpy(eval_labels, "eval_labels").reshape(-1).astype(np.int64)
    majority = np.bincount(train_labels, minlength=num_classes).argmax()
    scores = np.zeros((len(eval_labels), num_classes))
    scores[:, majority] = 1.0
    return evaluate_scores(eval_labels, scores, task)
