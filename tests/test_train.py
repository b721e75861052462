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
from vtlib.train import (
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    mixup,
    no_decay_names,
    param_groups,
    save_checkpoint,
    warmup_cosine,
)

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

    no_weight_decay = ("pos_embed", "cls_token")

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
    ({"label_smoothing": 1.0}, "label_smoothing"), ({"device": "gpu0"}, "device"), ({"augment": 3}, "augment"),
    ({"compile": "yes"}, "compile")])
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


def test_no_decay_is_declared_not_guessed_from_names():
    class Plain(nn.Module):                              # no declaration: a 2-D "pos" table IS decayed now
        def __init__(self):
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(3, 4))
            self.token_proj = nn.Linear(4, 4)

    assert no_decay_names(Plain()) == {"token_proj.bias"}

    class Declared(Plain):
        no_weight_decay = ("pos_embed", "missing")       # absent / None names are skipped (optional tables)

    assert no_decay_names(nn.Sequential(Declared())) == {"0.pos_embed", "0.token_proj.bias"}

    class Wrong(Plain):
        no_weight_decay = ("token_proj",)                # a submodule, not a parameter

    with pytest.raises(VtlibError, match=r"^Wrong.no_weight_decay: expected names of the module's own parameters"):
        no_decay_names(Wrong())

    class NotATuple(Plain):
        no_weight_decay = "pos_embed"

    with pytest.raises(VtlibError, match=r"^NotATuple.no_weight_decay: expected a tuple of parameter names"):
        no_decay_names(NotATuple())


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


def test_compile_trains_through_the_compiled_forward_and_saves_the_module(monkeypatch, tmp_path):
    """TrainConfig(compile=True): the training forward goes through torch.compile(model); evaluation,
    the result and the checkpoint use the module itself, and a run resumes whatever ``compile`` says."""
    calls = []

    class Counting(nn.Module):                      # stands in for the compiled wrapper (a real compile
        def __init__(self, module):                 # takes about a minute on a CPU)
            super().__init__()
            self.module = module

        def forward(self, x):
            calls.append(self.module.training)
            return self.module(x)
    monkeypatch.setattr(torch, "compile", Counting)
    tr, va, _ = loaders()
    ck = str(tmp_path / "ck.pt")
    a = fit(new_model(), tr, va, cfg_(epochs=2, compile=True, checkpoint_path=ck))
    assert calls == [True] * 2 * len(tr)            # every training step, no evaluation
    monkeypatch.undo()
    b = fit(new_model(), tr, va, cfg_(epochs=2))
    assert no_seconds(a.history) == no_seconds(b.history) and weights_equal(a.model, b.model)
    assert isinstance(a.model, Tiny)
    again = fit(new_model(), tr, va, cfg_(epochs=2, checkpoint_path=ck))   # finished run, compile off
    assert weights_equal(again.model, a.model)


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


