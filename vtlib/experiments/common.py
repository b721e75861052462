"""Shared plumbing for the course's experiment commands (``python -m vtlib.experiments.<name>``).

An experiment trains a few model configurations over several seeds with ``vtlib.train.fit``,
selects each run's weights on the VALIDATION split, evaluates the TEST split once, and writes one
CSV row per (config, seed) to ``results/``. Notebooks read those files and re-run a small live
version. Every row records seed, epochs, device and the command that produced it.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.errors import bad_arg
from vtlib.records import provenance, read_csv, write_csv  # noqa: F401 (re-exported)
from vtlib.train import TrainConfig, fit
from vtlib.utils import count_parameters, get_device

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
# AdrenalMNIST3D slices that show the gland in most clips, per clip size (28^3: at least 3 in 4 train
# clips, notebook 01 section 4.1)
SLICES = {28: tuple(range(10, 19)), 64: tuple(range(24, 41))}


@lru_cache(maxsize=4)
def _adrenal(size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from vtlib.data import load_split

    return {s: load_split("adrenal", s, size=size) for s in ("train", "val", "test")}


@lru_cache(maxsize=4)
def _motion(task: str, n_train: int, size: int, frames: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from vtlib.data import make_motion_videos

    n_eval = max(n_train // 4, 64)
    return {"train": make_motion_videos(n_train, task, frames, size, seed=0),
            "val": make_motion_videos(n_eval, task, frames, size, seed=1),
            "test": make_motion_videos(n_eval, task, frames, size, seed=2)}


def loaders(dataset: str = "adrenal", size: int = 28, batch_size: int = 32, seed: int = 0,
            n_train: int = 1024, frames: int | None = None, train_fraction: float = 1.0) -> dict[str, DataLoader]:
    """In-memory train/val/test loaders for "adrenal" (MedMNIST) or "direction"/"shape" (synthetic).

    ``train_fraction`` keeps a seeded random subset of the training clips (data-efficiency studies).
    The train loader shuffles with a generator seeded by ``seed``; 0 workers (see README).
    """
    if dataset == "adrenal":
        splits = _adrenal(size)
    else:
        splits = _motion(dataset, n_train, size, frames or size)
    out = {}
    for name, (x, y) in splits.items():
        if name == "train" and train_fraction < 1.0:
            g = torch.Generator().manual_seed(seed)
            keep = torch.randperm(len(y), generator=g)[: max(2, int(round(train_fraction * len(y))))]
            x, y = x[keep], y[keep]
        out[name] = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=name == "train",
                               generator=torch.Generator().manual_seed(seed), num_workers=0)
    return out


def slice_loaders(data: dict[str, DataLoader], frames: Iterable[int] = SLICES[28], batch_size: int = 64,
                  seed: int = 0) -> dict[str, DataLoader]:
    """Clip loaders -> loaders of single slices (B, C, 1, H, W), each labelled with its clip's label.

    ``frames``: the slice indices taken from every clip (clip-major order). Train slices are shuffled
    across clips with a generator seeded by ``seed``.
    """
    frames = list(frames)
    if not frames:
        raise bad_arg("frames", "at least one slice index", frames, "pass e.g. range(10, 19)")
    out = {}
    for name, loader in data.items():
        x, y = loader.dataset.tensors                                     # (N, C, T, H, W), (N,)
        if min(frames) < 0 or max(frames) >= x.shape[2]:
            raise bad_arg("frames", f"slice indices in [0, {x.shape[2] - 1}]", frames, "pick existing slices")
        xs = x[:, :, frames].transpose(1, 2).flatten(0, 1).unsqueeze(2)  # (N*F, C, 1, H, W)
        out[name] = DataLoader(TensorDataset(xs, y.repeat_interleave(len(frames))), batch_size=batch_size,
                               shuffle=name == "train", generator=torch.Generator().manual_seed(seed), num_workers=0)
    return out


def run(name: str, build: Callable[[], nn.Module], data: dict[str, DataLoader], cfg: TrainConfig,
        seeds: Iterable[int], extra: dict | None = None) -> list[dict]:
    """Train ``build()`` once per seed; one result row per seed (test metrics of the val-selected model)."""
    rows = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build()
        cfg_seed = TrainConfig(**{**cfg.__dict__, "seed": seed})
        t0 = time.perf_counter()
        result = fit(model, data["train"], data["val"], cfg_seed, test_loader=data["test"])
        rows.append({
            "config": name, "seed": seed, "epochs": cfg.epochs, "best_epoch": result.best_epoch,
            "val_auc": round(result.best_val["auc"], 4), "test_auc": round(result.test["auc"], 4),
            "test_acc": round(result.test["acc"], 4), "params": count_parameters(model),
            "train_seconds": round(time.perf_counter() - t0, 1), "device": str(get_device(cfg.device)),
            **(extra or {}),
        })
    return rows


def report(rows: list[dict], label: str) -> None:
    """Print one line per run of ``run``: ``label`` seed S: test AUC and ACC (best epoch, seconds)."""
    for r in rows:
        print(f"{label} seed {r['seed']}: test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f} "
              f"(best epoch {r['best_epoch']}, {r['train_seconds']} s)", flush=True)


def summarise(rows: list[dict], keys: tuple[str, ...] = ("test_auc", "test_acc"), by: str = "config") -> list[dict]:
    """Mean and sample standard deviation per config, in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r)
    out = []
    for name, rs in groups.items():
        row = {by: name, "n": len(rs)}
        for k in keys:
            vals = [float(r[k]) for r in rs]
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            row[f"{k}_mean"], row[f"{k}_std"] = round(mean, 4), round(std, 4)
        out.append(row)
    return out


