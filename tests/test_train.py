"""Tests for vtlib.train: schedule, regularisers, selection, determinism, checkpoints, resume, Accelerate."""
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.block import DropPath
from vtlib.errors import VtlibError
from vtlib.train import TrainConfig, evaluate, fit, load_checkpoint, mixup, param_groups, save_checkpoint, warmup_cosine

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- fixtures
def make_data(n=64, seed=0, classes=2):
    """Videos (n, 1, 4, 8, 8) of noise; the label shifts the brightness of the first two frames."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g)
    x = torch.randn(n, 1, 4, 8, 8, generator=g)
    x[:, :, :2] += 0.5 * (y - (classes - 1) / 2).view(-1, 1, 1, 1, 1)
    return x, y


class Tiny(nn.Module):
    """Flatten + LayerNorm + dropout + drop-path branch + linear head; has a pos_embed and a cls_token."""

    def __init__(self, classes=2):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 256))
        self.cls_token = nn.Parameter(torch.zeros(1, 4))
        self.norm = nn.LayerNorm(256)
        self.branch = nn.Linear(256, 256)
        self.drop = nn.Dropout(0.1)
        self.drop_path = DropPath(0.1)
        self.head = nn.Linear(256, classes)

    def forward(self, x):
        h = self.norm(x.flatten(1) + self.pos_embed)
        h = h + self.drop_path(self.branch(h))
        return self.head(self.drop(h))


def loaders(batch=16, generator=True, classes=2):
    x, y = make_data(96, classes=classes)
    gen = torch.Generator() if generator else None
    tr = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=batch, shuffle=True, generator=gen)
    va = DataLoader(TensorDataset(x[64:80], y[64:80]), batch_size=batch)
    te = DataLoader(TensorDataset(x[80:], y[80:]), batch_size=batch)
    return tr, va, te


def new_model(seed=1, classes=2):
    torch.manual_seed(seed)
    return Tiny(classes)


def flip(x, g):
    """A random augmentation: flip each video left-right with probability 1/2 (draws on the CPU)."""
    mask = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device).view(-1, 1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


def cfg_(**kw):
    base = dict(epochs=3, lr=5e-3, warmup_epochs=0.5, progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


def no_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def weights_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- config and helpers
@pytest.mark.parametrize("kw, name", [
    ({"epochs": 0}, "epochs"), ({"task": "regression"}, "task"), ({"select_metric": "f1"}, "select_metric"),
    ({"lr": 0.0}, "lr"), ({"min_lr_ratio": 2.0}, "min_lr_ratio"), ({"grad_clip": -1.0}, "grad_clip"),
    ({"label_smoothing": 1.0}, "label_smoothing"), ({"device": "gpu0"}, "device"), ({"augment": 3}, "augment")])
def test_config_validation(kw, name):
    with pytest.raises(VtlibError, match=f"^{name}: expected"):
        TrainConfig(**kw)


def test_warmup_cosine_shape():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=20, min_lr_ratio=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # linear warm-up reaches the peak
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))          # then strictly decreasing
    assert lrs[-1] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)       # min_lr_ratio at total_steps
    with pytest.raises(VtlibError, match="warmup_steps"):
        warmup_cosine(opt, 30, 20)
    with pytest.raises(VtlibError, match="total_steps"):
        warmup_cosine(opt, 0, 0)


def test_param_groups_no_decay_on_bias_norm_tokens():
    model = Tiny()
    decay, no_decay = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in decay["params"]) == ["branch.weight", "head.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "branch.bias", "cls_token", "head.bias", "norm.bias", "norm.weight", "pos_embed"]
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_mixup_is_a_convex_pair_mix():
    x = torch.randn(6, 1, 4, 8, 8)
    y = F.one_hot(torch.arange(6), 6).float()  # distinct labels: lam and the partner are readable from y
    xm, ym = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    assert xm.shape == x.shape and ym.shape == y.shape
    torch.testing.assert_close(ym.sum(1), torch.ones(6))
    lam = ym.max().item()
    for i in range(6):
        j = int(torch.argsort(ym[i])[-2]) if ym[i, i] < 1 else i  # partner of sample i
        torch.testing.assert_close(xm[i], ym[i, i] * x[i] + (1 - ym[i, i]) * x[j])
    assert 0 <= lam <= 1
    xm2, ym2 = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    assert torch.equal(xm, xm2) and torch.equal(ym, ym2)  # same generator seed, same mix
    with pytest.raises(VtlibError, match="alpha"):
        mixup(x, y, 0.0, torch.Generator())
    with pytest.raises(VtlibError, match="^x: expected"):
        mixup(x[0], y, 0.2, torch.Generator())
    with pytest.raises(VtlibError, match="y_onehot"):
        mixup(x, torch.arange(6), 0.2, torch.Generator())


def test_evaluate_matches_metrics():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    out = evaluate(model, loader, "binary-class", device="cpu")
    logits = model(x).detach()
    assert out["scores"].shape == (32, 2) and np.array_equal(out["labels"], y.numpy())
    assert out["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    from vtlib.metrics import evaluate_scores
    ref = evaluate_scores(y, logits.softmax(-1), "binary-class")
    assert (out["auc"], out["acc"]) == pytest.approx((ref.auc, ref.acc))
    with pytest.raises(VtlibError, match="task"):
        evaluate(model, loader, "multi-label")


# ----------------------------------------------------------------------------- fit
class Counting(DataLoader):
    """A DataLoader that counts how often it is iterated and can 'crash' on a given iteration."""

    def __init__(self, *a, crash_on=None, **kw):
        super().__init__(*a, **kw)
        self.iterations, self.crash_on = 0, crash_on

    def __iter__(self):
        self.iterations += 1
        if self.iterations == self.crash_on:
            raise KeyboardInterrupt("simulated crash")
        return super().__iter__()


def test_fit_learns_and_tests_once():
    tr, va, te = loaders()
    te = Counting(te.dataset, batch_size=16)
    res = fit(new_model(), tr, va, cfg_(epochs=4, lr=1e-2), test_loader=te)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert set(res.history[0]) == {"epoch", "train_loss", "lr", "val_loss", "val_auc", "val_acc", "seconds"}
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.best_val["auc"] >= 0.9 and te.iterations == 1
    assert res.best_val["auc"] == max(h["val_auc"] for h in res.history)
    again = evaluate(res.model, te, "binary-class")  # result.test was computed with the best weights
    assert res.test["auc"] == again["auc"] and res.test["loss"] == pytest.approx(again["loss"])


@pytest.mark.parametrize("metric", ["auc", "acc", "loss"])
def test_selection_keeps_a_true_copy_of_the_best_weights(metric):
    """Validation labels are correct after epoch 1 and inverted afterwards, so epoch 1 must win."""
    tr, va, _ = loaders()
    model = new_model()
    snapshots = []

    class FlipAfterFirst(DataLoader):
        def __iter__(self):
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
            for x, y in super().__iter__():
                yield x, (y if len(snapshots) == 1 else 1 - y)

    val = FlipAfterFirst(va.dataset, batch_size=16)
    res = fit(model, tr, val, cfg_(epochs=3, lr=2e-2, select_metric=metric))
    assert res.best_epoch == 1 and res.best_val[metric] == res.history[0][f"val_{metric}"]
    best = res.model.state_dict()
    assert all(torch.equal(best[k], snapshots[0][k]) for k in best)       # epoch-1 weights, restored
    assert not all(torch.equal(best[k], snapshots[-1][k]) for k in best)  # not the last epoch's


@pytest.mark.parametrize("generator", [True, False])
def test_same_seed_same_history_and_weights(generator):
    kw = dict(mixup_alpha=0.3, label_smoothing=0.1, augment=flip)
    tr, va, _ = loaders(generator=generator)
    a = fit(new_model(), tr, va, cfg_(**kw))
    b = fit(new_model(), tr, va, cfg_(**kw))
    c = fit(new_model(), tr, va, cfg_(seed=1, **kw))
    assert no_seconds(a.history) == no_seconds(b.history) and weights_equal(a.model, b.model)
    assert no_seconds(a.history) != no_seconds(c.history)


def test_multiclass_with_mixup_runs():
    tr, va, te = loaders(classes=3)
    res = fit(new_model(classes=3), tr, va, cfg_(epochs=2, task="multi-class", mixup_alpha=0.2,
                                                 select_metric="acc"), test_loader=te)
    assert res.test["scores"].shape == (16, 3) and 0 <= res.test["acc"] <= 1


def test_augment_sees_every_training_batch_only():
    calls = []
    tr, va, _ = loaders()
    fit(new_model(), tr, va, cfg_(epochs=2, augment=lambda x, g: calls.append(x.shape) or x))
    assert calls == [(16, 1, 4, 8, 8)] * 8  # 4 steps x 2 epochs, never on validation


def test_bad_batch_names_the_loader():
    x, y = make_data(16)
    bad = DataLoader(TensorDataset(x[:, 0], y), batch_size=8)  # (B, T, H, W): channel axis missing
    _, va, _ = loaders()
    with pytest.raises(VtlibError, match="x from train_loader: expected a 5-D tensor"):
        fit(new_model(), bad, va, cfg_(epochs=1))


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, str(path))
    real_save = torch.save

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, str(path))
    monkeypatch.setattr(torch, "save", real_save)
    ck = load_checkpoint(str(path))
    assert ck["epoch"] == 1 and torch.equal(ck["w"], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]  # no temp file left behind


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    kw = dict(epochs=4, mixup_alpha=0.3, label_smoothing=0.1, augment=flip)
    tr, va, te = loaders()
    full = fit(new_model(), tr, va, cfg_(**kw), test_loader=te)

    path = str(tmp_path / "run.pt")
    tr_crash = Counting(tr.dataset, batch_size=16, shuffle=True, generator=torch.Generator(), crash_on=3)
    with pytest.raises(KeyboardInterrupt):
        fit(new_model(), tr_crash, va, cfg_(checkpoint_path=path, **kw), test_loader=te)
    assert load_checkpoint(path)["epoch"] == 2
    torch.manual_seed(123)  # disturb every global RNG: the checkpoint must restore them
    np.random.seed(123)
    tr_new, _, _ = loaders()  # a fresh loader and a differently initialised model
    resumed = fit(new_model(seed=7), tr_new, va, cfg_(checkpoint_path=path, **kw), test_loader=te)

    assert no_seconds(resumed.history) == no_seconds(full.history)
    assert resumed.best_epoch == full.best_epoch and resumed.best_val == full.best_val
    assert weights_equal(resumed.model, full.model)
    assert resumed.test["loss"] == full.test["loss"]
    # a finished checkpoint just reloads: no training, same answer
    again = fit(new_model(seed=9), tr, va, cfg_(checkpoint_path=path, **kw))
    assert weights_equal(again.model, full.model) and no_seconds(again.history) == no_seconds(full.history)
    with pytest.raises(VtlibError, match=r"checkpoint_path: .*\['lr'\]"):
        fit(new_model(), tr, va, cfg_(checkpoint_path=path, **{**kw, "lr": 1.0}))


# ----------------------------------------------------------------------------- Accelerate
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed")
def test_accelerate_two_cpu_processes(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(REPO / "tests" / "accelerate_script.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert (r0["rank"], r1["rank"]) == (0, 1) and r0["world_size"] == r1["world_size"] == 2
    assert "MULTI_CPU" in r0["distributed_type"]
    assert r0["best_val"] == r1["best_val"] and r0["history"] == r1["history"]  # metrics on gathered preds
    assert r0["bias"] == r1["bias"]  # DDP kept the replicas identical
    assert r0["n_val"] == r1["n_val"] == 30  # gather_for_metrics dropped the padding duplicates
    assert r0["saves"] == [1, 2] and r1["saves"] == []  # only the main process writes checkpoints
    assert load_checkpoint(str(tmp_path / "ckpt.pt"))["epoch"] == 2