# ----------------------------------------------------------------------------- no decay, every model
def _model_builders() -> dict:
    """Every nn.Module class defined in vtlib.models -> builders of small instances (or the model it is part of)."""
    from vtlib.models import (
        cnn_temporal,
        convvit,
        fusion,
        resnet3d,
        timesformer,
        tubevit,
        videomae,
        vivit,
        vivit_fdp,
        vivit_fe,
        vivit_fsa,
        vtn,
    )
    from vtlib.tubes import tube_preset

    def gated():
        image = tubevit.TubeViT(tubes=tube_preset(28)[3:], dim=24, depth=1, heads=2, position="learned")
        return tubevit.GatedTubeViT(image_model=image, tubes=tube_preset(28)[:3], heads=2)

    small = dict(dim=24, depth=1, heads=2)
    return {
        "ViViT": [lambda p=p, q=q: vivit.ViViT(pool=p, position=q, **small)
                  for p in ("cls", "mean", "attn") for q in ("learned", "space", "spacetime", "sincos1d")],
        "ViViTFactorisedEncoder": [lambda: vivit_fe.ViViTFactorisedEncoder(dim=24, depth_spatial=1, heads=2),
                                   lambda: vivit_fe.vivit_avgpool(dim=24, depth_spatial=1, heads=2)],
        "ViViTFactorisedSelfAttention": [lambda: vivit_fsa.ViViTFactorisedSelfAttention(pool="attn", **small)],
        "ViViTFactorisedDotProduct": [lambda: vivit_fdp.ViViTFactorisedDotProduct(pool="attn", **small)],
        "TimeSformer": [lambda a=a: timesformer.TimeSformer(attention=a, time_init="normal", **small)
                        for a in timesformer.ATTENTIONS],
        "TubeViT": [lambda p=p, q=q: tubevit.TubeViT(position=p, pool=q, **small)
                    for p, q in (("learned", "attn"), ("fixed", "cls"), ("none", "mean"))],
        "GatedTubeViT": [gated],
        "VideoMAE": [lambda: videomae.VideoMAE(**small)],
        "VideoMAEClassifier": [lambda: videomae.VideoMAEClassifier(**small)],
        "ConvViT": [lambda: convvit.ConvViT(stem=(4, 8), **small)],
        "VTN": [lambda a=a: vtn.VTN(dim=24, depth=1, heads=2, attention=a) for a in ("window", "full")],
        "FrameTemporalCNN": [lambda: cnn_temporal.FrameTemporalCNN()],
        "R2Plus1dCNN": [lambda: cnn_temporal.R2Plus1dCNN()],
        "FusionCNN": [lambda f=f: fusion.FusionCNN(fusion=f) for f in ("single", "late", "early", "slow")],
        "ResNet3D": [lambda c=c: resnet3d.ResNet3D(conv=c, widths=(4, 8, 8, 8)) for c in ("3d", "2.5d", "acs")],
        # building blocks, covered by the models above
        "PooledEncoder": "ViViT", "FactorisedDotProductAttention": "ViViTFactorisedDotProduct",
        "FactorisedSelfAttentionBlock": "ViViTFactorisedSelfAttention", "Mixer": "TimeSformer",
        "FactorisedBlock": "TimeSformer", "CrossAttention": "GatedTubeViT", "VideoMAEEncoder": "VideoMAE",
        "VideoMAEDecoder": "VideoMAE", "ConvStem": "ConvViT", "FrameCNN": "VTN", "WindowBlock": "VTN",
        "FullBlock": "VTN", "ImageBackbone": "VTN (wraps any image model)", "Conv2Plus1d": "R2Plus1dCNN",
        "BasicBlock": "ResNet3D",
    }


def test_every_model_class_is_covered_by_the_no_decay_test():
    import inspect
    import pkgutil

    import vtlib.models

    classes = set()
    for info in pkgutil.iter_modules(vtlib.models.__path__):
        module = importlib.import_module(f"vtlib.models.{info.name}")
        classes |= {name for name, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, nn.Module) and c.__module__ == module.__name__}
    assert classes - set(_model_builders()) == set(), "add the new model to _model_builders"


@pytest.mark.parametrize("name", [n for n, b in _model_builders().items() if isinstance(b, list)])
def test_no_decay_exempts_every_table_token_and_query_but_decays_layer_weights(name):
    """Decayed = exactly the weights of Linear / Conv layers; everything else (norms, biases, position
    tables, CLS / mask tokens, pooling queries, gates) is exempt."""
    from vtlib.acs import ACSConv3d
    from vtlib.models.timesformer import TimeSformer
    from vtlib.models.videomae import VideoMAEDecoder
    from vtlib.models.vtn import VTN
    from vtlib.pooling import AttentionPool, ClsToken
    from vtlib.position import LearnedPosition, SpaceTimePosition
    from vtlib.tubes import TubePosition

    layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, ACSConv3d)
    tables = {LearnedPosition: ("pos",), SpaceTimePosition: ("space", "time"), TubePosition: ("pos",),
              ClsToken: ("token",), AttentionPool: ("query",), VideoMAEDecoder: ("mask_token",),
              TimeSformer: ("cls_token", "space_pos", "time_pos"), VTN: ("pos",)}
    found = set()
    for build in _model_builders()[name]:
        torch.manual_seed(0)
        model = build()
        decay, exempt = param_groups(model, 0.05)
        names = {id(p): n for n, p in model.named_parameters()}
        decayed = {names[id(p)] for p in decay["params"]}
        expected, special = set(), set()
        for prefix, m in model.named_modules():
            full = (prefix + ".") if prefix else ""
            if isinstance(m, layers):
                expected.add(full + "weight")
            for kind, attrs in tables.items():
                if isinstance(m, kind):
                    special |= {full + a for a in attrs if isinstance(getattr(m, a, None), nn.Parameter)}
        assert decayed == expected
        assert special <= {names[id(p)] for p in exempt["params"]}
        assert len(decay["params"]) + len(exempt["params"]) == sum(p.requires_grad for p in model.parameters())
        found |= special
    no_tables = ("FrameTemporalCNN", "R2Plus1dCNN", "FusionCNN", "ResNet3D",   # CNNs
                 "VideoMAEClassifier")                                         # sin-cos buffers, mean pooling
    assert found or name in no_tables


