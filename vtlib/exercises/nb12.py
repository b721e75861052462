"""Exercise checks for notebook 12 (transfer and metric learning).

Each check calls the learner's function on fixed inputs, compares the result with a vtlib
reference, prints ONE fixed line ("<check>: correct" or "<check>: not yet - <problem>; hint: ...")
and returns a bool. A function that still raises ``NotImplementedError`` gets the fixed
"write the function first" line.

- ``check_layerwise_lr``: AdamW parameter groups with layer-wise learning-rate decay (Bao, Dong,
  Piao & Wei, "BEiT", ICLR 2022, arXiv 2106.08254; VideoMAE fine-tunes with decay 0.75) for a
  ``VideoMAEClassifier``, some of it frozen by ``vtlib.transfer.Finetune``.
- ``check_batch_all_triplet``: the batch-all triplet loss, against ``vtlib.metric.triplet_loss``
  (mining="all"), its value and its gradient.
- ``check_new_class``: a small experiment: nearest-centroid accuracy after adding a new class from
  n examples, and the fewest examples that reach 90 % accuracy.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from vtlib.errors import bad_arg
from vtlib.exercises.common import as_number, call, placeholder, verdict
from vtlib.metric import nearest_centroid, triplet_loss
from vtlib.models.videomae import VideoMAEClassifier
from vtlib.transfer import Finetune

SHOTS = (1, 2, 5, 10, 20)     # exercise 3: the numbers of examples of the new class tried
SEEDS = range(5)              # ... each averaged over these draws
TARGET = 0.9                  # ... the accuracy to reach
ZERO_HINT = "return a zero connected to the graph, e.g. emb.sum() * 0, when no triplet is left"   # exercise 2
FORM = "a list of dicts {'params': [parameters], 'lr': number}"     # exercise 1: AdamW's parameter groups


# ----------------------------------------------------------------------------- exercise 1: layer-wise lr decay
def layerwise_reference(model: VideoMAEClassifier, base_lr: float, decay: float) -> dict[str, float]:
    """{parameter name: lr} for the trainable parameters: tail base_lr, block i base_lr * decay ** (L - i),
    tokenizer (everything before block 0) base_lr * decay ** (L + 1)."""
    blocks = model.encoder.transformer.blocks
    depth = len(blocks)
    block_of = {id(p): i for i, b in enumerate(blocks) for p in b.parameters()}
    out, after = {}, False
    for name, p in model.named_parameters():
        after = after or id(p) in block_of
        exponent = depth - block_of[id(p)] if id(p) in block_of else (0 if after else depth + 1)
        if p.requires_grad:
            out[name] = base_lr * decay ** exponent
    return out


def _lr_models() -> list[tuple[str, VideoMAEClassifier]]:
    torch.manual_seed(0)
    partial = VideoMAEClassifier(dim=16, depth=4, heads=2)
    Finetune(partial, approach="partial", blocks=2)              # freezes the tokenizer and blocks 0, 1
    return [("a depth-2 model", VideoMAEClassifier(dim=16, depth=2, heads=2)),
            ("a depth-4 model with final_norm=True", VideoMAEClassifier(dim=16, depth=4, heads=2, final_norm=True)),
            ("a depth-4 model frozen by Finetune(approach='partial', blocks=2)", partial)]


def _group_lrs(groups: Any, model) -> tuple[dict[str, list[float]], str | None]:
    """{parameter name: [lr of every group that holds it]}, or the problem with the groups' form."""
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        return {}, f"expected {FORM}, got {type(groups).__name__}"
    names = {id(p): n for n, p in model.named_parameters()}
    lrs: dict[str, list[float]] = {}
    for k, g in enumerate(groups):
        if not isinstance(g.get("params"), (list, tuple)):
            return {}, (f"group {k}: 'params' should be a list of parameters, got {type(g.get('params')).__name__} "
                        "(a generator such as model.parameters() is used up after one pass: wrap it in list())")
        lr, problem = as_number(g.get("lr"), f"group {k}'s 'lr'")
        if problem:
            return {}, problem
        for p in g["params"]:
            if id(p) not in names:
                return {}, f"group {k} holds a {type(p).__name__} that is not a parameter of the model"
            lrs.setdefault(names[id(p)], []).append(lr)
    return lrs, None


