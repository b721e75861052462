"""Where the time of a real training epoch goes: clips/s over AdrenalMNIST3D, with each part's share.

    python -m vtlib.fit_bench                                   # the lab recipe (ConvViT + TTA), 1 thread
    python -m vtlib.fit_bench --config recipe patch_tokens cnn --threads 1 2 --out results/fit_bench.csv

``vtlib.bench`` times one training step on random clips. A learner's epoch is more: reading and
collating batches, augmentation, the steps, gradient clipping and the optimiser, evaluation on the
validation split (8 flips per clip with TTA), and the checkpoint ``fit`` writes after every epoch.
For each ``vtlib.lab`` config this command

1. runs ``vtlib.train.fit`` for one real epoch (the config's loaders, augmentation, model, TTA and
   checkpointing; no test split), and reports its wall time and train clips/s;
2. times every part on its own, in the same process and on the same batches:

   ============  ============================================================================
   load          iterate the train loader (index, collate)
   augment       the config's augmentation on every batch
   forward       forward + loss (train mode)
   backward      ``loss.backward()``
   clip          ``clip_grad_norm_`` (at the config's ``grad_clip``, as ``fit``)
   optimizer     ``AdamW.step`` + scheduler step
   evaluate      ``vtlib.train.evaluate`` on the validation split (with the config's TTA)
   checkpoint    copy of the best weights + ``save_checkpoint`` of what ``fit`` writes
   ============  ============================================================================

The parts are timed apart from ``fit``, so their sum need not equal the epoch; the table shows
both, and the gap (``other``: Python, allocation, the progress bookkeeping) is reported, not hidden.
Shares are of the sum of the parts. On CUDA every timer synchronises the device first.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vtlib import lab
from vtlib.checkpoint import save_checkpoint
from vtlib.errors import check_choice, check_positive_int
from vtlib.train import evaluate, fit, param_groups, warmup_cosine

PARTS = ("load", "augment", "forward", "backward", "clip", "optimizer", "evaluate", "checkpoint")


class Timer:
    """Accumulates seconds per part: ``with timer("forward"): ...`` (synchronising CUDA first)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds = device, dict.fromkeys(PARTS, 0.0)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, part: str) -> "Timer":
        self.part = part
        return self

    def __enter__(self) -> None:
        self._sync()
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self._sync()
        self.seconds[self.part] += time.perf_counter() - self.t0


def _setup(config: str, seed: int, device: str):
    """The lab run's loaders, network (as ``fit`` trains it) and its ``TrainConfig`` for one epoch."""
    cfg, info, data, _, net = lab.prepare(config, "adrenal", 28, seed)
    tcfg = lab.train_config(cfg, info.task, seed, epochs=1, device=device, progress=False)
    return data, net.to(device), tcfg


def time_parts(config: str, seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """Seconds of each part of one epoch of ``config``, timed on its own (see the module docstring)."""
    dev = torch.device(device)
    data, net, tcfg = _setup(config, seed, device)
    timer, gen = Timer(dev), torch.Generator().manual_seed(seed)
    batches = []
    with timer("load"):
        for x, y in data["train"]:
            batches.append((x.to(dev), y.to(dev)))
    with timer("augment"):
        if tcfg.augment is not None:
            batches = [(tcfg.augment(x, gen), y) for x, y in batches]
    opt = torch.optim.AdamW(param_groups(net, tcfg.weight_decay), lr=tcfg.lr, foreach=True)   # as fit
    sched = warmup_cosine(opt, len(batches), len(batches) * tcfg.epochs)
    net.train()
    for x, y in batches:
        with timer("forward"):
            loss = F.cross_entropy(net(x).float(), y, label_smoothing=tcfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        with timer("backward"):
            loss.backward()
        with timer("clip"):
            if tcfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip, foreach=True)
        with timer("optimizer"):
            opt.step()
            sched.step()
    with timer("evaluate"):
        evaluate(net, data["val"], tcfg.task, dev)
    with tempfile.TemporaryDirectory() as tmp, timer("checkpoint"):
        best = copy.deepcopy(net.state_dict())
        save_checkpoint({"model": net.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "best_state": best}, os.path.join(tmp, "ck.pt"))
    return timer.seconds


def fit_epoch(config: str, seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """One real ``fit`` epoch of ``config`` with checkpointing: {"seconds", "clips"}."""
    data, net, tcfg = _setup(config, seed, device)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(net, data["train"], data["val"], replace(tcfg, checkpoint_path=os.path.join(tmp, "ck.pt")))
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "clips": len(data["train"].dataset)}


def profile_epoch(config: str, seed: int = 0, device: str = "cpu", repeats: int = 1) -> dict:
    """One row: the fit epoch (median over ``repeats``), each part's seconds and share, clips/s."""
    check_choice("config", config, list(lab.CONFIGS))
    check_positive_int("repeats", repeats)
    epochs = [fit_epoch(config, seed, device) for _ in range(repeats)]
    parts = [time_parts(config, seed, device) for _ in range(repeats)]
    seconds = statistics.median(e["seconds"] for e in epochs)
    clips = epochs[0]["clips"]
    row = {"config": config, "model": lab.config(config)["model"], "device": device,
           "threads": torch.get_num_threads(), "repeats": repeats, "train_clips": clips,
           "epoch_s": round(seconds, 2), "epoch_clips_s": round(clips / seconds, 1)}
    median = {p: statistics.median(s[p] for s in parts) for p in PARTS}
    total = sum(median.values())
    for p in PARTS:
        row[f"{p}_s"] = round(median[p], 3)
        row[f"{p}_share"] = round(median[p] / total, 3)
    row["parts_s"] = round(total, 2)
    row["other_s"] = round(seconds - total, 2)       # the epoch minus its parts timed alone
    return row


def format_row(r: dict) -> str:
    lines = [f"{r['config']} ({r['model']}), {r['device']}, {r['threads']} thread(s): one fit epoch of "
             f"{r['train_clips']} clips in {r['epoch_s']} s = {r['epoch_clips_s']} clips/s "
             f"(median of {r['repeats']})",
             f"  {'part':<12}{'seconds':>9}{'share':>8}"]
    lines += [f"  {p:<12}{r[f'{p}_s']:>9.3f}{r[f'{p}_share']:>8.1%}" for p in PARTS]
    lines.append(f"  {'sum':<12}{r['parts_s']:>9.2f}   (epoch - sum = {r['other_s']:+.2f} s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m vtlib.fit_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", nargs="+", default=["recipe"], help=f"vtlib.lab configs: {sorted(lab.CONFIGS)}")
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="one run per thread count, e.g. 1 2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", help="write the rows to this CSV (e.g. results/fit_bench.csv)")
    a = p.parse_args(argv)
    for c in a.config:
        check_choice("--config", c, list(lab.CONFIGS))
    rows = []
    for threads in a.threads:
        check_positive_int("--threads", threads)
        torch.set_num_threads(threads)
        for c in a.config:
            rows.append(profile_epoch(c, a.seed, a.device, a.repeats))
            print(format_row(rows[-1]), flush=True)
    if a.out:
        from vtlib.records import provenance, write_csv

        prov = provenance()
        extra = {"torch": prov["torch"], "platform": prov["platform"], "cpu": prov["cpu"],
                 "command": "python -m vtlib.fit_bench " + " ".join(sys.argv[1:] if argv is None else argv)}
        print(f"wrote {os.path.relpath(write_csv([{**r, **extra} for r in rows], a.out))}")
    return rows


if __name__ == "__main__":
    main()