def dataset_summary(rows: list[dict], columns: tuple[str, ...] = ("epochs", "params", "mflops")) -> list[dict]:
    """Mean and sample std of test AUC/ACC and val AUC per (dataset, config), in first-seen order.

    Each row also takes ``columns`` from the config's first run and the median ``clips_per_cpu_s``
    over its seeds (the sweeps of notebooks 06 and 07).
    """
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        for s in summarise(sub, keys=("test_auc", "test_acc", "val_auc")):
            runs = [r for r in sub if r["config"] == s["config"]]
            tput = statistics.median(float(r["clips_per_cpu_s"]) for r in runs)
            out.append({"dataset": ds, **s, **{c: runs[0][c] for c in columns}, "clips_per_cpu_s": round(tput, 1)})
    return out


def format_summary(summary: list[dict], keys: tuple[str, ...] = ("test_auc", "test_acc"), by: str = "config") -> str:
    """Aligned text: config, n, and mean +- std per key."""
    width = max(len(str(r[by])) for r in summary) + 2
    lines = [f"{by:<{width}}{'n':>3}" + "".join(f"{k:>20}" for k in keys)]
    for r in summary:
        lines.append(f"{str(r[by]):<{width}}{r['n']:>3}"
                     + "".join(f"{r[f'{k}_mean']:>12.3f} ± {r[f'{k}_std']:.3f}" for k in keys))
    return "\n".join(lines)


def write_results(rows: list[dict], path: str | os.PathLike, command: str) -> Path:
    """Stamp rows with provenance, write them and their mean/std summary (``<name>_summary.csv``)."""
    prov = {**provenance(), "command": command}
    path = write_csv([{**r, **prov} for r in rows], path)
    summary = summarise(rows)
    summary_path = write_csv(summary, path.with_name(path.stem + "_summary.csv"))
    print(format_summary(summary))
    print("wrote", path, "and", summary_path)
    return path


