"""VTN at small scale: the design choices of the paper as ablations (notebook 10).

    python -m vtlib.experiments.vtn                          # every part, seeds 0-2: about 75 min, one thread
    python -m vtlib.experiments.vtn --parts adrenal --configs scratch sparse-7   # a few configs only
    python -m vtlib.experiments.vtn --parts order            # (a) the long-video order task only
    python -m vtlib.experiments.vtn --parts adrenal --seeds 0
    python -m vtlib.experiments.vtn --parts cost             # (c) attention cost against frames, no training

(a) ``order`` (synthetic, ``vtlib.data.make_order_videos``): 256 frames of 8 x 8; the label is the
    order of a blob and a bar that appear for 4 frames each, at least 128 frames apart. Every config
    uses a frame CNN first trained on single frames to tell blob, bar and empty frames apart (a "2D
    model trained on images"), then frozen: the features of every clip are computed once and the
    temporal encoder trains on the stored features (inference mode 3). Configs (``ORDER_CONFIGS``):
    ``global`` (window 8 frames, depth 2, the CLS a global token), ``local`` (the same with
    ``global_cls=False``: after 2 layers the CLS has seen frames 0-7 only, and no event starts before
    frame 16), ``full`` (full attention over all 257 tokens, O(T^2)), ``scratch-e2e`` (the ``global``
    model trained end to end on pixels from a random frame CNN, no frame pre-training).
(b) ``adrenal`` (AdrenalMNIST3D 28^3: 28 slices of 28 x 28 are the frames): a FrameCNN backbone, dim
    32, depth 2, 4 heads, window 8 (4 slices on each side), trained 8 epochs with random flips,
    rotations and intensity scaling. Configs (``ADRENAL_CONFIGS``): ``scratch`` (the reference),
    windows 2 and 16 and full attention, depth 1 and 4, a local CLS, a random frozen backbone, and a
    backbone first trained on single slices (the 9 middle slices of every training clip, each
    labelled with its clip's label) then frozen or fine-tuned. ``sparse-7``: the model reads 7 of the 28
    slices (every 4th, at a random phase in training, each at its true slice index), as VTN trains on a
    few frames; the same weights are then tested on 7, 14 and 28 slices (rows ``sparse-7``,
    ``sparse-7@14``, ``sparse-7@28``): frames at inference. ``scratch-64``, ``slice-frozen-64`` and
    ``slice-finetune-64``: the 64^3 volumes (64 slices of 64 x 64; 6 epochs, as the course's other 64^3
    rows; about 9 minutes a run).
(c) ``cost``: one attention layer on T + 1 tokens (dim 64, 4 heads, window 18 as in the paper, the CLS global) for
    T = 32 ... 4096: attention scores (counted), FLOPs (``vtlib.cost.measure_flops``), peak and
    largest tensor memory (``vtlib.cost.PeakTensorMemory``, inference) and CPU milliseconds (median of 3, one
    thread) for vtlib's efficient and explicit window attention, full attention (SDPA) and Hugging
    Face's ``LongformerSelfAttention`` with the same weights (``vtlib.hf.longformer``). Written to
    ``results/vtn_cost.csv``.

Resumable: ``results/vtn.csv`` is rewritten after every run, and a (part, config, seed) already in
it is skipped (``--fresh`` starts over). The adrenal runs also keep every test clip's score in
``results/vtn_scores.csv``, from which ``results/vtn_intervals.csv`` gives each config's mean test AUC
with a 95 % interval over seeds and test clips, and its paired difference from ``scratch`` (or the
config it varies: ``REFERENCE``) on the same clips. ``results/vtn_summary.csv`` holds the mean and sample
standard deviation per (part, config). ``train_seconds`` is wall time of ``fit`` (for ``order``,
without the shared frame pre-training, which ``pretrain_seconds`` gives); one thread throughout.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.cost import peak_tensor_memory
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.experiments.common import (
    RESULTS,
    SLICES,
    loaders,
    paired_interval_rows,
    positive_scores,
    provenance,
    read_csv,
    read_scores,
    slice_loaders,
    summarise,
    write_csv,
    write_scores,
)
from vtlib.models.vtn import VTN, FrameCNN, use_full_attention
from vtlib.train import TrainConfig, fit
from vtlib.utils import count_parameters, get_device

COMMAND = "python -m vtlib.experiments.vtn"
PARTS = ("order", "adrenal", "cost")

# ------------------------------------------------------------------------------ (a) the order task
ORDER_DATA = dict(frames=256, size=8, n_train=1024, n_eval=256)
ORDER_MODEL = dict(dim=16, depth=2, heads=2, window=8, head_drop=0.1)
ORDER_CNN = dict(out_dim=16, widths=(8, 16))
ORDER_EPOCHS, ORDER_LR = 10, 3e-3
ORDER_CONFIGS: dict[str, dict] = {
    "global": {},
    "local": dict(global_cls=False),
    "full": dict(attention="full"),
    "scratch-e2e": dict(backbone="scratch"),
}
# ----------------------------------------------------------------------------- (b) AdrenalMNIST3D
ADRENAL_MODEL = dict(dim=32, depth=2, heads=4, window=8, max_frames=28)
ADRENAL_CNN = dict(out_dim=32, widths=(16, 32))
ADRENAL_EPOCHS, ADRENAL_LR, SLICE_EPOCHS = 8, 1e-3, 3
ADRENAL_CONFIGS: dict[str, dict] = {
    "scratch": {},
    "window-2": dict(window=2),
    "window-16": dict(window=16),
    "full": dict(attention="full"),
    "depth-1": dict(depth=1),
    "depth-4": dict(depth=4),
    "local-cls": dict(global_cls=False),
    "frozen-random": dict(backbone="random", freeze=True),
    "slice-frozen": dict(backbone="slice", freeze=True),
    "slice-finetune": dict(backbone="slice"),
    "sparse-7": dict(frames=7),                     # 7 of the 28 slices in training; tested at 7, 14 and 28
    "scratch-64": dict(size=64, epochs=6),          # AdrenalMNIST3D at 64^3: 64 slices of 64 x 64
    "slice-frozen-64": dict(size=64, backbone="slice", freeze=True, epochs=6),
    "slice-finetune-64": dict(size=64, backbone="slice", epochs=6),
}
SPARSE_EVAL = (14, 28)             # the extra slice counts a "sparse-7" model is tested at (rows "sparse-7@14", ...)
REFERENCE = {"sparse-7@14": "sparse-7", "sparse-7@28": "sparse-7", "slice-frozen-64": "scratch-64",
             "slice-finetune-64": "scratch-64"}
# --------------------------------------------------------------------------------------- (c) cost
COST_FRAMES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
COST_LAYER = dict(dim=64, heads=4, window=18)  # the authors' window: 9 frames on each side
EXPLICIT_MAX_FRAMES = 2048          # the (L, L) forms need 4 * L^2 floats per score matrix


# ------------------------------------------------------------------------- wrappers for fit()
class SliceClassifier(nn.Module):
    """A frame model with a linear head, on single frames stored as clips (B, C, 1, H, W) -> logits.

    What ``fit`` trains when a 2D backbone learns from single slices or frames first.
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 2) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        out_dim = getattr(backbone, "out_dim", None)
        if not isinstance(out_dim, int):
            raise bad_arg("backbone", "a frame model with an int attribute out_dim", type(backbone).__name__,
                          "use FrameCNN or ImageBackbone(model, out_dim=...)")
        self.backbone, self.head = backbone, nn.Linear(out_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[2] != 1:
            raise bad_arg("x", "single frames as clips (B, C, 1, H, W)", f"shape {tuple(x.shape)}",
                          "take one frame per clip, e.g. x[:, :, t:t + 1]")
        return self.head(self.backbone(x[:, :, 0]))


class OnFeatures(nn.Module):
    """A VTN's temporal part on stored frame features laid out as a clip of 1 x 1 "frames":
    (B, F, T, 1, 1) -> logits. ``fit`` and ``evaluate`` take clips, so features travel in that shape."""

    def __init__(self, model: VTN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.classify_features(rearrange(x, "b f t 1 1 -> b t f"))


class SparseFrames(nn.Module):
    """A VTN that reads ``frames`` evenly spaced slices of each clip, each at its true slice index
    (``frame_ids``), as VTN trains on a few sampled frames and classifies many at inference.

    In training the phase is random (slices 0, 4, 8, ... or 1, 5, 9, ...), so every position row learns;
    in evaluation it is the middle phase ``(stride - 1) // 2``. ``eval_frames`` (default ``frames``) sets
    how many slices evaluation reads: (B, C, T, H, W) -> logits, with T divisible by either count.
    """

    def __init__(self, model: VTN, *, frames: int, eval_frames: int | None = None) -> None:
        super().__init__()
        check_positive_int("frames", frames)
        if eval_frames is not None:
            check_positive_int("eval_frames", eval_frames)
        self.model, self.frames, self.eval_frames = model, frames, eval_frames

    def forward(self, x: Tensor) -> Tensor:
        n = self.frames if self.training else (self.eval_frames or self.frames)
        T = x.shape[2] if x.ndim == 5 else -1
        if T < n or T % n:
            raise bad_arg("x", f"clips (B, C, T, H, W) whose T is a multiple of {n} slices", f"shape {tuple(x.shape)}",
                          "pass whole volumes, or set frames / eval_frames to a divisor of T")
        stride = T // n
        phase = int(torch.randint(stride, ())) if self.training else (stride - 1) // 2
        ids = torch.arange(phase, T, stride, device=x.device)
        return self.model(x[:, :, ids], frame_ids=ids)


@torch.no_grad()
def stored_features(model: VTN, x: Tensor, batch: int = 64, chunk: int | None = 4096) -> Tensor:
    """Mode 3: the backbone features of clips x (N, C, T, H, W), ``batch`` clips at a time, with at most
    ``chunk`` frames per backbone call -> (N, T, F) float32 on the CPU."""
    check_positive_int("batch", batch)
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model.features(x[i:i + batch].to(device), chunk=chunk).cpu() for i in range(0, len(x), batch)])
    model.train(was)
    return out