# ----------------------------------------------------------------------------- what fit refuses (no silent failures)
class AugmentedSet(torch.utils.data.Dataset):
    """Dataset-side augmentation with its own generator, like MedMNISTVideo(transform=...)."""

    def __init__(self, x, y, seed=0):
        self.x, self.labels = x, y
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return flip(self.x[i:i + 1], self.generator)[0], self.labels[i]


def test_validation_with_one_class_is_refused_for_auc_selection():
    tr, va, _ = loaders()
    x, _ = make_data(16)
    one_class = DataLoader(TensorDataset(x, torch.zeros(16, dtype=torch.long)), batch_size=8)
    steps = []
    with pytest.raises(VtlibError, match=r"val_loader: expected clips of at least two classes.*only class \[0\]"):
        fit(new_model(), tr, one_class, cfg_(epochs=1, augment=lambda x, g: steps.append(1) or x))
    assert steps == []                                         # refused before the first step
    fit(new_model(), tr, one_class, cfg_(epochs=1, select_metric="loss"))   # loss selection still works


def test_labels_outside_the_head_are_refused_before_training():
    x, y = make_data(64)
    tr = DataLoader(TensorDataset(x, y + 1), batch_size=16)            # labels 1..2 for a 2-way head
    _, va, _ = loaders()
    with pytest.raises(VtlibError, match=r"labels of train_loader: expected class indices in \[0, 1\]"):
        fit(new_model(), tr, va, cfg_(epochs=1))

    class NoLabels(torch.utils.data.Dataset):                       # labels only visible batch by batch
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return x[i], y[i] + 1
    with pytest.raises(VtlibError, match=r"y from train_loader: expected class indices in \[0, 1\]"):
        fit(new_model(), DataLoader(NoLabels(), batch_size=16), va, cfg_(epochs=1))

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(x, y))
    with pytest.raises(VtlibError, match="train_loader: expected a loader with a length"):
        fit(new_model(), DataLoader(Stream(), batch_size=16), va, cfg_(epochs=1))


def test_head_with_the_wrong_number_of_classes_is_refused_before_training():
    tr, va, _ = loaders()
    with pytest.raises(VtlibError, match="model: expected 2 logits for a binary task"):
        fit(new_model(classes=3), tr, va, cfg_(epochs=1))


def test_dataset_side_augmentation_is_seeded_and_resumes_exactly(tmp_path):
    x, y = make_data(96)
    _, va, te = loaders()

    def train_loader(crash_on=None):
        ds = AugmentedSet(x[:64], y[:64], seed=99)
        return Counting(ds, batch_size=16, shuffle=True, generator=torch.Generator(), crash_on=crash_on)

    kw = dict(epochs=4)
    full = fit(new_model(), train_loader(), va, cfg_(**kw), test_loader=te)
    again = fit(new_model(), train_loader(), va, cfg_(**kw), test_loader=te)
    assert no_seconds(full.history) == no_seconds(again.history) and weights_equal(full.model, again.model)
    shared = train_loader()                                          # two fits on one dataset agree too
    a, b = (fit(new_model(), shared, va, cfg_(**kw)) for _ in range(2))
    assert weights_equal(a.model, b.model) and weights_equal(a.model, full.model)

    path = str(tmp_path / "run.pt")
    with pytest.raises(KeyboardInterrupt):
        fit(new_model(), train_loader(crash_on=3), va, cfg_(checkpoint_path=path, **kw), test_loader=te)
    resumed = fit(new_model(seed=7), train_loader(), va, cfg_(checkpoint_path=path, **kw), test_loader=te)
    assert no_seconds(resumed.history) == no_seconds(full.history) and weights_equal(resumed.model, full.model)


class TinyPath(Tiny):
    def __init__(self, drop_path=0.1):
        super().__init__()
        self.drop_path = DropPath(drop_path)