def _lr_problem(lrs: dict[str, list[float]], want: dict[str, float], model,
                decay: float) -> tuple[str | None, str | None]:
    """(problem, its own hint) for one model and one (base_lr, decay), or (None, None)."""
    twice = [n for n, v in lrs.items() if len(v) > 1]
    if twice:
        return (f"{twice[0]} appears {len(lrs[twice[0]])} times in the groups (AdamW refuses that)",
                "collect the parameters in one pass over model.named_parameters(), each into exactly one group")
    frozen = [n for n in lrs if n not in want]
    if frozen:
        return (f"{frozen[0]} is frozen (requires_grad=False) but is in a group",
                "skip parameters whose requires_grad is False: Finetune froze them and they must not be trained")
    missing = [n for n in want if n not in lrs]
    if missing:
        where = ("the tokenizer (model.encoder.embed) is in no group" if missing[0].startswith("encoder.embed.")
                 else f"{missing[0]} is in no group")
        return (where, "every trainable parameter goes into exactly one group: the tokenizer and anything "
                       "before block 0 one layer below block 0, anything after the last block in the tail")
    rel = {n: lrs[n][0] / want[n] for n in want}
    if all(abs(r - 1) <= 1e-9 for r in rel.values()):
        return None, None
    depth = len(model.encoder.transformer.blocks)
    tail = [n for n in want if not n.startswith(("encoder.embed.", "encoder.transformer."))]
    decayed = [n for n in tail if abs(rel[n] - decay) <= 1e-9]
    if decayed:
        return (f"{decayed[0]} got lr {lrs[decayed[0]][0]:.4g}, base_lr * decay: the tail was decayed too",
                "the tail (fc_norm, head) is the layer nearest the loss: it keeps base_lr; block i gets "
                "base_lr * decay ** (L - i), so the last block is the first one decayed")
    first, last = (f"encoder.transformer.blocks.{i}.norm1.weight" for i in (0, depth - 1))
    if first in lrs and last in lrs and lrs[first][0] > lrs[last][0]:
        return (f"block 0 got lr {lrs[first][0]:.4g}, more than block {depth - 1}'s {lrs[last][0]:.4g}: "
                "the order is reversed",
                "decay grows with the distance from the loss: block i (0-based) gets base_lr * decay ** (L - i), "
                "so block 0, the farthest, gets the smallest lr")
    wrong = next(n for n in want if abs(rel[n] - 1) > 1e-9)
    return (f"{wrong} got lr {lrs[wrong][0]:.4g}, expected {want[wrong]:.4g}",
            "layer 0 = tokenizer, layer i + 1 = block i, layer L + 1 = tail; lr = base_lr * decay ** (L + 1 - layer)")


def check_layerwise_lr(fn: Callable) -> bool:
    """``fn(model, base_lr, decay) -> [{"params": [...], "lr": ...}, ...]`` AdamW groups with layer-wise decay,
    trainable parameters only, each exactly once."""
    name = "check_layerwise_lr"
    for label, model in _lr_models():
        for base_lr, decay in ((1e-3, 0.75), (2e-3, 0.5)):
            what = f"fn({label}, {base_lr}, {decay})"
            want = layerwise_reference(model, base_lr, decay)           # before fn can touch requires_grad
            groups, problem = call(fn, (model, base_lr, decay), what)
            lrs, form = _group_lrs(groups, model) if problem is None else ({}, None)
            if problem or form:
                return verdict(name, problem or f"{what}: {form}", f"return {FORM}")
            problem, hint = _lr_problem(lrs, want, model, decay)
            if problem:
                return verdict(name, f"{what}: {problem}", hint)
    return verdict(name, None)