def as_feature_clips(f: Tensor) -> Tensor:
    """Features (N, T, F) -> (N, F, T, 1, 1), the layout ``OnFeatures`` reads."""
    return rearrange(f, "n t f -> n f t 1 1").contiguous()


def tensor_loaders(splits: dict[str, tuple[Tensor, Tensor]], batch_size: int = 32,
                   seed: int = 0) -> dict[str, DataLoader]:
    """{"train", "val", "test"} (x, y) -> DataLoaders; the train split shuffled with a seeded generator."""
    return {name: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=name == "train",
                             generator=torch.Generator().manual_seed(seed), num_workers=0)
            for name, (x, y) in splits.items()}


# --------------------------------------------------------------------------------- order data
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


@lru_cache(maxsize=2)
def order_splits(frames: int = ORDER_DATA["frames"], size: int = ORDER_DATA["size"],
                 n_train: int = ORDER_DATA["n_train"], n_eval: int = ORDER_DATA["n_eval"]) -> dict:
    """Clips and labels of the order task: train (seed 0), val (seed 1), test (seed 2)."""
    from vtlib.data import make_order_videos

    return {name: make_order_videos(n_train if name == "train" else n_eval, frames, size, seed=seed)
            for name, seed in SPLIT_SEEDS.items()}


def event_frames(n: int, frames: int, size: int, seed: int, event_len: int = 4) -> Tensor:
    """Frame labels (n, frames) int64 of order clips: 0 nothing, 1 blob, 2 bar."""
    from vtlib.data import order_video_events

    times = order_video_events(n, frames, size, event_frames=event_len, seed=seed)             # (n, 2)
    t = torch.arange(frames)
    labels = torch.zeros(n, frames, dtype=torch.long)
    for kind in (0, 1):
        on = (t[None] >= times[:, kind:kind + 1]) & (t[None] < times[:, kind:kind + 1] + event_len)
        labels[on] = kind + 1
    return labels


