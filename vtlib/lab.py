"""The ablation lab: the course recipe, a resumable sweep runner, and statistics on every row.

    python -m vtlib.lab recipe --dataset adrenal --size 28            # the recipe, 5 seeds
    python -m vtlib.lab sweep --name ingredients --configs recipe no_tta no_aug3d --seeds 0 1 2
    python -m vtlib.lab report --name ingredients --reference recipe  # table + paired intervals

A *config* is the recipe with named changes (``CONFIGS``); a *run* is one (config, dataset, size,
seed). Each finished run is one JSON file in ``results/lab/<sweep>/`` holding its row (metrics,
parameters, FLOPs, minutes, provenance) and its per-clip validation and test scores, so intervals
and paired tests are computed afterwards without retraining. A sweep skips runs whose file exists;
a run interrupted midway resumes from its ``fit`` checkpoint (kept in ``.ckpt/``, not committed).

Selection never looks at the test split: ``fit`` keeps the epoch with the best validation AUC,
the decision threshold for balanced accuracy is chosen on validation, and the test split is read
once per run, at the end.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from vtlib import stats
from vtlib.cost import measure_flops
from vtlib.data import augment, dataset_info, load_split
from vtlib.errors import bad_arg, check_choice
from vtlib.experiments.common import read_csv, write_csv
from vtlib.models.convvit import ConvViT
from vtlib.models.resnet3d import ResNet3D
from vtlib.models.vivit import ViViT
from vtlib.train import TrainConfig, evaluate, fit
from vtlib.utils import count_parameters, get_device, is_interactive

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "lab"

# ----------------------------------------------------------------------------- the recipe
# Every ingredient has a published reason to help a transformer on little data; each one's
# contribution is measured by the "no_*" configs below (ViViT Table 4 in spirit).
RECIPE = {
    "model": "convvit",                 # 3D convolutional tokenizer + ViT (vtlib.models.convvit)
    "model_args": {"stem": (8, 16, 32), "dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2.0,
                   "drop_path": 0.1, "pool": "attn", "position": "learned"},
    "epochs": 30, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "warmup_epochs": 3,
    "label_smoothing": 0.1, "mixup_alpha": 0.0,
    "augment": {"flip": True, "flip_time": True, "rot90": True, "scale": (0.8, 1.2)},
    "tta": True,                        # evaluate on the 8 flips of each volume, average the logits
    "schedule": "cosine",               # per-step warm-up + cosine (vtlib.train)
    "eval_scale": None,                 # multiply clips by this at evaluation (MedMNIST's 0.5)
}

# MedMNIST v2's protocol for its 3D ResNet-18 rows (Yang et al. 2023): Adam lr 1e-3, batch 32,
# 100 epochs, lr x0.1 at 50 % and 75 %, voxels x U(0, 1) in training and x 0.5 at evaluation for
# the shape datasets, best validation AUC kept (as a true copy: their script once kept a reference).
MEDMNIST = {"epochs": 100, "lr": 1e-3, "weight_decay": 0.0, "warmup_epochs": 0, "label_smoothing": 0.0,
            "schedule": "multistep", "augment": {"flip": False, "rot90": False, "scale": (0.0, 1.0)},
            "eval_scale": 0.5, "tta": False}

CONFIGS = {
    "recipe": {},
    "no_tta": {"tta": False},
    "no_aug3d": {"augment": {"flip": True, "flip_time": False, "rot90": True, "scale": (0.8, 1.2)}},
    "no_aug": {"augment": None},
    "no_drop_path": {"model_args": {"drop_path": 0.0}},
    "no_smoothing": {"label_smoothing": 0.0},
    "short": {"epochs": 10},
    "patch_tokens": {"model": "vivit", "model_args": {"tubelet": (4, 7, 7), "dim": 64, "depth": 4, "heads": 4,
                                                      "mlp_ratio": 2.0, "drop_path": 0.1, "pool": "attn"}},
    # the yardstick: a small 3D ResNet (MedMNIST's CIFAR-style design, one block per stage), same
    # training recipe; scored without TTA (8x its inference cost), so compare it with no_tta too
    "cnn": {"model": "resnet3d", "model_args": {"widths": (8, 16, 32, 64), "blocks": (1, 1, 1, 1), "conv": "3d"},
            "tta": False},
    "cnn_25d": {"model": "resnet3d", "model_args": {"widths": (8, 16, 32, 64), "blocks": (1, 1, 1, 1),
                                                    "conv": "2.5d"}, "tta": False},
    "cnn_acs": {"model": "resnet3d", "model_args": {"widths": (8, 16, 32, 64), "blocks": (1, 1, 1, 1),
                                                    "conv": "acs"}, "tta": False},
    **{f"medmnist_r18_{name}": {"model": "resnet3d", "model_args": {"conv": conv}, **MEDMNIST}
       for name, conv in (("3d", "3d"), ("25d", "2.5d"), ("acs", "acs"))},
}


def config(name: str) -> dict:
    """The recipe with config ``name``'s changes applied (``model_args`` replaced when the model changes)."""
    check_choice("config", name, CONFIGS)
    cfg, change = copy.deepcopy(RECIPE), copy.deepcopy(CONFIGS[name])
    if "model" in change:
        cfg["model_args"] = {}
    cfg["model_args"].update(change.pop("model_args", {}))
    cfg.update(change)
    return cfg