# ----------------------------------------------------------------------------- exercise 2: batch-all triplet loss
def _triplet_cases() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(emb, labels, margin): random unit embeddings with a class of size 1, and a batch with no positive loss."""
    g = torch.Generator().manual_seed(12)
    cases = [(F.normalize(torch.randn(len(y), 4, generator=g), dim=1), torch.tensor(y), m)
             for y, m in (((0, 0, 0, 1, 1, 2, 2, 2, 3), 0.5), ((0, 1, 1, 2, 2, 2, 0, 3, 0), 1.0),
                          ((1, 1, 2, 0, 0, 2, 2), 0.2))]
    y = torch.tensor((0, 0, 1, 1, 1, 2))
    cases.append((10 * F.one_hot(y, 4).float() + 0.01 * torch.randn(6, 4, generator=g), y, 0.5))
    return cases


def triplet_variant(emb, labels, margin, *, squared=False, self_positive=False, zeros_too=False) -> torch.Tensor:
    """The batch-all loss with one typical slip switched on (used to recognise it)."""
    d = torch.cdist(emb, emb) ** (2 if squared else 1)
    same = labels[:, None] == labels[None, :]
    pos = same if self_positive else same & ~torch.eye(len(labels), dtype=torch.bool)
    loss = F.relu(d[:, :, None] - d[:, None, :] + margin)[pos[:, :, None] & ~same[:, None, :]]
    loss = loss if zeros_too else loss[loss > 0]
    return loss.mean() if loss.numel() else emb.sum() * 0.0


def check_batch_all_triplet(fn: Callable) -> bool:
    """``fn(emb (B, D), labels (B,), margin) -> scalar tensor``: mean over the valid triplets with a positive
    loss relu(d(a, p) - d(a, n) + margin), Euclidean distances, 0 if there are none; gradients must flow."""
    name = "check_batch_all_triplet"
    hint = ("d = torch.cdist(emb, emb); mask the (a, p, n) triplets with a != p, same label for p, another "
            "for n; keep the losses > 0 and average them (0 if none)")
    for emb, labels, margin in _triplet_cases():
        what = f"fn(emb {tuple(emb.shape)}, labels {labels.tolist()}, margin={margin})"
        x = emb.clone().requires_grad_(True)
        got, problem = call(fn, (x, labels.clone(), margin), what)
        if problem:
            return verdict(name, problem, hint)
        if not isinstance(got, torch.Tensor):
            return verdict(name, f"{what} returned a {type(got).__name__}, not a tensor",
                           "keep the loss a tensor (no .item(), float() or torch.tensor(...)) so backward() trains")
        if got.numel() != 1:
            return verdict(name, f"{what}: expected one number (a 0-dim tensor), got shape {tuple(got.shape)}",
                           "average the triplet losses into one number")
        ref_x = emb.clone().requires_grad_(True)
        want = triplet_loss(ref_x, labels, margin=margin, mining="all")
        value = got.detach().float().reshape(())
        if torch.isnan(value) and want.item() == 0:
            return verdict(name, f"{what} gave NaN where no triplet has a positive loss: the mean of an empty "
                                 "tensor is NaN", ZERO_HINT)
        if not torch.isclose(value, want.detach(), rtol=1e-5, atol=1e-6):
            slips = [(dict(zeros_too=True), "you averaged over ALL valid triplets, the zeros included",
                      "average only over the triplets whose loss is > 0, so the many easy ones do not dilute it"),
                     (dict(self_positive=True), "the anchor was used as its own positive (a == p)",
                      "exclude the diagonal from the positives: same label AND a != p"),
                     (dict(squared=True), "those are squared distances",
                      "use Euclidean distances, torch.cdist(emb, emb), not their squares")]
            for kwargs, why, slip_hint in slips:
                if torch.isclose(value, triplet_variant(emb, labels, margin, **kwargs), rtol=1e-5, atol=1e-6):
                    return verdict(name, f"{what} = {value.item():.4f}, expected {want.item():.4f}: {why}", slip_hint)
            return verdict(name, f"{what} = {value.item():.4f}, expected {want.item():.4f}", hint)
        grad = torch.autograd.grad(got.sum(), x, allow_unused=True)[0] if got.requires_grad else None
        if grad is None:
            return verdict(name, f"{what}: no gradient reaches emb", ZERO_HINT if want == 0 else
                           "compute with torch operations on emb itself (no .item(), .detach() or torch.tensor)")
        want.backward()
        if torch.isnan(grad).any():
            return verdict(name, f"{what}: the gradient is NaN: sqrt has an infinite slope at d(a, a) = 0",
                           "use torch.cdist (or clamp before the square root) for the distances")
        if not torch.allclose(grad, ref_x.grad, rtol=1e-4, atol=1e-5):
            return verdict(name, f"{what}: the value is right but the gradient is not", hint)
    return verdict(name, None, hint)


# ----------------------------------------------------------------------------- exercise 3: a new class
def new_class_reference(ctx: dict, n: int, seed: int, *, add_centroid: bool = True,
                        new_only: bool = False) -> float:
    """Nearest-centroid accuracy on ctx's test clips after adding class 2 from n pool shots
    (``add_centroid`` / ``new_only``: the typical slips, used to recognise them)."""
    pool = ctx["pool"]
    idx = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    classes, centroids = ctx["classes"], ctx["centroids"]
    if add_centroid:
        classes = torch.cat([classes, torch.tensor([2])])
        centroids = torch.cat([centroids, pool[idx].mean(0, keepdim=True)])
    pred, _ = nearest_centroid(ctx["test_emb"], classes, centroids)
    keep = ctx["test_y"] == 2 if new_only else torch.ones_like(ctx["test_y"], dtype=torch.bool)
    return (pred == ctx["test_y"])[keep].float().mean().item()


def check_new_class(fn: Callable, answer: Any, ctx: dict) -> bool:
    """``fn(n, seed) -> accuracy`` over all test clips after adding class 2 with the mean of n pool shots drawn
    with ``torch.randperm(P, generator=torch.Generator().manual_seed(seed))[:n]``; ``answer``: the smallest n in
    SHOTS whose accuracy averaged over SEEDS is at least TARGET, or "none"."""
    name = "check_new_class"
    hint = ("draw idx = torch.randperm(P, generator=torch.Generator().manual_seed(seed))[:n], append class 2 "
            "with centroid pool[idx].mean(0), predict with vtlib.metric.nearest_centroid, score all test clips")
    keys = ("classes", "centroids", "pool", "test_emb", "test_y")
    if not isinstance(ctx, dict) or any(k not in ctx for k in keys) or len(ctx["pool"]) < max(SHOTS):
        raise bad_arg("ctx", f"a dict with keys {keys} and a pool of at least {max(SHOTS)} examples",
                      type(ctx).__name__ if not isinstance(ctx, dict) else sorted(ctx), "pass the notebook's ctx")
    for n, seed in ((1, 0), (2, 3), (5, 1), (20, 4)):
        what = f"fn({n}, {seed})"
        got, problem = call(fn, (n, seed), what)
        value, problem = (None, problem) if problem else as_number(got, what)
        if problem:
            return verdict(name, problem, hint)
        want = new_class_reference(ctx, n, seed)
        if abs(value - want) <= 1e-6:
            continue
        again, _ = call(fn, (n, seed), what)
        if abs(value - new_class_reference(ctx, n, seed, add_centroid=False)) <= 1e-6:
            why, slip = "no clip is predicted as class 2", "append class 2 and its centroid before classifying"
        elif abs(value - new_class_reference(ctx, n, seed, new_only=True)) <= 1e-6:
            why, slip = "that is the accuracy on the new-class clips only", "score all M test clips, old classes too"
        elif again is None or as_number(again, what)[0] != value:
            why, slip = "a second call with the same seed gives another value", hint
        else:
            why, slip = "other shots than the seeded draw", hint
        return verdict(name, f"{what} = {value:.4f}, expected {want:.4f}: {why}", slip)
    means = {n: sum(new_class_reference(ctx, n, s) for s in SEEDS) / len(SEEDS) for n in SHOTS}
    expected = next((n for n in SHOTS if means[n] >= TARGET), "none")
    if answer is None:
        return verdict(name, placeholder("answer"))
    answer_hint = f"average fn(n, seed) over the seeds for each n; the smallest n with a mean >= {TARGET} wins"
    if isinstance(answer, str) and answer.strip().lower() == "none":
        if expected == "none":
            return verdict(name, None, hint)
        return verdict(name, f"answer = 'none', but one of {SHOTS} reaches a mean of {TARGET}", answer_hint)
    value, problem = as_number(answer, "answer")
    if problem:
        return verdict(name, f"{problem} (an n from {SHOTS}, or 'none')", answer_hint)
    if value != expected:
        if value not in SHOTS:
            why = f"answer = {value:g} is not one of {SHOTS}"
        elif means[value] < TARGET:
            why = f"answer = {value:g} is too few: its mean accuracy over seeds 0-4 is below {TARGET}"
        else:
            why = f"answer = {value:g} reaches {TARGET}, but a smaller n does too"
        return verdict(name, why, answer_hint)
    return verdict(name, None, hint)
