"""The one training loop every notebook uses: AdamW, warm-up + cosine, regularisers, selection, resume.

Data: a DataLoader yielding ``(x, y)`` with x (B, C, T, H, W) float32 and y (B,) int64.
Model: any ``nn.Module`` mapping x to logits (B, num_classes).

What ``fit`` does, in order, once per epoch: train (AdamW, per-step warm-up + cosine learning rate,
cross-entropy with label smoothing, optional mixup and augmentation, gradient clipping), evaluate
on the VALIDATION loader, keep a true copy (``copy.deepcopy``) of the weights if the validation
metric improved, and write a checkpoint. The TEST loader is evaluated once, at the very end, with
the best weights: choosing anything by test numbers would make them optimistic.

Regularisers of ViViT Table 4: label smoothing and mixup live here; stochastic depth is
``vtlib.block.DropPath``, which a model puts on each residual branch (``fit`` switches it on with
``model.train()`` and off with ``model.eval()``).

Reproducibility: ``fit`` seeds Python, NumPy and torch with ``cfg.seed`` and re-seeds the train
loader's generator (``DataLoader(generator=...)`` or its sampler's), so the same seed gives the same
shuffles, the same history and the same weights on CPU. A checkpoint stores every RNG state, so a
resumed run repeats an uninterrupted one exactly (tested single-process; under Accelerate a resume
restores the main process's RNG states on every process, so it is close but not bit-exact).
``cfg.augment(x, generator)`` gets a CPU ``torch.Generator``: draw random numbers on the CPU with it
and move them to ``x.device``. Multi-GPU (or multi-process CPU) runs go through Hugging Face
Accelerate: pass ``accelerator=Accelerator()``. ``fit`` trains the model in place and returns it
holding the best weights.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import random
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vtlib.checkpoint import check_fingerprint, fingerprint, load_checkpoint, save_checkpoint
from vtlib.errors import VtlibError, bad_arg, check_choice, check_positive_int, check_rank
from vtlib.metrics import TASKS, evaluate_scores
from vtlib.utils import get_device, is_interactive, seed_everything

SELECT_METRICS = ("auc", "acc", "loss")
SCHEDULES = ("cosine", "multistep")


@dataclass
class TrainConfig:
    """Everything ``fit`` needs besides the model and the data. Fields are checked on creation."""
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0           # final lr = lr * min_lr_ratio
    schedule: str = "cosine"            # "cosine" (warm-up + cosine) | "multistep" (x0.1 at 50 % and 75 %)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0            # 0 turns mixup off; ViViT uses 0.1-0.3
    grad_clip: float | None = 1.0       # max global grad norm; None turns clipping off
    task: str = "binary-class"
    select_metric: str = "auc"          # "auc" | "acc" (higher is better) | "loss" (lower)
    seed: int = 0
    device: str | None = None           # None -> vtlib.utils.get_device()
    amp: bool = True                    # bf16 autocast, only on CUDA
    compile: bool = False               # train through torch.compile(model): a GPU setting (README, Speed)
    progress: bool | None = None        # None -> a bar only in a live notebook
    checkpoint_path: str | None = None
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None  # x -> x, on the device

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        for name, low, high in (("lr", 0, math.inf), ("weight_decay", 0, math.inf),
                                ("warmup_epochs", 0, math.inf), ("min_lr_ratio", 0, 1),
                                ("label_smoothing", 0, 0.99), ("mixup_alpha", 0, math.inf)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not low <= v <= high or (name == "lr" and v == 0):
                above = " above 0" if name == "lr" else ""
                raise bad_arg(name, f"a number in [{low}, {high}]{above}", repr(v), f"pass a valid {name}")
        clip = self.grad_clip
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise bad_arg("grad_clip", "a positive number or None", repr(clip), "e.g. grad_clip=1.0")
        check_choice("task", self.task, TASKS)
        check_choice("select_metric", self.select_metric, SELECT_METRICS)
        check_choice("schedule", self.schedule, SCHEDULES)
        try:
            torch.device(self.device) if self.device is not None else None
        except (RuntimeError, TypeError):
            raise bad_arg("device", "a torch device name or None", repr(self.device),
                          "use 'cpu', 'cuda' or None (auto)") from None
        if not isinstance(self.compile, bool):
            raise bad_arg("compile", "True or False", repr(self.compile), "pass compile=True on a GPU")
        if self.augment is not None and not callable(self.augment):
            raise bad_arg("augment", "a callable f(x, generator) -> x", type(self.augment).__name__,
                          "pass a function or None")


@dataclass
class TrainResult:
    best_epoch: int                     # 1-based epoch whose weights `model` holds
    best_val: dict                      # {"loss", "auc", "acc"} at best_epoch
    history: list[dict]                 # per epoch: epoch, train_loss, lr (last step's), val_loss,
                                        # val_auc, val_acc, seconds (wall time: the one varying field)
    test: dict | None                   # evaluate() on the test loader with the best weights, or None
    model: nn.Module = field(repr=False)


# ----------------------------------------------------------------------------- regularisers
def mixup(x: Tensor, y_onehot: Tensor, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mix each video with another of the batch: lam * a + (1 - lam) * b, same lam for the targets.

    x: (B, C, T, H, W); y_onehot: (B, K) float (one-hot or soft). lam ~ Beta(alpha, alpha), one per
    batch, drawn from ``generator`` (a CPU torch.Generator) so a seed repeats it.
    Returns x_mixed (B, C, T, H, W) and y_mixed (B, K).
    """
    check_rank("x", x, 5, "B C T H W")
    check_rank("y_onehot", y_onehot, 2, "B K")
    if y_onehot.shape[0] != x.shape[0] or not torch.is_floating_point(y_onehot):
        raise bad_arg("y_onehot", f"a float tensor with B={x.shape[0]} rows",
                      f"{y_onehot.dtype} {tuple(y_onehot.shape)}", "pass F.one_hot(y, num_classes).float()")
    if not alpha > 0:
        raise bad_arg("alpha", "a positive Beta parameter", alpha, "use e.g. alpha=0.2 (skip mixup for 0)")
    seed = int(torch.randint(2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))  # torch's Beta takes no generator
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]


