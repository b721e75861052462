"""Notebook 12's checks: the solutions pass, the stubs print "not yet", typical slips get their own hint."""
import itertools
import time

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import NOT_YET, last_line, stub

from vtlib.errors import VtlibError
from vtlib.exercises import nb12
from vtlib.exercises.solutions import nb12 as sol
from vtlib.models.videomae import VideoMAEClassifier
from vtlib.transfer import Finetune


# ----------------------------------------------------------------------------- exercise 1: layer-wise lr decay
def test_layerwise_reference_exponents():
    model = VideoMAEClassifier(dim=16, depth=2, heads=2, final_norm=True)
    lrs = nb12.layerwise_reference(model, 1.0, 0.5)
    assert lrs["encoder.embed.proj.weight"] == 0.5 ** 3                 # tokenizer: decay ** (L + 1)
    assert lrs["encoder.transformer.blocks.0.attn.qkv.weight"] == 0.5 ** 2
    assert lrs["encoder.transformer.blocks.1.mlp.fc2.bias"] == 0.5
    assert lrs["encoder.norm.weight"] == lrs["fc_norm.bias"] == lrs["head.weight"] == 1.0   # after the blocks
    assert set(lrs) == {n for n, _ in model.named_parameters()}
    Finetune(model, approach="partial", blocks=1)
    frozen = nb12.layerwise_reference(model, 1.0, 0.5)
    assert "encoder.embed.proj.weight" not in frozen and "encoder.transformer.blocks.1.norm1.weight" in frozen


def test_layerwise_solution_and_stub(capsys):
    start = time.perf_counter()
    assert nb12.check_layerwise_lr(sol.layerwise_lr_groups)
    assert last_line(capsys) == "check_layerwise_lr: correct"
    assert time.perf_counter() - start < 2
    assert not nb12.check_layerwise_lr(stub)
    assert NOT_YET in last_line(capsys)


def _ignoring_frozen(model, base_lr, decay):
    """The solution with every parameter trainable for the grouping, then the requires_grad flags restored."""
    flags = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    groups = sol.layerwise_lr_groups(model, base_lr, decay)
    for p, flag in flags.items():
        p.requires_grad_(flag)
    return groups


def _set_lr(groups, fn):
    return [{"params": g["params"], "lr": fn(g)} for g in groups]


@pytest.mark.parametrize("slip, expected", [
    # exponent off by one: every lr one decay lower, the head included
    (lambda m, lr, d: _set_lr(sol.layerwise_lr_groups(m, lr, d), lambda g: g["lr"] * d), "the tail was decayed too"),
    # block i at base_lr * decay ** (i + 1): block 0 gets the highest lr
    (lambda m, lr, d: [{"params": [p for p in b.parameters() if p.requires_grad], "lr": lr * d ** (i + 1)}
                       for i, b in enumerate(m.encoder.transformer.blocks)]
     + [g for g in sol.layerwise_lr_groups(m, lr, d)
        if not any(p is q for p in g["params"] for q in m.encoder.transformer.blocks.parameters())],
     "the order is reversed"),
    # the tokenizer forgotten (its group dropped)
    (lambda m, lr, d: sol.layerwise_lr_groups(m, lr, d)[1:], "the tokenizer (model.encoder.embed) is in no group"),
    # the tokenizer added a second time
    (lambda m, lr, d: sol.layerwise_lr_groups(m, lr, d) + [{"params": list(m.encoder.embed.parameters()), "lr": lr}],
     "appears 2 times in the groups"),
    # frozen parameters included (requires_grad ignored)
    (lambda m, lr, d: _ignoring_frozen(m, lr, d), "is frozen (requires_grad=False) but is in a group"),
    # the tail listed by hand as fc_norm + head: the encoder's final norm is forgotten
    (lambda m, lr, d: [g for g in sol.layerwise_lr_groups(m, lr, d) if g["lr"] != lr]
     + [{"params": list(m.fc_norm.parameters()) + list(m.head.parameters()), "lr": lr}],
     "encoder.norm.weight is in no group"),
])
def test_layerwise_slips(slip, expected, capsys):
    assert not nb12.check_layerwise_lr(slip)
    line = last_line(capsys)
    assert expected in line and "hint:" in line, line


def test_layerwise_wrong_forms(capsys):
    assert not nb12.check_layerwise_lr(lambda m, lr, d: [{"params": m.parameters(), "lr": lr}])
    assert "a generator such as model.parameters()" in last_line(capsys)
    assert not nb12.check_layerwise_lr(lambda m, lr, d: {"params": list(m.parameters()), "lr": lr})
    assert "expected a list of dicts" in last_line(capsys)
    assert not nb12.check_layerwise_lr(lambda m, lr, d: [{"params": [torch.zeros(2)], "lr": lr}])
    assert "not a parameter of the model" in last_line(capsys)
    assert not nb12.check_layerwise_lr(lambda m, lr, d: [{"params": list(m.parameters()), "lr": None}])
    assert "group 0's 'lr'" in last_line(capsys)
    # one lr for everything: not the decay
    assert not nb12.check_layerwise_lr(
        lambda m, lr, d: [{"params": [p for p in m.parameters() if p.requires_grad], "lr": lr}])
    assert "expected" in last_line(capsys)