def build_model(cfg: dict, num_classes: int, size: int) -> nn.Module:
    kind, args = cfg["model"], dict(cfg["model_args"])
    shape = (size, size, size)
    if kind == "convvit":
        if size == 64:   # one more stem stage keeps a 4x4x4 token grid at 64^3
            args["stem"] = (*args["stem"][:1], *args["stem"])
        return ConvViT(num_classes=num_classes, video_shape=shape, **args)
    if kind == "vivit":
        return ViViT(num_classes=num_classes, video_shape=shape, **args)
    if kind == "resnet3d":
        return ResNet3D(num_classes=num_classes, **args)
    raise bad_arg("model", "convvit, vivit or resnet3d", repr(kind), "fix the config")


class EvalScale(nn.Module):
    """Multiply clips by ``factor`` in eval mode only (MedMNIST's x 0.5 after x U(0, 1) in training)."""

    def __init__(self, model: nn.Module, factor: float):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x if self.training else x * self.factor)


class FlipTTA(nn.Module):
    """Test-time augmentation: in eval mode, mean logits over the 8 flips of (T, H, W).

    The label of a volume does not change when it is mirrored, so averaging the model over the
    mirrored copies removes some of its variance at no training cost (8x the inference time).
    In train mode it is the bare model.
    """

    FLIPS = [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self.model(x)
        return torch.stack([self.model(x.flip(d) if d else x) for d in self.FLIPS]).mean(0)


# ----------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class Run:
    """One training run: a config of ``CONFIGS`` on one dataset, clip size and seed."""
    config: str
    dataset: str = "adrenal"
    size: int = 28
    seed: int = 0

    @property
    def id(self) -> str:
        return f"{self.config}-{self.dataset}{self.size}-s{self.seed}"


def _loaders(dataset: str, size: int, batch_size: int, seed: int) -> dict[str, DataLoader]:
    out = {}
    for split in ("train", "val", "test"):
        x, y = load_split(dataset, split, size=size)
        out[split] = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=split == "train",
                                generator=torch.Generator().manual_seed(seed))
    return out


def _augmenter(spec: dict | None):
    if spec is None:
        return None
    spec = dict(spec)

    def aug(x: Tensor, generator: torch.Generator) -> Tensor:
        return augment(x, generator, **spec)
    return aug


def prepare(name: str, dataset: str, size: int, seed: int):
    """What a run of config ``name`` trains: (cfg, dataset info, loaders, model, net).

    ``net`` is the model wrapped as the config says (``EvalScale``, then ``FlipTTA``); ``fit`` trains
    it. The model is built right after ``torch.manual_seed(seed)``, so a seed gives the same weights.
    """
    cfg = config(name)
    info = dataset_info(dataset)
    data = _loaders(dataset, size, cfg["batch_size"], seed)
    torch.manual_seed(seed)
    model = build_model(cfg, info.num_classes, size)
    net = EvalScale(model, cfg["eval_scale"]) if cfg["eval_scale"] is not None else model
    net = FlipTTA(net) if cfg["tta"] else net
    return cfg, info, data, model, net


