"""Tests for vtlib.metric: distances, triplet loss (hard, all, semi-hard mining), centroid and kNN heads."""
import itertools

import pytest
import torch
from torch.testing import assert_close

from vtlib import metric
from vtlib.errors import VtlibError
from vtlib.metric import class_centroids, knn_predict, l2_normalize, nearest_centroid, pairwise_distances, triplet_loss

MINING = metric.MINING


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def exact_dist(a, b):
    return torch.stack([torch.stack([(x - y).pow(2).sum().sqrt() for y in b]) for x in a])


def brute_triplet(emb, labels, margin, mining):
    """The definitions of the docstring, written as loops over (anchor, positive, negative)."""
    n = len(labels)
    d = [[(emb[i] - emb[j]).pow(2).sum().sqrt() if i != j else None for j in range(n)] for i in range(n)]
    terms = []
    for a in range(n):
        ps = [p for p in range(n) if p != a and labels[p] == labels[a]]
        ns = [k for k in range(n) if labels[k] != labels[a]]
        if not ps or not ns:
            continue
        if mining == "hard":
            terms.append(torch.relu(max(d[a][p] for p in ps) - min(d[a][k] for k in ns) + margin))
        for p in ps:
            if mining == "all":
                terms += [t for t in (torch.relu(d[a][p] - d[a][k] + margin) for k in ns) if t > 0]
            elif mining == "semi-hard":
                farther = [d[a][k] for k in ns if d[a][k] > d[a][p]]
                dn = min(farther) if farther else max(d[a][k] for k in ns)
                terms.append(torch.relu(d[a][p] - dn + margin))
    return torch.stack(terms).mean() if terms else torch.zeros((), dtype=emb.dtype)


def tied_batch(seed):
    """float64 points on a small integer grid: many exactly equal distances and duplicate rows. B = 16 keeps
    the centring in pairwise_distances exact, so ties stay ties."""
    g = gen(seed)
    emb = torch.randint(0, 3, (16, 3), generator=g).double()
    emb[5] = emb[4]                                                  # duplicate rows (maybe of another class)
    labels = torch.randint(0, 4, (16,), generator=g)
    labels[15] = 9                                                   # a class of size 1
    return emb, labels


def random_batch(seed, b=12, d=5):
    g = gen(seed)
    labels = torch.randint(0, 4, (b,), generator=g)
    labels[0] = 7                                                    # a class of size 1
    return torch.randn(b, d, generator=g), labels


def test_pairwise_distances_match_brute_force_and_are_safe():
    a, b = torch.randn(7, 4, generator=gen(1)) + 50.0, torch.randn(5, 4, generator=gen(2)) + 50.0
    assert_close(pairwise_distances(a, b), exact_dist(a, b), atol=1e-4, rtol=1e-4)   # large offset: centring
    assert_close(pairwise_distances(a, b, squared=True), exact_dist(a, b) ** 2, atol=1e-3, rtol=1e-4)
    d = pairwise_distances(a)
    assert d.shape == (7, 7) and torch.all(d.diagonal() == 0) and torch.all(d >= 0)
    assert_close(d, d.T)
    x = torch.randn(6, 768, generator=gen(3)) * 10
    x = torch.cat([x, x]).requires_grad_()                           # equal rows in different positions
    d = pairwise_distances(x)
    assert torch.all(d.diagonal(offset=6) == 0)                      # not a tiny positive from rounding
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    y = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v: pairwise_distances(u, v), (y, z))


@pytest.mark.parametrize("mining", MINING)
@pytest.mark.parametrize("seed", range(4))
def test_triplet_loss_matches_brute_force_with_ties(mining, seed):
    emb, labels = tied_batch(seed)
    for margin in (0.0, 0.5, 1.0):
        got = triplet_loss(emb, labels, margin=margin, mining=mining)
        assert_close(got, brute_triplet(emb, labels, margin, mining))


@pytest.mark.parametrize("mining", MINING)
@pytest.mark.parametrize("seed", range(4))
def test_triplet_loss_matches_brute_force_on_random_data(mining, seed):
    emb, labels = random_batch(seed)
    emb = l2_normalize(emb)
    got = triplet_loss(emb, labels, margin=0.3, mining=mining)
    assert_close(got, brute_triplet(emb, labels, 0.3, mining), atol=1e-5, rtol=1e-5)
    assert got > 0


@pytest.mark.parametrize("mining", MINING)
def test_triplet_loss_gradient_matches_brute_force(mining):
    emb, labels = random_batch(5, b=10, d=3)
    emb = emb.double().requires_grad_()
    (g_ours,) = torch.autograd.grad(triplet_loss(emb, labels, margin=0.5, mining=mining), emb)
    (g_brute,) = torch.autograd.grad(brute_triplet(emb, labels, 0.5, mining), emb)
    assert_close(g_ours, g_brute)