def frame_splits(splits: dict, clips: int = 256, seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Single frames of the first ``clips`` clips of each split, as (N, 1, 1, H, W) with frame labels
    0 / 1 / 2 (nothing / blob / bar): every event frame and as many empty frames, drawn with ``seed``."""
    out = {}
    g = torch.Generator().manual_seed(seed)
    for name, (x, _) in splits.items():
        labels = event_frames(len(x), x.shape[2], x.shape[-1], seed=SPLIT_SEEDS[name])[:clips].flatten()
        x = x[:clips]
        frames = rearrange(x, "n c t h w -> (n t) c 1 h w")
        events = (labels > 0).nonzero()[:, 0]
        empty = (labels == 0).nonzero()[:, 0]
        empty = empty[torch.randperm(len(empty), generator=g)[:len(events)]]
        idx = torch.cat([events, empty])
        out[name] = (frames[idx], labels[idx])
    return out


@lru_cache(maxsize=4)
def pretrained_frame_cnn(seed: int = 0, epochs: int = 2) -> tuple[FrameCNN, float]:
    """A FrameCNN trained on single frames of the order task's training clips to tell empty, blob and
    bar frames apart (3 classes, AdamW lr 3e-3); returns (backbone, seconds). Cached per seed."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    net = SliceClassifier(FrameCNN(**ORDER_CNN), num_classes=3)
    data = tensor_loaders(frame_splits({k: order_splits()[k] for k in ("train", "val")}, seed=seed), 64, seed)
    cfg = TrainConfig(epochs=epochs, lr=3e-3, task="multi-class", seed=seed, progress=False, device="cpu")
    fit(net, data["train"], data["val"], cfg)
    return net.backbone.eval(), time.perf_counter() - t0


def _vtn_model(backbone: nn.Module, *, attention: str = "window", freeze: bool = False, **kw) -> VTN:
    """A VTN for one run. Full attention is swapped into a built window model (``use_full_attention``),
    not built by ``VTN(attention="full")``, whose weights are drawn in another order: the full-attention
    rows of ``results/vtn.csv`` were trained from this initialisation."""
    check_choice("attention", attention, ("window", "full"))
    model = VTN(backbone=backbone, freeze_backbone=freeze, **kw)
    return use_full_attention(model) if attention == "full" else model


def _config_columns(cfg: dict, model_kw: dict) -> dict:
    """The model settings a config changes, as CSV columns."""
    kw = {**model_kw, **cfg}
    return {"window": "full" if kw.get("attention") == "full" else kw["window"], "depth": kw["depth"],
            "dim": kw["dim"], "heads": kw["heads"], "global_cls": kw.get("global_cls", True)}


def _row(part: str, config: str, seed: int, epochs: int, model: nn.Module, result, seconds: float) -> dict:
    return {"part": part, "config": config, "seed": seed, "epochs": epochs, "best_epoch": result.best_epoch,
            "val_auc": round(result.best_val["auc"], 4), "test_auc": round(result.test["auc"], 4),
            "test_acc": round(result.test["acc"], 4), "params": count_parameters(model),
            "params_total": count_parameters(model, trainable_only=False),
            "train_seconds": round(seconds, 1), "device": str(get_device("cpu")), "threads": torch.get_num_threads()}


def order_run(config: str, seed: int, epochs: int = ORDER_EPOCHS) -> dict:
    """(a): one run of ``ORDER_CONFIGS[config]``; one result row."""
    check_choice("config", config, list(ORDER_CONFIGS))
    cfg = ORDER_CONFIGS[config]
    splits = order_splits()
    frames = ORDER_DATA["frames"]
    model_kw = {**ORDER_MODEL, "max_frames": frames,
                **{k: v for k, v in cfg.items() if k not in ("attention", "backbone")}}
    train_cfg = TrainConfig(epochs=epochs, lr=ORDER_LR, warmup_epochs=0.5, seed=seed, progress=False, device="cpu")
    pretrain_seconds = 0.0
    if cfg.get("backbone") == "scratch":             # end to end on pixels, random frame CNN
        torch.manual_seed(seed)
        model = _vtn_model(FrameCNN(**ORDER_CNN), attention=cfg.get("attention", "window"), **model_kw)
        net, data = model, tensor_loaders(splits, 32, seed)
    else:                                             # frozen pre-trained frame CNN, stored features
        backbone, pretrain_seconds = pretrained_frame_cnn(seed)
        torch.manual_seed(seed)
        model = _vtn_model(copy.deepcopy(backbone), attention=cfg.get("attention", "window"), freeze=True, **model_kw)
        t0 = time.perf_counter()
        feats = {k: (as_feature_clips(stored_features(model, x)), y) for k, (x, y) in splits.items()}
        pretrain_seconds += time.perf_counter() - t0
        net, data = OnFeatures(model), tensor_loaders(feats, 32, seed)
    t0 = time.perf_counter()
    result = fit(net, data["train"], data["val"], train_cfg, test_loader=data["test"])
    row = _row("order", config, seed, epochs, model, result, time.perf_counter() - t0)
    return {**row, **_config_columns(cfg, ORDER_MODEL), "frames": frames,
            "backbone": cfg.get("backbone", "frame-pretrained"), "frozen_backbone": cfg.get("backbone") != "scratch",
            "pretrain_seconds": round(pretrain_seconds, 1), "lr": ORDER_LR}


# ----------------------------------------------------------------------------- adrenal runs
@lru_cache(maxsize=4)
def slice_pretrained_cnn(seed: int = 0, epochs: int = SLICE_EPOCHS, size: int = 28) -> tuple[FrameCNN, float, float]:
    """A FrameCNN trained on single AdrenalMNIST3D slices (the middle slices ``SLICES[size]`` of every
    training clip, each with its clip's label; AdamW lr 3e-3, selected on validation slices).
    Returns (backbone, slice test AUC, seconds). Cached per (seed, size)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    net = SliceClassifier(FrameCNN(**ADRENAL_CNN))
    data = slice_loaders(loaders("adrenal", size=size, batch_size=32, seed=seed), SLICES[size], seed=seed)
    cfg = TrainConfig(epochs=epochs, lr=3e-3, seed=seed, progress=False, device="cpu")
    result = fit(net, data["train"], data["val"], cfg, test_loader=data["test"])
    return net.backbone, float(result.test["auc"]), time.perf_counter() - t0


def adrenal_backbone(kind: str, seed: int, size: int = 28) -> tuple[nn.Module | None, float]:
    """"scratch" -> None (VTN builds a new FrameCNN); "random" -> a new FrameCNN; "slice" -> a copy of
    the one trained on single slices of that size. Returns (backbone, seconds spent training it)."""
    check_choice("backbone", kind, ("scratch", "random", "slice"))
    if kind == "slice":
        backbone, _, seconds = slice_pretrained_cnn(seed, size=size)
        return copy.deepcopy(backbone), seconds
    torch.manual_seed(seed)
    return (FrameCNN(**ADRENAL_CNN) if kind == "random" else None), 0.0


def adrenal_run(config: str, seed: int, epochs: int | None = None) -> list[dict]:
    """(b): one run of ``ADRENAL_CONFIGS[config]`` on AdrenalMNIST3D (28^3, or 64^3 for ``size=64``).

    Returns its result rows, each with the per-clip test scores under ``"_scores"``: one row, or for
    ``sparse-7`` three (tested on 7 slices, then on ``SPARSE_EVAL`` slices, the same weights).
    """
    from vtlib.data import augment
    from vtlib.train import evaluate

    check_choice("config", config, list(ADRENAL_CONFIGS))
    cfg = ADRENAL_CONFIGS[config]
    size, frames = cfg.get("size", 28), cfg.get("frames")
    epochs = epochs or cfg.get("epochs", ADRENAL_EPOCHS)
    backbone, pretrain_seconds = adrenal_backbone(cfg.get("backbone", "scratch"), seed, size)
    skip = ("attention", "backbone", "freeze", "size", "frames", "epochs")
    model_kw = {**ADRENAL_MODEL, "feature_dim": ADRENAL_CNN["out_dim"], "max_frames": size,
                **{k: v for k, v in cfg.items() if k not in skip}}
    torch.manual_seed(seed)
    if backbone is None:
        backbone = FrameCNN(**ADRENAL_CNN)
    model = _vtn_model(backbone, attention=cfg.get("attention", "window"), freeze=cfg.get("freeze", False), **model_kw)
    net = model if frames is None else SparseFrames(model, frames=frames)
    data = loaders("adrenal", size=size, batch_size=32, seed=seed)
    train_cfg = TrainConfig(epochs=epochs, lr=ADRENAL_LR, augment=augment, seed=seed, progress=False, device="cpu")
    t0 = time.perf_counter()
    result = fit(net, data["train"], data["val"], train_cfg, test_loader=data["test"])
    row = _row("adrenal", config, seed, epochs, model, result, time.perf_counter() - t0)
    row = {**row, **_config_columns(cfg, ADRENAL_MODEL), "frames": frames or size, "size": size,
           "backbone": cfg.get("backbone", "scratch"), "frozen_backbone": cfg.get("freeze", False),
           "pretrain_seconds": round(pretrain_seconds, 1), "lr": ADRENAL_LR, "_scores": positive_scores(result.test)}
    rows = [row]
    for n in SPARSE_EVAL if frames else ():
        net.eval_frames = n                           # the weights fit kept, read with more slices
        test = evaluate(net, data["test"], train_cfg.task)
        rows.append({**row, "config": f"{config}@{n}", "frames": n, "test_auc": round(test["auc"], 4),
                     "test_acc": round(test["acc"], 4), "_scores": positive_scores(test)})
    net.eval_frames = None
    return rows


# -------------------------------------------------------------------------------------- cost
def window_score_count(frames: int, window: int, global_cls: bool = True) -> int:
    """Query-key pairs one head of window attention scores over ``frames`` frames + CLS (L = frames + 1):
    the band |i - j| <= window // 2, and with a global CLS its full row and column (counted once)."""
    check_positive_int("frames", frames)
    L, w = frames + 1, window // 2
    band = L * (2 * w + 1) - w * (w + 1) if w < L else L * L         # the edges cut w (w + 1) pairs
    if not global_cls:
        return band
    in_band = 2 * min(w, L - 1) + 1                                   # CLS pairs already in the band
    return band + 2 * L - 1 - in_band


def _cost_layers(dim: int, heads: int, window: int):
    from vtlib.attention import MultiHeadAttention
    from vtlib.hf.longformer import HFWindowAttention
    from vtlib.window import SlidingWindowAttention

    torch.manual_seed(0)
    ours = SlidingWindowAttention(dim=dim, heads=heads, window=window).eval()
    return {"window": ours, "window-explicit": ours, "full": MultiHeadAttention(dim=dim, heads=heads).eval(),
            "hf-longformer": HFWindowAttention(ours).eval()}


def _median_ms(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times)


def cost_rows(frames=COST_FRAMES, verbose: bool = True, **layer) -> list[dict]:
    """(c): one attention layer (``COST_LAYER``) on frames + 1 tokens, batch 1, CLS global."""
    from vtlib.cost import measure_flops

    cfg = {**COST_LAYER, **layer}
    layers = _cost_layers(**cfg)
    rows = []
    for T in frames:
        L = T + 1
        x = torch.randn(1, L, cfg["dim"], generator=torch.Generator().manual_seed(T))
        is_global = torch.zeros(1, L, dtype=torch.bool)
        is_global[0, 0] = True
        calls = {"window": lambda: layers["window"](x, None, is_global),
                 "window-explicit": lambda: layers["window"](x, None, is_global, explicit=True),
                 "full": lambda: layers["full"](x),
                 "hf-longformer": lambda: layers["hf-longformer"](x, None, is_global)}
        scores = {"window": window_score_count(T, cfg["window"]), "window-explicit": L * L, "full": L * L,
                  "hf-longformer": window_score_count(T, cfg["window"])}
        for impl, call in calls.items():
            if impl == "window-explicit" and T > EXPLICIT_MAX_FRAMES:
                continue
            with torch.no_grad():
                mem = peak_tensor_memory(call)
                flops = measure_flops(_Call(call))
                ms = _median_ms(call)
            rows.append({"frames": T, "tokens": L, "impl": impl, **cfg, "scores_per_head": scores[impl],
                         "mflops": round(flops / 1e6, 3), "peak_mib": round(mem["peak_bytes"] / 2**20, 3),
                         "largest_mib": round(mem["largest_bytes"] / 2**20, 3), "cpu_ms": round(ms, 3)})
            if verbose:
                r = rows[-1]
                print(f"T={T:>5} {impl:>15}: {r['mflops']:>9.1f} MFLOPs, peak {r['peak_mib']:>8.2f} MiB, "
                      f"{r['cpu_ms']:>8.2f} CPU-ms", flush=True)
    return rows


class _Call(nn.Module):
    """measure_flops wants a module; this one runs a closure."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self):
        return self.fn()


# ------------------------------------------------------------------------------------- sweep
RUNNERS = {"order": (order_run, ORDER_CONFIGS), "adrenal": (adrenal_run, ADRENAL_CONFIGS)}


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and sample std of test AUC/ACC and val AUC per (part, config), in first-seen order."""
    out = []
    for part in dict.fromkeys(r["part"] for r in rows):
        sub = [r for r in rows if r["part"] == part]
        for s in summarise(sub, keys=("test_auc", "test_acc", "val_auc")):
            first = next(r for r in sub if r["config"] == s["config"])
            secs = [float(r["train_seconds"]) for r in sub if r["config"] == s["config"]]
            out.append({"part": part, **s, **{k: first.get(k, "") for k in ("epochs", "params", "window", "depth",
                                                                          "global_cls", "backbone", "frozen_backbone",
                                                                          "frames", "size")},
                        "train_seconds_mean": round(sum(secs) / len(secs), 1)})
    return out


def _table_order(row: dict) -> tuple:
    """Rows in the order of the config tables (a re-run lands where its config is, not at the end)."""
    table = list(RUNNERS[row["part"]][1]) if row["part"] in RUNNERS else []
    base = row["config"].split("@")[0]
    return (list(RUNNERS).index(row["part"]) if row["part"] in RUNNERS else len(RUNNERS),
            table.index(base) if base in table else len(table), row["config"], int(row["seed"]))


def sweep(parts=("order", "adrenal"), seeds=(0, 1, 2), configs=None, out: str | Path = RESULTS / "vtn.csv",
          fresh: bool = False, verbose: bool = True) -> list[dict]:
    """Train every (part, config, seed) not yet in ``out``; rewrite ``out`` (and its summary) after each run.

    An ``adrenal`` run counts as done only when its per-clip test scores are in ``vtn_scores.csv`` too;
    a row without them (from before the scores were kept) is trained again and replaced.
    """
    out = Path(out)
    rows = [] if fresh or not out.exists() else read_csv(out)
    scores = {} if fresh else read_scores(out)
    done = {(r["part"], r["config"], str(r["seed"])) for r in rows
            if r["part"] != "adrenal" or (r["part"], r["config"], str(r["seed"])) in scores}
    prov = {**provenance(), "command": COMMAND}
    t_start = time.perf_counter()
    for part in parts:
        runner, table = RUNNERS[part]
        for config in (configs or table):
            if config not in table:
                continue
            for seed in seeds:
                if (part, config, str(seed)) in done:
                    continue
                new = runner(config, seed)
                new = new if isinstance(new, list) else [new]
                names = {r["config"] for r in new}
                rows = [r for r in rows                # a re-run replaces its old rows
                        if not (r["part"] == part and r["config"] in names and str(r["seed"]) == str(seed))]
                for row in new:
                    key = (part, row["config"], str(seed))
                    if "_scores" in row:
                        scores[key] = row.pop("_scores")
                    rows.append({**row, **prov})
                done.add((part, config, str(seed)))
                rows.sort(key=_table_order)
                write_csv(rows, out)
                write_csv(summary_rows(rows), out.with_name(out.stem + "_summary.csv"))
                write_scores(scores, out)
                if verbose:
                    for row in new:
                        print(f"[{time.perf_counter() - t_start:6.0f} s] {part:>7} {row['config']:>17} seed {seed}: "
                              f"test AUC {row['test_auc']:.3f} ACC {row['test_acc']:.3f} (val AUC "
                              f"{row['val_auc']:.3f}, best epoch {row['best_epoch']}/{row['epochs']}, "
                              f"{row['train_seconds']} s)", flush=True)
    if "adrenal" in parts and scores:
        write_csv(interval_rows(rows, scores), out.with_name(out.stem + "_intervals.csv"))
    return rows


def interval_rows(rows: list[dict], scores: dict[tuple[str, str, str], list[float]]) -> list[dict]:
    """For every ``adrenal`` config: the pooled 95 % interval of its mean test AUC and the paired difference
    from its reference (``REFERENCE``, else ``scratch``): ``common.paired_interval_rows``."""
    from vtlib.data import load_split

    y = load_split("adrenal", "test")[1].numpy()
    runs: dict[str, dict[str, list[float]]] = {}
    for (part, config, seed), s in scores.items():
        if part == "adrenal":
            runs.setdefault(config, {})[seed] = s
    order = list(dict.fromkeys(r["config"] for r in rows if r["part"] == "adrenal" and r["config"] in runs))
    return paired_interval_rows(y, {c: runs[c] for c in order}, lambda c: REFERENCE.get(c, "scratch"))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=None, help="default: every config of each part")
    parser.add_argument("--frames", type=int, nargs="+", default=list(COST_FRAMES),
                        help="frame counts for --parts cost")
    parser.add_argument("--out", default=str(RESULTS / "vtn.csv"))
    parser.add_argument("--fresh", action="store_true", help="ignore the rows already in --out")
    args = parser.parse_args(argv)
    known = set(ORDER_CONFIGS) | set(ADRENAL_CONFIGS)
    for c in args.configs or ():
        check_choice("--configs", c, sorted(known))
    torch.set_num_threads(1)                          # the course machine is shared; timings are one thread
    out = Path(args.out)
    rows: list[dict] = []
    if "cost" in args.parts:
        prov = {**provenance(), "command": COMMAND, "argv": " ".join(sys.argv[1:] if argv is None else argv)}
        cost = [{**r, **prov} for r in cost_rows(tuple(args.frames))]
        print("wrote", write_csv(cost, out.with_name(out.stem + "_cost.csv")))
    train_parts = [p for p in args.parts if p != "cost"]
    if train_parts:
        t0 = time.perf_counter()
        rows = sweep(train_parts, tuple(args.seeds), args.configs, out, args.fresh)
        from vtlib.experiments.common import format_summary

        for part in train_parts:
            summary = [r for r in summary_rows(rows) if r["part"] == part]
            if summary:
                print(f"\n{part}:")
                print(format_summary(summary, keys=("test_auc", "test_acc")))
        print(f"wrote {out} and {out.with_name(out.stem + '_summary.csv')} ({time.perf_counter() - t0:.0f} s)")
    return rows


if __name__ == "__main__":
    main()