def train_config(cfg: dict, task: str, seed: int, **overrides) -> TrainConfig:
    """The ``TrainConfig`` of a lab config; ``overrides`` set other fields (epochs=1, device=...)."""
    fields = {"epochs": cfg["epochs"], "lr": cfg["lr"], "weight_decay": cfg["weight_decay"],
              "warmup_epochs": cfg["warmup_epochs"], "label_smoothing": cfg["label_smoothing"],
              "mixup_alpha": cfg["mixup_alpha"], "schedule": cfg["schedule"], "task": task, "seed": seed}
    if "augment" not in overrides:
        fields["augment"] = _augmenter(cfg["augment"])
    return TrainConfig(**{**fields, **overrides})


def train_run(run: Run, ckpt_dir: Path | None = None, progress: bool | None = None) -> dict:
    """Train one run and return its record: ``row`` (metrics, cost, provenance) and per-clip scores."""
    cfg, info, data, model, net = prepare(run.config, run.dataset, run.size, run.seed)
    params = count_parameters(model)
    flops = measure_flops(copy.deepcopy(model).eval(), torch.zeros(1, 1, run.size, run.size, run.size))
    ckpt = None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt = str(ckpt_dir / f"{run.id}.pt")
    tcfg = train_config(cfg, info.task, run.seed, progress=progress, checkpoint_path=ckpt)
    t0 = time.perf_counter()
    result = fit(net, data["train"], data["val"], tcfg, test_loader=data["test"])
    train_s = sum(h["seconds"] for h in result.history)
    val = evaluate(net, data["val"], info.task)
    test = result.test
    row = {"run": run.id, "config": run.config, "dataset": run.dataset, "size": run.size, "seed": run.seed,
           "model": cfg["model"], "epochs": cfg["epochs"], "best_epoch": result.best_epoch,
           "val_auc": round(result.best_val["auc"], 4), "test_auc": round(test["auc"], 4),
           "test_acc": round(test["acc"], 4), "params": params, "mflops": round(flops / 1e6, 2),
           "train_minutes": round(train_s / 60, 2), "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
           "device": str(get_device()), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "platform": platform.platform()}
    record = {"row": row, "history": result.history,
              "val": {"labels": val["labels"].tolist(), "scores": val["scores"].tolist()},
              "test": {"labels": test["labels"].tolist(), "scores": test["scores"].tolist()}}
    return record


# ----------------------------------------------------------------------------- sweeps
def sweep_dir(name: str, root: Path | None = None) -> Path:
    return (root or RESULTS) / name


def _write_json(record: dict, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)                     # a killed process never leaves a half-written run


