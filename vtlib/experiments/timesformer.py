"""TimeSformer Table 1 at small scale: five attention schemes, one backbone (notebook 07).

    python -m vtlib.experiments.timesformer                      # all three parts, 3 seeds
    python -m vtlib.experiments.timesformer --part direction     # (a) only
    python -m vtlib.experiments.timesformer --part cost          # (c) only, no training
    python -m vtlib.experiments.timesformer --part probes        # (d) joint attention, other settings

Every model: 8 frames of 28 x 28 (AdrenalMNIST3D: ``vtlib.data.sample_frames`` keeps 8 of its 28
slices), patch 7 (16 patches per frame, 128 tokens + CLS), dim 48, depth 2, 4 heads, MLP ratio 4,
CLS readout. Configs (``CONFIGS``): the five schemes of the paper's Table 1, plus three divided
variants: "divided-cls" (the paper's equation for the CLS: a key in temporal attention too),
"divided-fc-random" (temporal fc not zero-initialised) and "divided-time-zero" (zero time embedding,
i.e. exactly the reference code's initialisation; see below).

(a) ``direction`` (synthetic, ``vtlib.data.make_motion_videos``): the label is the direction of
    motion and both classes hold the same frames, so a model blind to frame order is at chance.
    Configs: space, joint, divided and the three divided variants (``DATASET_CONFIGS``).
(b) ``adrenal``: AdrenalMNIST3D, train-time augmentation (flips, rotations, intensity); the five
    schemes and divided-cls.
(c) ``cost``: FLOPs (``vtlib.cost.measure_flops``) and CPU milliseconds per clip against the number
    of frames (28 x 28, 4 ... 128 frames) and the frame size (8 frames, 28 ... 112 pixels), for every
    scheme, on random clips (cost does not depend on content), like the paper's Figure 3.

The time embedding starts from a small random draw here (``time_init="normal"``, std 0.02), not from
zero as in the reference code. With a zero time embedding every scheme is exactly blind to frame order
at init, and on the direction task (where both classes hold the same frames) the gradient that breaks
the tie is small: in probe runs (seed 0) divided attention with the reference's inits stayed at chance
for 8 epochs and escaped after 10 of 20. The reference zero-inits because it starts from an image
model; "divided-time-zero" measures the reference init here.

(d) ``probes``: joint attention stays at chance on (a). Does another learning rate, more clips, larger
    patches or a larger sin-cos time code rescue it? One seed per setting (``JOINT_PROBES``),
    written to ``timesformer_probes.csv`` with the train loss and validation AUC of every epoch.

Outputs in ``results/``: ``timesformer.csv`` (one row per dataset, config and seed: test AUC/ACC of
the epoch selected on validation, parameters, MFLOPs per clip, comparisons per patch query, CPU
throughput), ``timesformer_summary.csv`` (mean and sample std over seeds) and ``timesformer_cost.csv``.
Throughput and times use ONE CPU thread and ``time.process_time`` (CPU seconds of this process), so
other jobs on a shared machine barely change them; they still depend on the CPU model.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from vtlib.cost import cpu_ms_per_clip, measure_flops
from vtlib.data import augment, sample_frames
from vtlib.errors import check_choice, check_positive_int
from vtlib.experiments.common import (
    RESULTS,
    dataset_summary,
    loaders,
    merge_rows,
    provenance,
    report,
    run,
    write_csv,
    write_per_dataset,
)
from vtlib.models.timesformer import TimeSformer
from vtlib.train import TrainConfig
from vtlib.utils import count_parameters

CONFIGS: dict[str, dict] = {
    "space": dict(attention="space"),
    "joint": dict(attention="joint"),
    "divided": dict(attention="divided"),
    "divided-cls": dict(attention="divided", cls_in_time=True),        # the paper's equation for the CLS
    "divided-fc-random": dict(attention="divided", temporal_init="default"),   # temporal fc not zeroed
    "divided-time-zero": dict(attention="divided", time_init="zeros"),  # the reference code's inits
    "local_global": dict(attention="local_global"),
    "axial": dict(attention="axial"),
}
# Which configs each dataset trains: Table 1's five schemes on AdrenalMNIST3D; on the motion task the
# lesson (space only vs joint vs divided) and the two init choices of divided attention.
DATASET_CONFIGS = {
    "direction": ("space", "joint", "divided", "divided-cls", "divided-fc-random", "divided-time-zero"),
    "adrenal": ("space", "joint", "divided", "divided-cls", "local_global", "axial"),
}
PAPER = {  # Table 1 of the paper: params (M), K400 top-1, SSv2 top-1 (Bertasius et al., ICML 2021)
    "space": (85.9, 76.9, 36.6), "joint": (85.9, 77.4, 58.5), "divided": (121.4, 78.0, 59.5),
    "local_global": (121.4, 75.9, 56.3), "axial": (156.8, 73.5, 56.2),
}
DATASETS = ("direction", "adrenal")
MODEL = dict(patch=7, dim=48, depth=2, heads=4, mlp_ratio=4.0, time_init="normal")
FRAMES, SIZE = 8, 28
COST_FRAMES = (4, 8, 16, 32, 64, 128)
COST_SIZES = (28, 56, 84, 112)
COMMAND = "python -m vtlib.experiments.timesformer"
# (d): name -> (training clips, epochs, lr, model overrides, scale of a sin-cos time code or None)
JOINT_PROBES: dict[str, tuple[int, int, float, dict, float | None]] = {
    "lr 1e-3 (as in (a)), 12 epochs": (1024, 12, 1e-3, {}, None),
    "lr 3e-4": (1024, 12, 3e-4, {}, None),
    "lr 1e-4": (1024, 12, 1e-4, {}, None),
    "4096 clips, 8 epochs": (4096, 8, 1e-3, {}, None),
    "patch 14 (4 patches per frame)": (1024, 12, 1e-3, {"patch": 14}, None),
    "time code = sin-cos (row norm 4.9)": (1024, 12, 1e-3, {}, 1.0),
    "dim 64, depth 4": (1024, 12, 1e-3, {"dim": 64, "depth": 4}, None),
}


def build(config: str, frames: int = FRAMES, size: int = SIZE, **overrides) -> TimeSformer:
    """The TimeSformer of ``config`` (a key of CONFIGS) for clips (B, 1, frames, size, size)."""
    check_choice("config", config, list(CONFIGS))
    return TimeSformer(num_classes=2, video_shape=(frames, size, size), **{**MODEL, **CONFIGS[config], **overrides})


def clip_loaders(dataset: str, frames: int = FRAMES, batch_size: int = 32, n_train: int = 1024,
                 seed: int = 0) -> dict[str, DataLoader]:
    """Train/val/test loaders of 28 x 28 clips with ``frames`` frames.

    "direction" clips are generated with that many frames; AdrenalMNIST3D keeps ``frames`` evenly
    spaced slices of its 28 (``sample_frames``). Same shuffling and seeding as ``common.loaders``.
    """
    check_choice("dataset", dataset, DATASETS)
    check_positive_int("frames", frames)
    if dataset != "adrenal":
        return loaders(dataset, size=SIZE, batch_size=batch_size, seed=seed, n_train=n_train, frames=frames)
    out = {}
    for split, loader in loaders("adrenal", size=SIZE, batch_size=batch_size, seed=seed).items():
        x, y = loader.dataset.tensors
        out[split] = DataLoader(TensorDataset(sample_frames(x, frames), y), batch_size=batch_size,
                                shuffle=split == "train", generator=torch.Generator().manual_seed(seed), num_workers=0)
    return out


def cost_columns(model: TimeSformer, batch: int = 8, repeats: int = 3) -> dict:
    """Parameters, tokens, comparisons, MFLOPs and CPU time per clip on random clips."""
    T, H, W = model.video_shape
    x = torch.randn(batch, 1, T, H, W, generator=torch.Generator().manual_seed(0))
    return {"params": count_parameters(model), "tokens": model.num_tokens,
            "comparisons_per_patch": model.comparisons_per_patch(),
            "score_entries": model.attention_score_entries(),
            "mflops": round(measure_flops(model.eval(), x[:1]) / 1e6, 3),
            "cpu_ms_per_clip": round(cpu_ms_per_clip(model, x, repeats), 3)}


def cost_sweep(configs=tuple(PAPER), frames=COST_FRAMES, sizes=COST_SIZES, verbose: bool = True) -> list[dict]:
    """(c): cost against the frame count (28 x 28) and against the frame size (8 frames)."""
    points = [("frames", f, SIZE) for f in frames] + [("size", FRAMES, s) for s in sizes if s != SIZE]
    rows = []
    for axis, f, s in points:
        for c in configs:
            torch.manual_seed(0)
            batch = 8 if f * (s // 7) ** 2 <= 512 else 2
            row = {"axis": axis, "config": c, "frames": f, "size": s, **cost_columns(build(c, f, s), batch=batch)}
            rows.append(row)
            if verbose:
                print(f"{axis:>6} T={f:>3} {s:>3}px {c:>13}: {row['tokens']:>5} tokens, {row['mflops']:>9.1f} MFLOPs, "
                      f"{row['cpu_ms_per_clip']:>8.2f} CPU-ms/clip", flush=True)
    return rows


def train_sweep(dataset: str, seeds=(0, 1, 2), epochs: int = 8, lr: float = 1e-3, configs=None,
                n_train: int = 1024, verbose: bool = True) -> list[dict]:
    """Train every config once per seed; one row per run, with the cost columns."""
    configs = DATASET_CONFIGS[dataset] if configs is None else configs
    data = clip_loaders(dataset, n_train=n_train)
    # Flips would swap the label of a direction clip (left-right), so only adrenal augments.
    cfg = TrainConfig(epochs=epochs, lr=lr, augment=augment if dataset == "adrenal" else None, progress=False)
    rows = []
    for c in configs:
        torch.manual_seed(0)
        kw = {"cls_in_time": False, "temporal_init": "zeros", **MODEL, **CONFIGS[c]}
        extra = {"dataset": dataset, "attention": kw["attention"], "cls_in_time": kw["cls_in_time"],
                 "temporal_init": kw["temporal_init"], "time_init": kw["time_init"], "lr": lr, "frames": FRAMES,
                 "train_augment": dataset == "adrenal", **cost_columns(build(c), batch=32, repeats=5)}
        extra["clips_per_cpu_s"] = round(1000 / extra.pop("cpu_ms_per_clip"), 1)
        res = run(c, lambda: build(c), data, cfg, seeds, extra=extra)
        rows += res
        if verbose:
            report(res, f"{dataset:>9} {c:>13}")
    return rows


def joint_probes(probes=tuple(JOINT_PROBES), seed: int = 0, verbose: bool = True) -> list[dict]:
    """(d): joint attention on the direction task under other training settings, one seed each."""
    from vtlib.position import sincos_1d
    from vtlib.train import fit
    from vtlib.utils import seed_everything

    rows, cache = [], {}
    for name in probes:
        n_train, epochs, lr, over, scale = JOINT_PROBES[name]
        data = cache.setdefault(n_train, clip_loaders("direction", n_train=n_train))
        seed_everything(seed)
        model = build("joint", **over)
        if scale is not None:
            with torch.no_grad():
                model.time_pos.copy_(scale * sincos_1d(model.num_frames, model.dim)[None])
        t0 = time.process_time()
        r = fit(model, data["train"], data["val"], TrainConfig(epochs=epochs, lr=lr, seed=seed, progress=False),
                test_loader=data["test"])
        row = {"probe": name, "seed": seed, "n_train": n_train, "epochs": epochs, "lr": lr,
               "overrides": repr(over), "sincos_time_scale": "" if scale is None else scale,
               "best_epoch": r.best_epoch, "test_auc": round(r.test["auc"], 4), "test_acc": round(r.test["acc"], 4),
               "train_loss_per_epoch": " ".join(f"{h['train_loss']:.3f}" for h in r.history),
               "val_auc_per_epoch": " ".join(f"{h['val_auc']:.2f}" for h in r.history),
               "cpu_seconds": round(time.process_time() - t0, 1)}
        rows.append(row)
        if verbose:
            print(f"{name:>32}: test AUC {row['test_auc']:.3f}, train loss {row['train_loss_per_epoch']}", flush=True)
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and sample std per (dataset, config), with the cost columns and the paper's numbers."""
    out = dataset_summary(rows, ("epochs", "params", "mflops", "comparisons_per_patch"))
    for r in out:
        r.update(zip(("paper_params_m", "paper_k400", "paper_ssv2"), PAPER.get(r["config"], ("", "", ""))))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["all", "direction", "adrenal", "cost", "probes"], default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs-direction", type=int, default=8)
    parser.add_argument("--epochs-adrenal", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-train", type=int, default=1024, help="training clips for the direction task")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=None,
                        help="default: DATASET_CONFIGS of each dataset")
    parser.add_argument("--out", default=str(RESULTS / "timesformer.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # several jobs share the CPU; the timings are single-thread by design

    path = Path(args.out)
    prov = {**provenance(), "command": COMMAND, "argv": " ".join(sys.argv[1:] if argv is None else argv)}
    model_cols = {k: MODEL[k] for k in ("patch", "dim", "depth", "heads")}
    if args.part in ("all", "cost"):
        rows = [{**r, **model_cols, "time_init": MODEL["time_init"], **prov} for r in cost_sweep()]
        print("wrote", write_csv(rows, path.with_name(path.stem + "_cost.csv")))
    if args.part in ("all", "probes"):
        rows = [{**r, **prov} for r in joint_probes(seed=args.seeds[0])]
        print("wrote", write_csv(rows, path.with_name(path.stem + "_probes.csv")))
    parts = {"all": DATASETS, "direction": ("direction",), "adrenal": ("adrenal",), "cost": (),
             "probes": ()}[args.part]
    if parts:
        new = []
        for ds in parts:
            epochs = args.epochs_direction if ds == "direction" else args.epochs_adrenal
            new += [{**r, **model_cols, **prov}
                    for r in train_sweep(ds, tuple(args.seeds), epochs, args.lr, args.configs, args.n_train)]
        write_per_dataset(merge_rows(path, new, "dataset"), path, summary_rows)


if __name__ == "__main__":
    main()