def merge_rows(path: str | os.PathLike, new_rows: list[dict], key: str) -> list[dict]:
    """Rows already in ``path`` whose ``key`` value is not among ``new_rows``', then ``new_rows``.

    Lets one part of a sweep (say one dataset) be re-run without losing the others' rows.
    """
    path = Path(path)
    if not path.exists():
        return new_rows
    fresh = {str(r[key]) for r in new_rows}
    return [r for r in read_csv(path) if r.get(key) not in fresh] + new_rows


def write_per_dataset(rows: list[dict], path: str | os.PathLike,
                      summary_rows: Callable[[list[dict]], list[dict]]) -> None:
    """Write ``rows`` and ``summary_rows(rows)`` (to ``<stem>_summary.csv``) and print one table per dataset."""
    path = Path(path)
    write_csv(rows, path)
    summary = summary_rows(rows)
    write_csv(summary, path.with_name(path.stem + "_summary.csv"))
    for ds in dict.fromkeys(r["dataset"] for r in summary):
        print(f"\n{ds}:")
        print(format_summary([r for r in summary if r["dataset"] == ds], keys=("test_auc", "test_acc")))
    print("wrote", path, "and", path.with_name(path.stem + "_summary.csv"))


# ----------------------------------------------------------------------------- per-clip test scores
def positive_scores(test: dict) -> list[float]:
    """The positive-class probability of every clip of an ``evaluate`` result, in split order, to float32
    precision (fewer digits would tie the nearly equal scores of a model at chance and change its AUC)."""
    return [float(f"{float(s):.9g}") for s in test["scores"][:, 1]]


def scores_path(out: Path) -> Path:
    """``results/NAME.csv`` -> ``results/NAME_scores.csv``."""
    return Path(out).with_name(Path(out).stem + "_scores.csv")


def read_scores(out: Path) -> dict[tuple[str, str, str], list[float]]:
    """{(part, config, seed): per-clip test scores} from ``NAME_scores.csv`` (one column per run)."""
    path = scores_path(out)
    if not path.exists():
        return {}
    table = read_csv(path)
    keys = [k for k in (table[0] if table else {}) if k.count("/") == 2]
    return {tuple(k.split("/")): [float(r[k]) for r in table] for k in keys}


def write_scores(scores: dict[tuple[str, str, str], list[float]], out: Path) -> None:
    """One row per test clip, one column "part/config/seed" per run, so the paired intervals can be recomputed."""
    if not scores:
        return
    n = {len(s) for s in scores.values()}
    if len(n) != 1:
        raise ValueError(f"runs scored different test sets: lengths {sorted(n)}")
    keys = sorted(scores)
    write_csv([{"clip": i, **{"/".join(k): scores[k][i] for k in keys}} for i in range(n.pop())], scores_path(out))


def paired_interval_rows(y, runs: dict[str, dict[str, list[float]]], reference: Callable[[str], str]) -> list[dict]:
    """For every config of ``runs`` ({config: {seed: per-clip scores}}, in its order): the mean test AUC over
    seeds with a 95 % interval that counts seed and test-set noise (``stats.pooled_interval``), and the paired
    difference from ``reference(config)`` on the same test clips (``stats.paired_seeds``, seeds paired by name)."""
    from vtlib import stats

    out = []
    for config, by_seed in runs.items():
        ref = reference(config)
        seeds = sorted(set(by_seed) & set(runs.get(ref, {})), key=int) if config != ref else []
        mean = stats.pooled_interval(y, [by_seed[s] for s in sorted(by_seed, key=int)])
        row = {"config": config, "seeds": " ".join(sorted(by_seed, key=int)), "test_auc": round(mean.estimate, 4),
               "auc_low": round(mean.low, 4), "auc_high": round(mean.high, 4), "reference": ref if seeds else ""}
        if seeds:
            d = stats.paired_seeds(y, [by_seed[s] for s in seeds], [runs[ref][s] for s in seeds])
            row.update(diff=round(d.diff, 4), diff_low=round(d.low, 4), diff_high=round(d.high, 4),
                       p=round(d.p, 4), resolved=not (d.low <= 0 <= d.high))
        out.append(row)
    return out