# ----------------------------------------------------------------------------- exercise 2: batch-all triplet loss
def _brute_force(emb, labels, margin):
    """The statement, one triplet at a time."""
    d = torch.cdist(emb, emb)
    losses = [max(0.0, (d[a, p] - d[a, n] + margin).item())
              for a, p, n in itertools.product(range(len(labels)), repeat=3)
              if a != p and labels[a] == labels[p] and labels[n] != labels[a]]
    positive = [v for v in losses if v > 0]
    return sum(positive) / len(positive) if positive else 0.0


def test_triplet_reference_matches_statement_and_slips_differ():
    for emb, labels, margin in nb12._triplet_cases():
        want = nb12.triplet_loss(emb, labels, margin=margin, mining="all").item()
        assert want == pytest.approx(_brute_force(emb, labels, margin), rel=1e-5, abs=1e-6)
        assert sol.batch_all_triplet_loss(emb, labels, margin).item() == pytest.approx(want, rel=1e-5, abs=1e-6)
    emb, labels, margin = nb12._triplet_cases()[0]
    assert (labels == 3).sum() == 1                                      # a class of size 1
    want = nb12.triplet_loss(emb, labels, margin=margin, mining="all").item()
    for kwargs in (dict(zeros_too=True), dict(self_positive=True), dict(squared=True)):
        assert abs(nb12.triplet_variant(emb, labels, margin, **kwargs).item() - want) > 1e-3, kwargs
    assert nb12.triplet_loss(*nb12._triplet_cases()[-1][:2], margin=0.5, mining="all").item() == 0


def test_triplet_solution_and_stub(capsys):
    start = time.perf_counter()
    assert nb12.check_batch_all_triplet(sol.batch_all_triplet_loss)
    assert last_line(capsys) == "check_batch_all_triplet: correct"
    assert time.perf_counter() - start < 2
    assert not nb12.check_batch_all_triplet(stub)
    assert NOT_YET in last_line(capsys)


def _naive_sqrt(emb, labels, margin):
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1).sqrt()                 # infinite slope at d(a, a) = 0
    same = labels[:, None] == labels[None, :]
    valid = (same & ~torch.eye(len(labels), dtype=torch.bool))[:, :, None] & ~same[:, None, :]
    loss = F.relu(d[:, :, None] - d[:, None, :] + margin)[valid]
    return loss[loss > 0].mean() if (loss > 0).any() else emb.sum() * 0.0


def _no_guard(emb, labels, margin):
    same = labels[:, None] == labels[None, :]
    d = torch.cdist(emb, emb)
    loss = F.relu(d[:, :, None] - d[:, None, :] + margin)[(same & ~torch.eye(len(labels), dtype=torch.bool))
                                                          [:, :, None] & ~same[:, None, :]]
    return loss[loss > 0].mean()                                         # NaN when no loss is positive


@pytest.mark.parametrize("slip, expected", [
    (lambda e, y, m: nb12.triplet_variant(e, y, m, zeros_too=True), "ALL valid triplets, the zeros included"),
    (lambda e, y, m: nb12.triplet_variant(e, y, m, self_positive=True), "its own positive (a == p)"),
    (lambda e, y, m: nb12.triplet_variant(e, y, m, squared=True), "squared distances"),
    (lambda e, y, m: sol.batch_all_triplet_loss(e, y, m).item(), "returned a float, not a tensor"),
    (lambda e, y, m: sol.batch_all_triplet_loss(e.detach(), y, m), "no gradient reaches emb; hint: compute"),
    (lambda e, y, m: torch.tensor(sol.batch_all_triplet_loss(e, y, m).item(), requires_grad=True),
     "no gradient reaches emb"),
    (_no_guard, "NaN where no triplet has a positive loss"),
    (lambda e, y, m: _no_guard(e, y, m) if _no_guard(e, y, m).isfinite() else torch.zeros(()),
     "no gradient reaches emb; hint: return a zero connected to the graph"),          # a zero cut from the graph
    (_naive_sqrt, "the gradient is NaN"),
])
def test_triplet_slips(slip, expected, capsys):
    assert not nb12.check_batch_all_triplet(slip)
    line = last_line(capsys)
    assert expected in line and "hint:" in line, line