def _claim(path: Path) -> bool:
    """Mark a run as taken by this process, so two processes can share one sweep (one run each).

    A claim left by a process that no longer exists (killed) is taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text() or 0)
                os.kill(pid, 0)               # raises if that process is gone
                return pid == os.getpid()
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)
                continue
            except PermissionError:           # alive, owned by another user
                return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def sweep(name: str, runs: list[Run], root: Path | None = None, progress: bool | None = None) -> list[dict]:
    """Run every ``Run`` not yet in ``results/lab/<name>/``; return all records, finished ones included.

    Safe to interrupt: finished runs are files; the run in flight resumes from its checkpoint.
    Two processes may run the same sweep at once (say one per core): each claims a run before
    training it, and skips runs claimed by the other.
    """
    if not runs:
        raise bad_arg("runs", "at least one Run", "an empty list", "pass configs and seeds")
    folder = sweep_dir(name, root)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [r for r in runs if not (folder / f"{r.id}.json").exists()]
    show = is_interactive() if progress is None else progress
    for run in tqdm(todo, desc=f"sweep {name}", disable=not show):
        if (folder / f"{run.id}.json").exists() or not _claim(folder / ".ckpt" / f"{run.id}.claim"):
            continue                          # another process finished it, or is running it now
        try:
            record = train_run(run, ckpt_dir=folder / ".ckpt", progress=False)
            _write_json(record, folder / f"{run.id}.json")
            (folder / ".ckpt" / f"{run.id}.pt").unlink(missing_ok=True)
        finally:
            (folder / ".ckpt" / f"{run.id}.claim").unlink(missing_ok=True)
        if not show:
            r = record["row"]
            print(f"{run.id}: best epoch {r['best_epoch']}, val AUC {r['val_auc']:.3f}, "
                  f"{r['train_minutes']:.1f} min", flush=True)
    return load_sweep(name, root, runs)


def load_sweep(name: str, root: Path | None = None, runs: list[Run] | None = None) -> list[dict]:
    """The records of a sweep (all of them, or those of ``runs``), in file-name order."""
    folder = sweep_dir(name, root)
    if not folder.is_dir():
        raise bad_arg("name", "a sweep folder in results/lab", str(folder),
                      f"run: python -m vtlib.lab sweep --name {name} --configs ...")
    wanted = None if runs is None else {r.id for r in runs}
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if wanted is None or p.stem in wanted]


def positive_scores(record: dict, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    d = record[split]
    return np.asarray(d["labels"]), np.asarray(d["scores"])[:, -1]


def add_threshold_metrics(record: dict) -> dict:
    """Binary tasks: the threshold maximising VALIDATION balanced accuracy, and the test balanced
    accuracy and majority-class rate at it (added to ``record["row"]``; returns the record)."""
    row = record["row"]
    if "test_bal_acc" in row or np.asarray(record["test"]["scores"]).shape[1] != 2:
        return record
    y_val, s_val = positive_scores(record, "val")
    y, s = positive_scores(record, "test")
    thr = stats.choose_threshold(y_val, s_val)
    row["threshold"] = round(thr, 4)
    row["test_bal_acc"] = round(stats.balanced_accuracy(y, s, thr), 4)
    row["majority_acc"] = round(float(max(y.mean(), 1 - y.mean())), 4)
    return record


def summarize(records: list[dict], reference: str | None = None, n_boot: int = 2000) -> list[dict]:
    """One row per (config, dataset, size): mean ± std over seeds, the pooled interval (seed and
    test-set noise), and, against ``reference``, the paired difference of mean AUC with its interval.

    Intervals need binary labels (``vtlib.stats``); for multi-class datasets they are left out (NaN)
    and only the mean ± std of the one-vs-rest AUC is reported.
    """
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        r = add_threshold_metrics(rec)["row"]
        groups.setdefault((r["config"], r["dataset"], r["size"]), []).append(rec)
    out = []
    for (cfg, ds, size), recs in groups.items():
        recs = sorted(recs, key=lambda rec: rec["row"]["seed"])
        y = positive_scores(recs[0])[0]
        scores = [positive_scores(rec)[1] for rec in recs]
        rows = [rec["row"] for rec in recs]
        row = {"config": cfg, "dataset": ds, "size": size, "seeds": len(recs)}
        for k in ("test_auc", "test_acc", "test_bal_acc"):
            if k in rows[0]:
                m, s = stats.mean_std([r[k] for r in rows])
                row[f"{k}_mean"], row[f"{k}_std"] = round(m, 4), round(s, 4)
        binary = np.asarray(recs[0]["test"]["scores"]).shape[1] == 2
        ci = stats.pooled_interval(y, scores, n_boot=n_boot) if binary else None
        row["auc_low"], row["auc_high"] = (round(ci.low, 4), round(ci.high, 4)) if ci else (math.nan, math.nan)
        row["majority_acc"] = rows[0].get("majority_acc")
        row["params"], row["mflops"] = rows[0]["params"], rows[0]["mflops"]
        row["train_minutes"] = round(float(np.mean([r["train_minutes"] for r in rows])), 2)
        if reference is not None and cfg != reference and binary:
            ref = {rec["row"]["seed"]: rec for rec in records if rec["row"]["config"] == reference
                   and rec["row"]["dataset"] == ds and rec["row"]["size"] == size}
            common = sorted(set(ref) & {rec["row"]["seed"] for rec in recs})   # paired: the same seeds
            if common:
                mine = {rec["row"]["seed"]: rec for rec in recs}
                cmp = stats.paired_seeds(y, [positive_scores(mine[k])[1] for k in common],
                                         [positive_scores(ref[k])[1] for k in common], n_boot=n_boot)
                row["paired_seeds"] = len(common)
                row[f"minus_{reference}"], row["diff_low"], row["diff_high"] = (
                    round(cmp.diff, 4), round(cmp.low, 4), round(cmp.high, 4))
        out.append(row)
    return out


def format_table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        line = (f"{r['config']:<14}{r['dataset']}{r['size']:<4} n={r['seeds']}  AUC {r['test_auc_mean']:.3f} ± "
                f"{r['test_auc_std']:.3f} [{r['auc_low']:.3f}, {r['auc_high']:.3f}]  ACC {r['test_acc_mean']:.3f}")
        if "test_bal_acc_mean" in r:
            line += f"  bal.ACC {r['test_bal_acc_mean']:.3f}"
        line += f"  {r['train_minutes']:.1f} min"
        diff = next((k for k in r if k.startswith("minus_")), None)
        if diff:
            line += f"  {diff} {r[diff]:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
        lines.append(line)
    return "\n".join(lines)


def write_summary(name: str, rows: list[dict], root: Path | None = None) -> Path:
    """``results/lab/<name>_summary.csv``, written atomically."""
    return write_csv(rows, sweep_dir(name, root).with_name(f"{name}_summary.csv"))


# ----------------------------------------------------------------------------- earlier notebooks
# Each earlier notebook's headline AdrenalMNIST3D comparison: (notebook, results file, filter on its
# rows, config a, config b). Those sweeps kept per-seed AUCs but no per-clip scores, so their
# intervals are approximate (``stats.approx_paired_from_aucs``); the lab's own rows are exact.
REVISIT = [
    ("01", "embedding", {}, "tubelet-random", "tubelet-central"),
    ("01", "embedding", {}, "tubelet-random", "uniform"),
    ("02", "positions", {}, "adrenal/space", "adrenal/none"),
    ("02", "positions", {}, "adrenal/spacetime", "adrenal/none"),
    ("03", "pooling", {}, "attn", "cls"),
    ("05", "vivit_model1", {}, "long", "notebook"),
    ("06", "vivit_variants", {"dataset": "adrenal"}, "model2-fe", "model1-joint"),
    ("06", "vivit_variants", {"dataset": "adrenal"}, "model2-fe", "model2-avgpool"),
    ("07", "timesformer", {"dataset": "adrenal"}, "divided", "space"),
    ("08", "videomae", {"fraction": "1.0"}, "pretrained", "scratch"),
    ("08", "videomae", {"fraction": "0.1"}, "pretrained", "scratch"),
    ("09", "tubevit", {}, "tubevit-28", "vivit-28"),
    ("09", "tubevit", {}, "tubevit-64", "vivit-64"),
]


def revisit(n_pos: int = 69, n_neg: int = 229, results: Path | None = None) -> list[dict]:
    """The earlier notebooks' headline comparisons with an (approximate) paired 95 % interval."""
    folder = results or REPO / "results"
    out = []
    for nb, name, where, a, b in REVISIT:
        rows = [r for r in read_csv(folder / f"{name}.csv") if all(r.get(k) == v for k, v in where.items())]
        by = {c: {int(r["seed"]): float(r["test_auc"]) for r in rows if r["config"] == c} for c in (a, b)}
        seeds = sorted(set(by[a]) & set(by[b]))
        cmp = stats.approx_paired_from_aucs([by[a][k] for k in seeds], [by[b][k] for k in seeds], n_pos, n_neg)
        out.append({"notebook": nb, "results": f"results/{name}.csv", "a": a, "b": b, "seeds": len(seeds),
                    "diff": cmp.diff, "low": cmp.low, "high": cmp.high,
                    "resolved": bool(cmp.low > 0 or cmp.high < 0)})
    return out


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vtlib.lab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("recipe", "sweep"):
        s = sub.add_parser(cmd)
        s.add_argument("--dataset", nargs="+", default=["adrenal"])
        s.add_argument("--size", type=int, nargs="+", default=[28])
        s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4] if cmd == "recipe" else [0, 1, 2])
        s.add_argument("--name", default="recipe" if cmd == "recipe" else None, required=cmd == "sweep")
        if cmd == "sweep":
            s.add_argument("--configs", nargs="+", required=True, choices=sorted(CONFIGS))
        s.add_argument("--threads", type=int, default=1)
    r = sub.add_parser("report")
    r.add_argument("--name", nargs="+", required=True, help="one or more sweeps, read together")
    r.add_argument("--reference", default=None)
    args = p.parse_args(argv)
    if args.cmd == "report":
        rows = summarize([rec for n in args.name for rec in load_sweep(n)], args.reference)
        print(format_table(rows))
        print("wrote", write_summary("_".join(args.name), rows))
        return
    torch.set_num_threads(args.threads)
    configs = ["recipe"] if args.cmd == "recipe" else args.configs
    runs = [Run(c, d, s, seed) for c in configs for d in args.dataset for s in args.size for seed in args.seeds]
    records = sweep(args.name, runs)
    rows = summarize(records, "recipe" if "recipe" in configs and len(configs) > 1 else None)
    print(format_table(rows))
    print("wrote", write_summary(args.name, summarize(load_sweep(args.name), None)))


if __name__ == "__main__":
    main()