# ----------------------------------------------------------------------------- optimiser, schedule
def no_decay_names(model: nn.Module) -> set[str]:
    """Full names (as in ``model.named_parameters()``) of the parameters that get no weight decay:

    * every parameter with at most one axis: biases, LayerNorm / BatchNorm scales, scalar gates;
    * the direct parameters each module names in its class attribute ``no_weight_decay``, e.g.
      ``ClsToken.no_weight_decay = ("token",)``: position tables, CLS and mask tokens, pooling queries.

    A listed name the module does not hold, or holds as None (an optional table, e.g. TimeSformer's
    ``time_pos`` for ``attention="space"``), is skipped; one that names a buffer or a submodule is an error.
    """
    names = {name for name, p in model.named_parameters() if p.ndim <= 1}
    for prefix, module in model.named_modules():
        declared = getattr(type(module), "no_weight_decay", ())
        if not isinstance(declared, (tuple, list, frozenset, set)) or not all(isinstance(n, str) for n in declared):
            raise bad_arg(f"{type(module).__name__}.no_weight_decay", "a tuple of parameter names",
                          repr(declared), 'write e.g. no_weight_decay = ("pos",)')
        for attr in declared:
            value = getattr(module, attr, None)
            if value is None:
                continue
            if not isinstance(value, nn.Parameter) or attr not in module._parameters:
                raise bad_arg(f"{type(module).__name__}.no_weight_decay", "names of the module's own parameters",
                              f"{attr!r}, a {type(value).__name__}", "list parameters only; buffers are never decayed")
            names.add(f"{prefix}.{attr}" if prefix else attr)
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight decay on weight matrices and filters, none on :func:`no_decay_names`.

    Changed: the exempt set used to be guessed from name substrings ("pos", "cls", "token" in the
    last part of a parameter's name), which missed ``AttentionPool.query`` (so attention-pool queries
    were decayed) and would exempt any matrix whose name happened to contain them. Now modules
    declare their exempt parameters (``no_weight_decay``); a model of your own with a free table
    or token must declare it too, or it is decayed.
    """
    exempt = no_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name in exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  min_lr_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step lr factor: linear from 1/warmup up to 1 over ``warmup_steps``, then a half cosine
    down to ``min_lr_ratio`` at ``total_steps``. Call ``scheduler.step()`` after every optimiser step."""
    check_positive_int("total_steps", total_steps)
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps <= total_steps:
        raise bad_arg("warmup_steps", f"an int in [0, total_steps={total_steps}]", repr(warmup_steps),
                      "use fewer warm-up steps than total steps")
    if not 0 <= min_lr_ratio <= 1:
        raise bad_arg("min_lr_ratio", "a number in [0, 1]", min_lr_ratio, "e.g. 0.0 or 0.01")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def multistep(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step lr factor 1, then 0.1 from 50 % of ``total_steps``, 0.01 from 75 % (MedMNIST v2's
    MultiStepLR at epochs 50 and 75 of 100, stepped per batch so it works for any epoch count)."""
    check_positive_int("total_steps", total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.01 if step >= 0.75 * total_steps else 0.1 if step >= 0.5 * total_steps else 1.0)


# ----------------------------------------------------------------------------- evaluation
def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _check_batch(x: Any, y: Any, loader_name: str) -> None:
    check_rank(f"x from {loader_name}", x, 5, "B C T H W")
    check_rank(f"y from {loader_name}", y, 1, "B")
    if y.dtype != torch.int64:
        raise bad_arg(f"y from {loader_name}", "int64 class indices", y.dtype, "use y.long()")


@torch.no_grad()
def predict_logits(model: nn.Module, loader, device=None, amp: bool = True,
                   accelerator=None) -> tuple[Tensor, Tensor]:
    """Logits (N, K) float32 and labels (N,) on the CPU, in loader order (all processes gathered).
    Probabilities are ``logits.softmax(-1)``."""
    device = accelerator.device if accelerator else torch.device(device) if device else get_device()
    model.eval()
    outs, labels = [], []
    for x, y in loader:
        _check_batch(x, y, "loader")
        x, y = x.to(device), y.to(device)
        with _autocast(device, amp and accelerator is None):
            logits = model(x).float()
        if accelerator is not None:
            logits, y = accelerator.gather_for_metrics((logits, y))
        outs.append(logits.cpu()), labels.append(y.cpu())
    if not outs:
        raise bad_arg("loader", "at least one batch", "an empty loader", "check the dataset split")
    return torch.cat(outs), torch.cat(labels)


def evaluate(model: nn.Module, loader, task: str, device=None, amp: bool = True, accelerator=None) -> dict:
    """Mean cross-entropy (no smoothing) and MedMNIST AUC/ACC from softmax probabilities.

    Returns {"loss", "auc", "acc"} as floats plus "scores" (N, K) and "labels" (N,) as numpy.
    """
    check_choice("task", task, TASKS)
    logits, labels = predict_logits(model, loader, device, amp, accelerator)
    scores = logits.softmax(-1)
    m = evaluate_scores(labels, scores, task)
    return {"loss": F.cross_entropy(logits, labels).item(), "auc": m.auc, "acc": m.acc,
            "scores": scores.numpy(), "labels": labels.numpy()}


# ----------------------------------------------------------------------------- checkpoints
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "best_state", "best_epoch", "best_val",
                   "rng", "config", "fingerprint")


def _loader_generators(loader) -> list[torch.Generator]:
    """The generators that make a train loader random: its shuffle and its dataset's augmentation
    (e.g. ``MedMNISTVideo(transform=...).generator``); ``fit`` seeds and checkpoints all of them."""
    gens = [getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None), "generator", None),
            getattr(getattr(loader, "dataset", None), "generator", None)]
    unique = {id(g): g for g in gens if isinstance(g, torch.Generator)}
    return list(unique.values())


def _rng_state(gens: list[torch.Generator], aug_gen: torch.Generator) -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": [g.get_state() for g in gens], "augment": aug_gen.get_state()}


def _set_rng_state(s: dict, gens: list[torch.Generator], aug_gen: torch.Generator) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    for g, st in zip(gens, s["loader"]):
        g.set_state(st)
    aug_gen.set_state(s["augment"])


def _config_key(cfg: TrainConfig) -> dict:
    """The fields that change the result; a resumed run must use the same ones."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if f.name not in ("device", "amp", "compile", "progress", "checkpoint_path", "augment")}


class TrainingDiverged(VtlibError):
    """The training loss became NaN or infinite. ``fit`` raises it after putting the best weights so
    far back into the model; ``.result`` is the TrainResult up to the last good epoch (or None)."""

    def __init__(self, message: str, result: "TrainResult | None") -> None:
        super().__init__(message)
        self.result = result


def _dataset_labels(loader) -> Tensor | None:
    """The labels of a loader's dataset without iterating it, where the dataset exposes them."""
    ds = getattr(loader, "dataset", None)
    labels = getattr(ds, "labels", None)
    if labels is None and hasattr(ds, "tensors") and len(ds.tensors) >= 2:
        labels = ds.tensors[1]
    return torch.as_tensor(labels) if labels is not None else None


def _check_head(k: int, cfg: "TrainConfig") -> None:
    if cfg.task == "binary-class" and k != 2:
        raise bad_arg("model", "2 logits for a binary task (one per class)", f"{k} logits",
                      "build the head with num_classes=2")


def _check_labels(labels: Tensor, k: int, name: str) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise bad_arg(name, f"class indices in [0, {k - 1}] for a model with {k} outputs",
                      f"labels in [{int(labels.min())}, {int(labels.max())}]",
                      "match the head's num_classes to the dataset (labels start at 0)")


def _check_val_classes(labels: Tensor, cfg: "TrainConfig") -> None:
    if cfg.select_metric == "auc" and labels.unique().numel() < 2:
        raise bad_arg("val_loader", "clips of at least two classes (AUC needs both to select an epoch)",
                      f"only class {labels.unique().tolist()}",
                      "use a stratified validation split, or select_metric='loss'")


def check_fit_inputs(model: nn.Module, train_loader, val_loader, cfg: "TrainConfig", device) -> int | None:
    """Refuse, before the first step, what would make ``fit`` fail late or select silently wrong.

    * labels outside [0, K) for a model with K outputs, and a binary task on a model without 2 logits
      (K from one validation clip in eval mode);
    * AUC selection on a validation split with one class (AUC would be NaN every epoch, and the
      first epoch would be kept without a word).
    Labels and a clip are read from the datasets (``.labels``, ``TensorDataset.tensors``, ``ds[0]``),
    never by iterating the loaders. What a dataset does not expose is checked on the first training
    batch and after the first validation instead. Returns K, or None when it is not known yet.
    """
    if not isinstance(model, nn.Module):
        raise bad_arg("model", "a torch.nn.Module", type(model).__name__, "pass the model to train")
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if not hasattr(loader, "__iter__"):
            raise bad_arg(name, "an iterable of (x, y) batches, e.g. a DataLoader", type(loader).__name__,
                          "wrap the dataset: DataLoader(dataset, batch_size=32)")
    k = None
    ds = getattr(val_loader, "dataset", None)
    if (ds is not None and hasattr(ds, "__getitem__") and hasattr(ds, "__len__") and len(ds) > 0
            and getattr(ds, "transform", None) is None):   # reading a clip must not draw random numbers
        x, _ = ds[0]
        if isinstance(x, Tensor) and x.ndim == 4:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                out = model(x[None].to(device))
            model.train(was_training)
            if not isinstance(out, Tensor) or out.ndim != 2:
                raise bad_arg("model", "logits shaped (B, num_classes)",
                              f"{type(out).__name__} {tuple(out.shape) if isinstance(out, Tensor) else ''}",
                              "end the model with a Linear head")
            k = out.shape[-1]
            _check_head(k, cfg)
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        labels = _dataset_labels(loader)
        if labels is None:
            continue
        if k is not None:
            _check_labels(labels.reshape(-1), k, f"labels of {name}")
        if name == "val_loader":
            _check_val_classes(labels.reshape(-1), cfg)
    return k


def _selection_score(metrics: dict, key: str) -> float:
    v = metrics[key]
    return -math.inf if math.isnan(v) else (-v if key == "loss" else v)


def _diverged(model, best_state, best_epoch, best_val, history, epoch, lr, cfg) -> None:
    """Put the best weights back and raise TrainingDiverged (the live weights may hold NaN)."""
    result = None
    if best_state is not None:
        model.load_state_dict(best_state)
        result = TrainResult(best_epoch, best_val, list(history), None, model)
    kept = (f"the model holds the weights of epoch {best_epoch}, the best so far" if best_state is not None
            else "no epoch finished, so no good weights exist")
    raise TrainingDiverged(
        f"loss: expected finite training losses, got NaN or inf in epoch {epoch + 1} (lr {lr:.3g}); {kept}"
        f"{'; the checkpoint on disk is the last good epoch' if cfg.checkpoint_path else ''}. Fix: lower lr, "
        "keep grad_clip on, and check the inputs for NaN (e.g. torch.isfinite(x).all())", result)


# ----------------------------------------------------------------------------- the loop
def fit(model: nn.Module, train_loader, val_loader, cfg: TrainConfig, test_loader=None,
        accelerator=None) -> TrainResult:
    """Train ``model``, select the epoch with the best validation ``cfg.select_metric``, test once.

    Loaders yield x (B, C, T, H, W) float32 and y (B,) int64. If ``cfg.checkpoint_path`` exists,
    training resumes from it (and a finished run just reloads). Shuffling is reproducible if the
    train loader shuffles with the global torch RNG or with ``DataLoader(generator=...)``: ``fit``
    seeds both. With ``accelerator`` (Hugging Face Accelerate) the same loop runs on several
    processes; metrics are computed on the gathered predictions, only the main process writes.
    """
    if not isinstance(cfg, TrainConfig):
        raise bad_arg("cfg", "a TrainConfig", type(cfg).__name__, "pass TrainConfig(epochs=..., ...)")
    rank = accelerator.process_index if accelerator else 0
    is_main = accelerator.is_main_process if accelerator else True
    seed_everything(cfg.seed + rank)  # per-process dropout / drop-path noise; data order is shared
    raw_train_loader = train_loader
    if accelerator is None:
        device = torch.device(cfg.device) if cfg.device else get_device()
        model.to(device)
        # foreach: one call per step for all tensors instead of a Python loop over them; on a CPU it
        # is about 1.5x faster on a CPU and gives the same numbers, bit for bit
        backward, clip = (lambda loss: loss.backward()), functools.partial(nn.utils.clip_grad_norm_, foreach=True)
    first = next(iter(model.parameters()), None)
    num_classes = check_fit_inputs(model, train_loader, val_loader, cfg,
                                   first.device if first is not None else torch.device("cpu"))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, foreach=True)
    if accelerator is not None:
        device = accelerator.device
        model, optimizer, train_loader, val_loader = accelerator.prepare(
            model, optimizer, train_loader, val_loader)
        test_loader = accelerator.prepare(test_loader) if test_loader is not None else None
        backward, clip = accelerator.backward, accelerator.clip_grad_norm_
    bare = accelerator.unwrap_model(model) if accelerator else model  # the nn.Module the user gave
    amp = cfg.amp and accelerator is None  # Accelerate applies its own mixed precision
    # torch.compile traces the training forward once (tens of seconds) and fuses its small kernels;
    # evaluation and the saved weights use the module itself, so checkpoints are unchanged.
    train_model = torch.compile(model) if cfg.compile else model
    try:
        steps_per_epoch = len(train_loader)
    except TypeError:
        raise bad_arg("train_loader", "a loader with a length (the schedule is planned in steps)",
                      f"{type(train_loader).__name__} without len()",
                      "use a map-style Dataset (with __len__ and __getitem__) in the DataLoader") from None
    if steps_per_epoch == 0:
        raise bad_arg("train_loader", "at least one batch", "an empty loader", "check the dataset split")
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "multistep":
        scheduler = multistep(optimizer, total)
    else:
        scheduler = warmup_cosine(optimizer, min(total, round(cfg.warmup_epochs * steps_per_epoch)), total,
                                  cfg.min_lr_ratio)
    gens, aug_gen = _loader_generators(raw_train_loader), torch.Generator().manual_seed(cfg.seed + rank)
    for g in gens:
        g.manual_seed(cfg.seed)

    start, history, best_state, best_epoch, best_val = 0, [], None, 0, None
    if cfg.checkpoint_path and os.path.exists(cfg.checkpoint_path):
        ck = load_checkpoint(cfg.checkpoint_path, expect=CHECKPOINT_KEYS[:-1])
        check_fingerprint(ck.get("fingerprint"), bare, cfg.checkpoint_path)
        if ck["config"] != _config_key(cfg):
            diff = sorted(k for k in ck["config"] if ck["config"][k] != _config_key(cfg).get(k))
            raise VtlibError(f"checkpoint_path: expected a checkpoint written with the same TrainConfig, got "
                             f"one that differs in {diff}. Fix: pass a new checkpoint_path or delete "
                             f"{cfg.checkpoint_path} to start over")
        bare.load_state_dict(ck["model"]), optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start, history, best_state = ck["epoch"], ck["history"], ck["best_state"]
        best_epoch, best_val = ck["best_epoch"], ck["best_val"]
        _set_rng_state(ck["rng"], gens, aug_gen)

    show = is_main and (is_interactive() if cfg.progress is None else cfg.progress)
    bar = tqdm(total=total, initial=start * steps_per_epoch, desc="train", disable=not show)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        loss_sum, n_seen = torch.zeros((), device=device), torch.zeros((), device=device)  # no GPU syncs
        finite = torch.ones((), dtype=torch.bool, device=device)
        model.train()
        for x, y in train_loader:
            _check_batch(x, y, "train_loader")
            if num_classes is not None:
                _check_labels(y, num_classes, "y from train_loader")
            x, y = x.to(device), y.to(device)
            if cfg.augment is not None:
                x = cfg.augment(x, aug_gen)
            target = y
            if cfg.mixup_alpha > 0:  # one-hot over the labels seen; padded to the logit width below
                x, target = mixup(x, F.one_hot(y).float(), cfg.mixup_alpha, aug_gen)
            with _autocast(device, amp):
                logits = train_model(x)
            if num_classes is None:                      # the datasets did not tell: check the first batch
                num_classes = logits.shape[-1]
                _check_head(num_classes, cfg)
                _check_labels(y, num_classes, "y from train_loader")
            if target.ndim == 2:
                target = F.pad(target, (0, logits.shape[-1] - target.shape[-1]))
            loss = F.cross_entropy(logits.float(), target, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            backward(loss)
            if cfg.grad_clip is not None:
                clip(model.parameters(), cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            scheduler.step()
            finite &= torch.isfinite(loss.detach())
            loss_sum += loss.detach() * len(y)
            n_seen += len(y)
            bar.update(1)
            if show:  # .item() waits for the GPU: only when someone watches
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        if accelerator is not None:
            loss_sum, n_seen = accelerator.reduce(torch.stack([loss_sum, n_seen]), "sum")
            finite = accelerator.reduce(finite.float(), "min").bool()
        if not bool(finite):
            bar.close()
            _diverged(bare, best_state, best_epoch, best_val, history, epoch, lr, cfg)
        val = evaluate(model, val_loader, cfg.task, device, amp, accelerator)
        if epoch == start:
            _check_val_classes(torch.as_tensor(val["labels"]), cfg)
        history.append({"epoch": epoch + 1, "train_loss": (loss_sum / n_seen).item(), "lr": lr,
                        "val_loss": val["loss"], "val_auc": val["auc"], "val_acc": val["acc"],
                        "seconds": time.perf_counter() - t0})
        val = {k: val[k] for k in ("loss", "auc", "acc")}
        key = cfg.select_metric
        if best_val is None or _selection_score(val, key) > _selection_score(best_val, key):
            best_epoch, best_val = epoch + 1, val
            best_state = copy.deepcopy(bare.state_dict())  # a copy: the live weights keep changing
        bar.set_postfix(epoch=epoch + 1, val_auc=f"{val['auc']:.3f}", val_acc=f"{val['acc']:.3f}")
        if cfg.checkpoint_path and is_main:
            save_checkpoint({"model": bare.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                             "best_state": best_state, "best_epoch": best_epoch, "best_val": best_val,
                             "rng": _rng_state(gens, aug_gen), "config": _config_key(cfg),
                             "fingerprint": fingerprint(bare)},
                            cfg.checkpoint_path)
        if accelerator is not None:
            accelerator.wait_for_everyone()
    bar.close()

    bare.load_state_dict(best_state)
    test = None
    if test_loader is not None:  # once, with the best weights
        test = evaluate(model, test_loader, cfg.task, device, amp, accelerator)
    return TrainResult(best_epoch, best_val, history, test, bare)