# ----------------------------------------------------------------------------- exercise 3: a new class
def make_ctx(*, new_centre=(0.0, 0.0, 4.0), spread=0.6, pool_spread=2.0, seed=0, dim=8, pool=40, test=90):
    """Old classes around 3 e0 and 3 e1, the new class 2 around ``new_centre`` (first 3 axes), Gaussian."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.zeros(3, dim)
    centres[0, 0] = centres[1, 1] = 3.0
    centres[2, :3] = torch.tensor(new_centre)
    test_y = torch.arange(3).repeat_interleave(test // 3)
    test_emb = centres[test_y] + spread * torch.randn(test, dim, generator=g)
    return {"classes": torch.tensor([0, 1]), "centroids": centres[:2].clone(),
            "pool": centres[2] + pool_spread * torch.randn(pool, dim, generator=g), "test_emb": test_emb,
            "test_y": test_y}


CTX = make_ctx()                                                          # 5 shots reach 0.9 (means 0.72 0.78 0.97)
NONE_CTX = make_ctx(new_centre=(1.5, 0.0, 2.0), spread=1.0, pool_spread=1.0)   # overlaps class 0: stays at 0.86


def _acc(ctx):
    return lambda n, seed: sol.new_class_accuracy(n, seed, ctx)


def test_new_class_answers_are_known():
    assert sol.smallest_shots(_acc(CTX)) == 5
    assert sol.smallest_shots(_acc(NONE_CTX)) == "none"
    for n, seed in ((1, 0), (5, 2), (20, 4)):
        assert sol.new_class_accuracy(n, seed, CTX) == nb12.new_class_reference(CTX, n, seed)


def test_new_class_solution_stub_and_placeholder(capsys):
    start = time.perf_counter()
    assert nb12.check_new_class(_acc(CTX), sol.smallest_shots(_acc(CTX)), CTX)
    assert last_line(capsys) == "check_new_class: correct"
    assert time.perf_counter() - start < 2
    assert nb12.check_new_class(_acc(NONE_CTX), "none", NONE_CTX)
    assert last_line(capsys) == "check_new_class: correct"
    assert nb12.check_new_class(lambda n, s: torch.tensor(sol.new_class_accuracy(n, s, CTX)), 5, CTX)
    assert last_line(capsys) == "check_new_class: correct"               # a one-value tensor is a number
    assert not nb12.check_new_class(stub, None, CTX)
    assert NOT_YET in last_line(capsys)
    assert not nb12.check_new_class(_acc(CTX), None, CTX)
    assert last_line(capsys) == "check_new_class: not yet - set answer first (it is still None)"


def _variant(ctx, *, draw=None, add_centroid=True, new_only=False):
    def accuracy(n, seed):
        pool = ctx["pool"]
        idx = draw(pool.shape[0], n, seed) if draw else \
            torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        classes, cents = ctx["classes"], ctx["centroids"]
        if add_centroid:
            classes, cents = torch.cat([classes, torch.tensor([2])]), torch.cat([cents, pool[idx].mean(0)[None]])
        dist = torch.cdist(ctx["test_emb"], cents)
        right = classes[dist.argmin(1)] == ctx["test_y"]
        return right[ctx["test_y"] == 2].float().mean().item() if new_only else right.float().mean().item()
    return accuracy


@pytest.mark.parametrize("slip, expected", [
    (_variant(CTX, draw=lambda p, n, seed: torch.randperm(p)[:n]), "a second call with the same seed"),
    (_variant(CTX, draw=lambda p, n, seed: torch.arange(n)), "other shots than the seeded draw"),
    (_variant(CTX, add_centroid=False), "no clip is predicted as class 2"),
    (_variant(CTX, new_only=True), "the new-class clips only"),
])
def test_new_class_slips(slip, expected, capsys):
    torch.manual_seed(0)
    assert not nb12.check_new_class(slip, 5, CTX)
    line = last_line(capsys)
    assert expected in line and "hint:" in line, line


@pytest.mark.parametrize("ctx, answer, expected", [
    (CTX, 2, "answer = 2 is too few"),
    (CTX, 10, "answer = 10 reaches 0.9, but a smaller n does too"),
    (CTX, 3, "answer = 3 is not one of"),
    (CTX, "none", "answer = 'none', but one of (1, 2, 5, 10, 20) reaches"),
    (NONE_CTX, 20, "answer = 20 is too few"),
    (CTX, "5", "got the text '5'"),
    (CTX, True, "got a bool"),
])
def test_new_class_wrong_answers(ctx, answer, expected, capsys):
    assert not nb12.check_new_class(_acc(ctx), answer, ctx)
    line = last_line(capsys)
    assert expected in line and "hint:" in line, line
    assert "0.97" not in line and "expected 5" not in line              # the answer is not given away


def test_new_class_refuses_a_bad_ctx():
    with pytest.raises(VtlibError, match="ctx"):
        nb12.check_new_class(_acc(CTX), 5, {"pool": CTX["pool"]})
    with pytest.raises(VtlibError, match="at least 20"):
        nb12.check_new_class(_acc(CTX), 5, {**CTX, "pool": CTX["pool"][:5]})
