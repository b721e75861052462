"""Metric learning on clip embeddings: distances, the triplet loss, nearest-centroid and kNN heads (notebook 12).

A metric-learning head does not learn one output per class. It learns an embedding in which clips of
the same class lie close together and clips of different classes lie far apart; a class is then just
a point (its centroid) or a set of examples (for kNN). Adding a class means adding its centroid, with
no retraining of an output layer, which suits a label set that changes often.

The triplet loss asks, for an anchor a, a positive p (same class) and a negative n (another class):

    d(a, p) + margin <= d(a, n)          loss = max(0, d(a, p) - d(a, n) + margin)

Most random triplets already satisfy this and give no gradient, so the triplets are *mined* in the batch:

- ``"hard"`` (batch-hard): per anchor, the farthest positive and the closest negative. Hermans, Beyer &
  Leibe, "In Defense of the Triplet Loss for Person Re-Identification", arXiv 1703.07737 (2017).
- ``"all"`` (batch-all, same paper): every valid (a, p, n), averaged over those with a positive loss,
  so the many easy triplets do not dilute the mean.
- ``"semi-hard"``: per (a, p), the closest negative that is still farther than the positive, the band
  ``d(a, p) < d(a, n) < d(a, p) + margin`` FaceNet trains on to avoid collapse early in training.
  Schroff, Kalenichenko & Philbin, "FaceNet", CVPR 2015, arXiv 1503.03832.

Distances are Euclidean (not squared), as in Hermans et al.; normalise embeddings first (``l2_normalize``)
to make ``margin`` comparable across models: unit vectors are at most 2 apart.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vtlib.errors import bad_arg, check_choice, check_float, check_positive_int, check_rank

MINING = ("hard", "all", "semi-hard")


def _check_embeddings(name: str, x, dim: int | None = None) -> None:
    check_rank(name, x, 2, "N D")
    check_float(name, x)
    if dim is not None and x.shape[1] != dim:
        raise bad_arg(name, f"embeddings of width D={dim}", f"shape {tuple(x.shape)}",
                      "embed both sets with the same model (and the same layer and pooling)")


def _check_labels(name: str, labels, n: int, what: str) -> None:
    check_rank(name, labels, 1, "N")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise bad_arg(name, "integer class labels", f"dtype {labels.dtype}", f"pass {name}.long()")
    if labels.shape[0] != n:
        raise bad_arg(name, f"one label per row of {what} ({n})", f"{labels.shape[0]} labels",
                      f"pass the labels that belong to {what}, in the same order")


def l2_normalize(x: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """(N, D) -> (N, D) rows of unit Euclidean length (an all-zero row stays zero)."""
    _check_embeddings("x", x)
    return F.normalize(x, dim=1, eps=eps)


def pairwise_distances(a: torch.Tensor, b: torch.Tensor | None = None, *, squared: bool = False) -> torch.Tensor:
    """Euclidean distances between the rows of a (N, D) and b (M, D) (b=None: a with itself) -> (N, M).

    Uses ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` (one matmul, no (N, M, D) tensor). In floating point that
    difference of large numbers can come out slightly negative, or tiny instead of 0, for equal rows. So
    both sets are first centred (distances do not change); squared distances below the rounding noise
    ``16 * eps * (|a|^2 + |b|^2)`` (eps of the dtype; the measured noise stays under about 6 eps) become
    exactly 0; the diagonal of ``a`` with itself is exactly 0; and the square root gets a zero (finite)
    gradient at distance 0 instead of an infinite one.
    """
    _check_embeddings("a", a)
    if b is not None:
        _check_embeddings("b", b, a.shape[1])
    centre = a.mean(0, keepdim=True).detach() if a.shape[0] else 0.0
    a = a - centre
    b = a if b is None else b - centre
    na, nb = (a * a).sum(1, keepdim=True), (b * b).sum(1, keepdim=True).T
    d2 = na + nb - 2.0 * a @ b.T
    zero = d2 <= 16 * torch.finfo(d2.dtype).eps * (na + nb).detach()
    if b is a:
        zero |= torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
    d2 = d2.masked_fill(zero, 0.0)
    if squared:
        return d2
    return torch.sqrt(d2.masked_fill(zero, 1.0)).masked_fill(zero, 0.0)


def _zero(dist: torch.Tensor) -> torch.Tensor:
    return dist.sum() * 0.0                     # connected to the graph, so backward() gives zero gradients


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, *, margin: float = 0.2,
                 mining: str = "hard") -> torch.Tensor:
    """Triplet loss of a batch: embeddings (B, D) float, labels (B,) int -> scalar.

    An anchor needs a positive (another row with its label) and a negative (a row with another label);
    anchors without both, e.g. the only member of its class in the batch, are skipped. If no anchor is
    valid (one class, or all classes of size 1) the loss is a zero that is still connected to the
    graph (it has a grad_fn when ``embeddings`` requires grad), so ``loss.backward()`` works.

    mining="hard": mean over valid anchors of max(0, max_p d(a, p) - min_n d(a, n) + margin).
    mining="all": mean over the valid triplets whose loss is > 0 (zero if there are none).
    mining="semi-hard": mean over (a, p) pairs whose anchor has a negative; each pair takes the closest
    negative with d(a, n) > d(a, p) (strictly). If every negative is at least as close as the positive,
    the pair falls back to the farthest negative: the easiest of those hard negatives, which keeps the
    gentle gradients semi-hard mining is for (FaceNet found the hardest negatives collapse the embedding).
    """
    _check_embeddings("embeddings", embeddings)
    _check_labels("labels", labels, embeddings.shape[0], "embeddings")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise bad_arg("margin", "a finite number >= 0", repr(margin), "pass e.g. margin=0.2 (unit-length embeddings)")
    check_choice("mining", mining, MINING)
    dist = pairwise_distances(embeddings)
    labels = labels.to(dist.device)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=dist.device)
    neg = ~same
    valid = pos.any(1) & neg.any(1)                                  # (B,) anchors with a positive and a negative
    if not valid.any():
        return _zero(dist)
    if mining == "hard":
        hardest_pos = dist.masked_fill(~pos, -math.inf).amax(1)
        hardest_neg = dist.masked_fill(~neg, math.inf).amin(1)
        return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()
    d_ap, d_an = dist[:, :, None], dist[:, None, :]                  # (B, P, 1) and (B, 1, N)
    if mining == "all":
        loss = F.relu(d_ap - d_an + margin)                          # (B, P, N): anchor, positive, negative
        loss = loss[pos[:, :, None] & neg[:, None, :] & (loss > 0)]
        return loss.mean() if loss.numel() else _zero(dist)
    farther = neg[:, None, :] & (d_an > d_ap)                        # (B, P, N) semi-hard candidates
    closest_farther = d_an.masked_fill(~farther, math.inf).amin(2)   # (B, P)
    farthest = dist.masked_fill(~neg, -math.inf).amax(1, keepdim=True).expand_as(closest_farther)
    chosen = torch.where(farther.any(2), closest_farther, farthest)
    pairs = pos & valid[:, None]
    return F.relu(dist - chosen + margin)[pairs].mean()


def class_centroids(emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """emb (N, D), labels (N,) -> classes (K,) sorted ascending, centroids (K, D): the mean of each class."""
    _check_embeddings("emb", emb)
    _check_labels("labels", labels, emb.shape[0], "emb")
    if emb.shape[0] == 0:
        raise bad_arg("emb", "at least one embedding", "shape (0, D)", "pass the embeddings of a non-empty split")
    classes, inverse = torch.unique(labels.to(emb.device), sorted=True, return_inverse=True)
    sums = emb.new_zeros(len(classes), emb.shape[1]).index_add_(0, inverse, emb)
    counts = torch.bincount(inverse, minlength=len(classes)).to(emb.dtype)
    return classes, sums / counts[:, None]


def nearest_centroid(query: torch.Tensor, classes: torch.Tensor,
                     centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """query (B, D) -> predicted labels (B,) and distances (B, K) to each centroid (column k: classes[k]).

    Ties go to the centroid listed first (the smallest label when ``classes`` comes from class_centroids).
    Add a class by appending its label to ``classes`` and its centroid to ``centroids``; nothing retrains.
    """
    _check_embeddings("centroids", centroids)
    _check_labels("classes", classes, centroids.shape[0], "centroids")
    _check_embeddings("query", query, centroids.shape[1])
    dist = pairwise_distances(query, centroids)
    return classes.to(dist.device)[dist.argmin(1)], dist


def knn_predict(train_emb: torch.Tensor, train_labels: torch.Tensor, query: torch.Tensor,
                *, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """k-nearest-neighbour vote: query (B, D) -> predicted labels (B,) and vote shares (B, K) in [0, 1].

    Column j of the shares is the j-th smallest label of ``train_labels`` (``train_labels.unique()``).
    Ties are broken deterministically: at equal distance the training row with the lower index counts as
    nearer, and at equal votes the smallest label wins (as scikit-learn's KNeighborsClassifier does).
    """
    _check_embeddings("train_emb", train_emb)
    _check_labels("train_labels", train_labels, train_emb.shape[0], "train_emb")
    _check_embeddings("query", query, train_emb.shape[1])
    check_positive_int("k", k)
    if k > train_emb.shape[0]:
        raise bad_arg("k", f"at most the number of training embeddings ({train_emb.shape[0]})", k,
                      f"pass k <= {train_emb.shape[0]} or use more training embeddings")
    dist = pairwise_distances(query, train_emb)
    nearest = torch.sort(dist, dim=1, stable=True).indices[:, :k]                  # (B, k) training rows
    classes, inverse = torch.unique(train_labels.to(dist.device), sorted=True, return_inverse=True)
    votes = F.one_hot(inverse[nearest], len(classes)).sum(1)                         # (B, K) integer counts
    return classes[votes.argmax(1)], votes.to(dist.dtype) / k