def test_checkpoint_of_another_model_with_the_same_shapes_is_refused(tmp_path):
    tr, va, _ = loaders()
    path = str(tmp_path / "run.pt")
    torch.manual_seed(0)
    fit(TinyPath(0.1), tr, va, cfg_(epochs=1, checkpoint_path=path))
    torch.manual_seed(0)
    with pytest.raises(VtlibError, match=r"checkpoint_path: expected a checkpoint of this model.*drop_path.*p"):
        fit(TinyPath(0.3), tr, va, cfg_(epochs=2, checkpoint_path=path))


def test_load_pretrained_refuses_other_heads(tmp_path):
    from vtlib.checkpoint import save_weights
    from vtlib.models.videomae import VideoMAE
    from vtlib.pretrain import load_pretrained

    kw = dict(video_shape=(4, 8, 8), tubelet=(2, 4, 4), dim=16, depth=1, heads=2, decoder_dim=8, decoder_depth=1,
              decoder_heads=2)
    path = tmp_path / "mae.pt"
    save_weights(VideoMAE(**kw), path)
    assert isinstance(load_pretrained(path, **kw), VideoMAE)
    with pytest.raises(VtlibError, match=r"expected a checkpoint of this model.*heads: 2 vs 4"):
        load_pretrained(path, **{**kw, "heads": 4})
    torch.save(VideoMAE(**kw).state_dict(), path)                      # a plain state_dict: no fingerprint
    with pytest.raises(VtlibError, match="plain state_dict"):
        load_pretrained(path, **kw)


@pytest.mark.parametrize("kind", ["truncated", "random bytes", "plain state_dict", "a list"])
def test_corrupt_checkpoints_name_the_file_and_a_fix(tmp_path, kind):
    tr, va, _ = loaders()
    path = tmp_path / "run.pt"
    if kind == "truncated":
        fit(new_model(), tr, va, cfg_(epochs=1, checkpoint_path=str(path)))
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "plain state_dict":
        torch.save(new_model().state_dict(), path)
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(VtlibError) as err:
        fit(new_model(), tr, va, cfg_(epochs=2, checkpoint_path=str(path)))
    msg = str(err.value)
    assert str(path) in msg and "Fix:" in msg or "load it with model.load_state_dict" in msg


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_best_weights():
    from vtlib.train import TrainingDiverged

    tr, va, _ = loaders()
    model = new_model()
    snapshots = []

    class NaNInEpoch2(DataLoader):
        def __iter__(self):
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
            for x, y in super().__iter__():
                yield (x * float("nan") if len(snapshots) == 2 else x), y

    bad = NaNInEpoch2(tr.dataset, batch_size=16, shuffle=True, generator=torch.Generator())
    with pytest.raises(TrainingDiverged, match=r"loss: expected finite training losses, got NaN or inf in epoch 2"
                       r".*weights of epoch 1") as err:
        fit(model, bad, va, cfg_(epochs=3))
    assert err.value.result.best_epoch == 1 and len(err.value.result.history) == 1
    state = model.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert all(torch.equal(state[k], snapshots[1][k]) for k in state)     # the weights after epoch 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", [n for n, b in _model_builders().items() if isinstance(b, list)
                                  and n not in ("VideoMAE",)])    # VideoMAE pre-training takes (x, mask)
def test_every_model_accepts_any_float_clip(name, dtype):
    """A float64 (NumPy-made), float16 or bfloat16 clip is cast at the model's entry, not fed to a conv
    of another dtype; the logits match the float32 clip's up to the input's own rounding."""
    torch.manual_seed(0)
    model = _model_builders()[name][0]().eval()
    thw = tuple(getattr(model, "video_shape", None) or (getattr(model, "frames", 28), 28, 28))
    shape = (2, 1, *thw)
    x32 = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    x = x32.to(dtype)
    with torch.no_grad():
        want = model(x.float())
        got = model(x)
    assert got.dtype == torch.float32 and torch.equal(got, want)


@pytest.mark.parametrize("name", [n for n, b in _model_builders().items() if isinstance(b, list)
                                  and n not in ("VideoMAE",)])
def test_every_model_refuses_an_empty_batch_clearly(name):
    model = _model_builders()[name][0]().eval()
    thw = tuple(getattr(model, "video_shape", None) or (getattr(model, "frames", 28), 28, 28))
    with pytest.raises(VtlibError, match=r"^x: expected at least one clip"):
        model(torch.zeros(0, 1, *thw))


def test_mean_pool_of_no_tokens_is_an_error_not_nan():
    from vtlib.pooling import MeanPool

    with pytest.raises(VtlibError, match="at least one token"):
        MeanPool()(torch.zeros(2, 0, 8))