def test_the_mining_strategies_differ():
    emb, labels = random_batch(7, b=16)
    losses = {m: triplet_loss(emb, labels, margin=0.5, mining=m).item() for m in MINING}
    assert len(set(losses.values())) == 3, losses                    # a mix-up of strategies would show


@pytest.mark.parametrize("mining", MINING)
@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3], []])
def test_no_valid_triplet_gives_a_zero_with_grad(mining, labels):
    emb = torch.randn(len(labels), 3, requires_grad=True)
    loss = triplet_loss(emb, torch.tensor(labels, dtype=torch.long), mining=mining)
    assert loss.item() == 0 and loss.ndim == 0 and loss.grad_fn is not None
    loss.backward()
    assert torch.all(emb.grad == 0)


def test_batch_all_with_every_triplet_satisfied_is_zero_with_grad():
    emb = torch.tensor([[0.0, 0], [0, 0.1], [10, 0], [10, 0.1]], requires_grad=True)
    loss = triplet_loss(emb, torch.tensor([0, 0, 1, 1]), margin=0.2, mining="all")
    assert loss.item() == 0 and loss.grad_fn is not None


def test_hard_mining_moves_the_hardest_pair_and_leaves_easy_negatives_alone():
    # class 0: anchor A, a near and a far positive; two singleton classes as negatives, one near, one far
    emb = torch.tensor([[0.0, 0], [0.1, 0], [1, 0], [0, 0.5], [0, 5]], requires_grad=True)
    labels = torch.tensor([0, 0, 0, 1, 2])
    loss = triplet_loss(emb, labels, margin=0.2, mining="hard")
    assert_close(loss, brute_triplet(emb.detach(), labels, 0.2, "hard"))
    loss.backward()
    assert torch.all(emb.grad[4] == 0)                               # never the hardest negative
    assert emb.grad[3, 1] < 0                                        # the near negative is pushed away (+y)
    with torch.no_grad():
        moved = emb - 0.05 * emb.grad
        before, after = pairwise_distances(emb), pairwise_distances(moved)
    assert after[0, 2] < before[0, 2]                                # hardest positive of A comes closer
    assert after[0, 3] > before[0, 3]                                # hardest negative of A goes away
    assert triplet_loss(moved, labels, margin=0.2) < loss


def test_duplicate_embeddings_keep_gradients_finite():
    emb = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 1.0]], requires_grad=True)
    for mining in MINING:
        triplet_loss(emb, torch.tensor([0, 0, 1, 1]), mining=mining).backward()
        assert torch.isfinite(emb.grad).all()


def test_triplet_loss_errors():
    emb, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(VtlibError, match="labels.*one label per row"):
        triplet_loss(emb, labels[:3])
    with pytest.raises(VtlibError, match="embeddings.*2-D"):
        triplet_loss(emb[None], labels)
    with pytest.raises(VtlibError, match="labels.*1-D"):
        triplet_loss(emb, labels[:, None])
    with pytest.raises(VtlibError, match="labels.*integer"):
        triplet_loss(emb, labels.float())
    with pytest.raises(VtlibError, match="embeddings.*floating"):
        triplet_loss(emb.long(), labels)
    for margin in (-0.1, float("nan"), True, "0.2"):
        with pytest.raises(VtlibError, match="margin"):
            triplet_loss(emb, labels, margin=margin)
    with pytest.raises(VtlibError, match="mining.*semi-hard"):
        triplet_loss(emb, labels, mining="semihard")
    with pytest.raises(TypeError):
        triplet_loss(emb, labels, 0.2)                               # options are keyword-only
    with pytest.raises(VtlibError, match="b.*width D=3"):
        pairwise_distances(emb, torch.randn(2, 4))


def test_class_centroids_and_nearest_centroid_match_brute_force_and_sklearn():
    from sklearn.neighbors import NearestCentroid

    g = gen(4)
    labels = torch.tensor([5, 2, 2, 9, 5, 5, 2, 9, 9, 9])
    emb = torch.randn(10, 4, generator=g, dtype=torch.float64) + labels[:, None].double()
    classes, cents = class_centroids(emb, labels)
    assert classes.tolist() == [2, 5, 9] and cents.shape == (3, 4)
    for c, m in zip(classes, cents):
        assert_close(m, emb[labels == c].mean(0))
    query = torch.randn(20, 4, generator=g, dtype=torch.float64) * 3 + 5
    pred, dist = nearest_centroid(query, classes, cents)
    assert dist.shape == (20, 3)
    assert_close(dist, exact_dist(query, cents))
    assert pred.tolist() == [classes[exact_dist(q[None], cents)[0].argmin()].item() for q in query]
    sk = NearestCentroid().fit(emb.numpy(), labels.numpy())
    assert_close(torch.from_numpy(sk.centroids_), cents)
    assert pred.tolist() == sk.predict(query.numpy()).tolist()
    assert len(set(pred.tolist())) > 1                               # not a constant prediction


