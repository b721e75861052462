"""ViViT Model 1 on AdrenalMNIST3D 28^3, several seeds: the numbers behind notebook 05.

    python -m vtlib.experiments.vivit_model1                 # 3 seeds x 2 configs, writes results/vivit_model1.csv
    python -m vtlib.experiments.vivit_model1 --configs long --seeds 0 1 2 3 4

Configs (tubelet 4 x 7 x 7 -> 112 tokens + CLS, learned positions, CLS read-out):

    notebook   the live run of notebook 05: dim 32, depth 3, heads 4, NOTEBOOK_EPOCHS epochs
    long       the same model trained LONG_EPOCHS epochs
    wide       dim 64, depth 4, heads 4, LONG_EPOCHS epochs

Recipe for all: AdamW (lr 1e-3, weight decay 0.05), 1 warm-up epoch then cosine, label smoothing
0.1, random in-plane flips / 90-degree rotations / intensity scaling (``vtlib.data.augment``),
batch 32. ``vtlib.train.fit`` keeps the epoch with the best VALIDATION AUC and evaluates the TEST
split once with it. One CSV row per (config, seed); ``results/vivit_model1_summary.csv`` holds
mean and sample std per config.
"""
from __future__ import annotations

import argparse

import torch

from vtlib.data import augment
from vtlib.errors import check_choice
from vtlib.experiments.common import RESULTS, loaders, run, write_results
from vtlib.models.vivit import ViViT
from vtlib.train import TrainConfig

NOTEBOOK_EPOCHS = 8
LONG_EPOCHS = 20
MODELS = {"small": dict(dim=32, depth=3, heads=4), "wide": dict(dim=64, depth=4, heads=4)}
CONFIGS = {"notebook": ("small", NOTEBOOK_EPOCHS), "long": ("small", LONG_EPOCHS), "wide": ("wide", LONG_EPOCHS)}


def build(model: str = "small") -> ViViT:
    """The notebook's ViViT Model 1 ("small") or its wider sibling ("wide") for 28^3 clips."""
    check_choice("model", model, list(MODELS))
    return ViViT(num_classes=2, video_shape=(28, 28, 28), tubelet=(4, 7, 7), **MODELS[model])


def train_config(epochs: int, seed: int = 0) -> TrainConfig:
    """The recipe shared by notebook 05 and this command."""
    return TrainConfig(epochs=epochs, lr=1e-3, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1,
                       select_metric="auc", seed=seed, augment=augment)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["notebook", "long"], choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(RESULTS / "vivit_model1.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)                                  # the course machine is shared
    data = loaders("adrenal", size=28, batch_size=32)
    rows = []
    for name in args.configs:
        model, epochs = CONFIGS[name]
        res = run(name, lambda: build(model), data, train_config(epochs), args.seeds,
                  extra={"model": model, **MODELS[model], "tubelet": "4x7x7", "tokens": 112})
        for r in res:
            print(f"{name:>9} seed {r['seed']}: test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f} "
                  f"(val AUC {r['val_auc']:.3f}, best epoch {r['best_epoch']}/{epochs}, {r['train_seconds']} s)",
                  flush=True)
        rows += res
    write_results(rows, args.out, "python -m vtlib.experiments.vivit_model1")
    return rows


if __name__ == "__main__":
    main()
