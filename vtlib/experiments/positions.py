"""TimeSformer Table 4 at small scale: no / space-only / space-time position codes (notebook 02).

    python -m vtlib.experiments.positions   # all settings, seeds 0 1 2 (~20-25 min on one quiet CPU thread)
    python -m vtlib.experiments.positions --quick         # 1 seed, 1 epoch, to the temp folder: a smoke test

Writes ``results/positions.csv`` (one row per setting, position code and seed: test AUC/ACC of the
weights selected on validation) and ``results/positions_summary.csv`` (mean and std over seeds).
A run limited with ``--settings`` / ``--positions`` / ``--seeds`` replaces only the rows it re-runs
and keeps the others already in the file, so the sweep can be run in pieces.

Three settings, one small ViViT (dim 48, depth 4, 4 heads, mean pooling; dim 48 so that the
factorised sin-cos code, which needs a width divisible by 6, fits too):

- ``direction-frame``: the synthetic motion task (label = direction of motion, every class-1 clip is
  a class-0 clip played backwards). One token per sampled frame (every 2nd frame, embedded whole,
  28 x 28 pixels): no token sees motion, so frame order reaches the model only through positions.
  With "none" or "space" the model is exactly invariant to frame order: chance by construction.
- ``direction-tubelet``: the same task with the course's default 4x7x7 tubelets. Each tubelet holds
  4 consecutive frames, so it sees motion locally and "none" can solve the task: the caveat.
- ``adrenal``: AdrenalMNIST3D (depth slices as frames), 4x7x7 tubelets; nothing suggests its label
  depends on slice order as such.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vtlib.experiments.common import RESULTS, format_summary, loaders, read_csv, run, summarise, write_csv
from vtlib.models.vivit import ViViT
from vtlib.train import TrainConfig

MODEL = dict(dim=48, depth=4, heads=4, pool="mean")
SETTINGS = {
    "direction-frame": dict(dataset="direction", n_train=4096, epochs=8, embed="frame", tubelet=(2, 28, 28),
                            positions=("none", "space", "spacetime", "sincos3d")),
    "direction-tubelet": dict(dataset="direction", n_train=1024, epochs=3, embed="tubelet", tubelet=(4, 7, 7),
                              positions=("none", "spacetime")),
    "adrenal": dict(dataset="adrenal", n_train=None, epochs=6, embed="tubelet", tubelet=(4, 7, 7),
                    positions=("none", "space", "spacetime")),
}
COMMAND = "python -m vtlib.experiments.positions"


def build(setting: str, position: str) -> ViViT:
    """The model of one (setting, position) cell of the table."""
    s = SETTINGS[setting]
    return ViViT(num_classes=2, video_shape=(28, 28, 28), tubelet=s["tubelet"], embed=s["embed"],
                 position=position, **MODEL)


def setting_loaders(setting: str, seed: int = 0, batch_size: int = 32) -> dict:
    """Train/val/test loaders of a setting (synthetic clips are generated, MedMNIST is read)."""
    s = SETTINGS[setting]
    if s["dataset"] == "adrenal":
        return loaders("adrenal", batch_size=batch_size, seed=seed)
    return loaders(s["dataset"], batch_size=batch_size, seed=seed, n_train=s["n_train"])


def _order(row: dict) -> tuple[int, int, int]:
    setting, position = row["config"].split("/")
    return list(SETTINGS).index(setting), SETTINGS[setting]["positions"].index(position), int(row["seed"])


def _merge(rows: list[dict], out: str, done: set[tuple[str, str]]) -> list[dict]:
    """This run's rows plus the rows of ``out`` that this run did not redo, in table order."""
    try:
        old = [r for r in read_csv(out) if (r["config"], str(r["seed"])) not in done]
    except FileNotFoundError:
        old = []
    return sorted(old + rows, key=_order)


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)  # several jobs share the CPU
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--positions", nargs="+", default=None, help="only these position codes",
                   choices=sorted({q for s in SETTINGS.values() for q in s["positions"]}))
    p.add_argument("--epochs", type=int, default=None, help="override every setting's epochs")
    p.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, written to the temp folder")
    p.add_argument("--out", default=None, help="CSV path (default results/positions.csv)")
    args = p.parse_args(argv)
    seeds, epochs = ([0], 1) if args.quick else (args.seeds, args.epochs)
    default = Path(tempfile.gettempdir()) / "positions_quick.csv" if args.quick else RESULTS / "positions.csv"
    out = str(args.out or default)

    done: set[tuple[str, str]] = set()
    rows: list[dict] = []
    t0 = time.perf_counter()
    for setting in args.settings:
        s = SETTINGS[setting]
        data = setting_loaders(setting)
        cfg = TrainConfig(epochs=epochs or s["epochs"], lr=1e-3, progress=False)
        for position in s["positions"]:
            if args.positions and position not in args.positions:
                continue
            extra = {"setting": setting, "position": position, "embed": s["embed"],
                     "tubelet": "x".join(map(str, s["tubelet"])), "command": COMMAND,
                     "torch": torch.__version__}
            rows += run(f"{setting}/{position}", lambda: build(setting, position), data, cfg, seeds, extra)
            done |= {(f"{setting}/{position}", str(seed)) for seed in seeds}
            write_csv(_merge(rows, out, done), out)  # after every config: an interrupted sweep keeps its rows
            print(f"[{time.perf_counter() - t0:6.0f} s] {setting}/{position} done", flush=True)
    summary = summarise(_merge(rows, out, done))
    write_csv(summary, out.replace(".csv", "_summary.csv"))
    print(format_summary(summary))


if __name__ == "__main__":
    main()