def test_adding_a_class_is_adding_a_centroid():
    classes, cents = torch.tensor([0, 1]), torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    q = torch.tensor([[0.0, 3.5]])
    assert nearest_centroid(q, classes, cents)[0].tolist() == [0]
    pred, _ = nearest_centroid(q, torch.cat([classes, torch.tensor([7])]), torch.cat([cents, torch.tensor([[0., 4]])]))
    assert pred.tolist() == [7]


def test_nearest_centroid_ties_go_to_the_first_class():
    pred, dist = nearest_centroid(torch.tensor([[1.0, 0.0]]), torch.tensor([3, 8]), torch.tensor([[2.0, 0], [0.0, 0]]))
    assert dist[0, 0] == dist[0, 1] and pred.tolist() == [3]


def brute_knn(train, labels, query, k):
    classes = sorted(set(labels.tolist()))
    preds, shares = [], []
    for q in query:
        d = [((q - t) ** 2).sum().item() for t in train]
        order = sorted(range(len(train)), key=lambda i: (d[i], i))[:k]
        votes = [sum(labels[i].item() == c for i in order) for c in classes]
        preds.append(classes[max(range(len(classes)), key=lambda j: (votes[j], -j))])
        shares.append([v / k for v in votes])
    return preds, torch.tensor(shares)


@pytest.mark.parametrize("k", [1, 4, 5])
def test_knn_matches_brute_force_and_sklearn(k):
    from sklearn.neighbors import KNeighborsClassifier

    g = gen(k)
    labels = torch.randint(0, 3, (40,), generator=g) * 2 + 1          # labels 1, 3, 5: not 0..K-1
    train = torch.randn(40, 6, generator=g, dtype=torch.float64) + labels[:, None].double() * 0.5
    query = torch.randn(25, 6, generator=g, dtype=torch.float64) + 1.5
    pred, shares = knn_predict(train, labels, query, k=k)
    want_pred, want_shares = brute_knn(train, labels, query, k)
    assert pred.tolist() == want_pred and shares.shape == (25, 3)
    assert_close(shares, want_shares.double())
    assert_close(shares.sum(1), torch.ones(25, dtype=torch.float64))
    sk = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(train.numpy(), labels.numpy())
    assert pred.tolist() == sk.predict(query.numpy()).tolist()
    assert_close(shares, torch.from_numpy(sk.predict_proba(query.numpy())))


def test_knn_ties_are_deterministic():
    train = torch.tensor([[0.0, 0], [0.0, 0], [1.0, 0], [3.0, 0]])
    labels = torch.tensor([4, 2, 4, 2])
    q = torch.tensor([[0.0, 0.0]])
    assert knn_predict(train, labels, q, k=1)[0].tolist() == [4]     # equal distance: the lower training index
    pred, shares = knn_predict(train, labels, q, k=2)                # one vote each: the smallest label
    assert pred.tolist() == [2] and shares.tolist() == [[0.5, 0.5]]
    assert knn_predict(train, labels, q, k=3)[0].tolist() == [4]
    for perm in itertools.permutations(range(4)):                    # same answer however the rows are ordered
        p = list(perm)
        assert knn_predict(train[p], labels[p], q, k=2)[0].tolist() == [2]
    many = torch.zeros(300, 2)                                       # 300 equidistant rows: an unstable sort
    many_labels = torch.arange(300) % 3                              # (or topk) would pick arbitrary ones
    pred, shares = knn_predict(many, many_labels, q, k=5)            # rows 0..4: labels 0, 1, 2, 0, 1
    assert pred.tolist() == [0]
    assert_close(shares, torch.tensor([[0.4, 0.4, 0.2]]))


def test_head_errors():
    train, labels = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(VtlibError, match="k.*at most"):
        knn_predict(train, labels, train, k=7)
    with pytest.raises(VtlibError, match="k.*positive int"):
        knn_predict(train, labels, train, k=0)
    with pytest.raises(VtlibError, match="query.*width D=3"):
        knn_predict(train, labels, torch.randn(2, 4))
    with pytest.raises(VtlibError, match="train_labels.*one label per row"):
        knn_predict(train, labels[:5], train)
    classes, cents = class_centroids(train, labels)
    with pytest.raises(VtlibError, match="query.*width D=3"):
        nearest_centroid(torch.randn(2, 5), classes, cents)
    with pytest.raises(VtlibError, match="classes.*one label per row"):
        nearest_centroid(train, classes[:2], cents)
    with pytest.raises(VtlibError, match="emb.*at least one"):
        class_centroids(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(VtlibError, match="x.*2-D"):
        l2_normalize(torch.randn(3))
    assert_close(l2_normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]])), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
