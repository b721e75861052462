"""ViViT Table 1 at small scale: which tubelet initialisation to use when all you have is a 2D model.

    python -m vtlib.experiments.embedding                   # 3 seeds, writes results/embedding.csv
    python -m vtlib.experiments.embedding --seeds 0 1 2 3 4 --epochs 12   # longer, more seeds

ViViT starts from an image ViT and compares four ways to turn the image model into a video model
with the same number of tokens (Table 1 of the paper, Kinetics-400). We do the same on
AdrenalMNIST3D 28^3. Our "image-pretrained ViT" is a small 2D ViT trained on single slices of the
TRAIN clips, each slice labelled with its clip's label (a stand-in for ImageNet pre-training).
Every row below then copies the image model's positions (repeated over time, as in ViViT), CLS
token, encoder, final norm and head; only the embedding differs:

    uniform           uniform frame sampling: every t-th frame, cut into p x p patches, embedded with
                      the image model's Conv2d (FrameEmbed with frame_stride=t)
    tubelet-random    t x p x p tubelet Conv3d, random init (PyTorch default)
    tubelet-inflate   tubelet Conv3d, 2D filter copied over time and divided by t
    tubelet-central   tubelet Conv3d, 2D filter at time t // 2, zeros elsewhere
    scratch           (reference row, not in the paper) tubelet Conv3d and everything else random

With t = 4 and p = 7 every row has 7 x 4 x 4 = 112 tokens. The image model is trained once (one
"checkpoint", as ImageNet weights are for the paper); the seeds vary the video training. Each run
selects its epoch on the validation split and evaluates the test split once (``vtlib.train.fit``).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import DataLoader

from vtlib.data import augment
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.experiments.common import RESULTS, SLICES, loaders, report, run, slice_loaders, write_results
from vtlib.models.vivit import ViViT
from vtlib.tokens import TubeletEmbed
from vtlib.train import TrainConfig, TrainResult, fit
from vtlib.utils import seed_everything

EMBEDDINGS = ("uniform", "tubelet-random", "tubelet-inflate", "tubelet-central")
REFERENCE = ("scratch",)


@dataclass(frozen=True)
class Setup:
    """Model sizes shared by the image model and every video model."""
    size: int = 28
    tubelet: tuple[int, int, int] = (4, 7, 7)
    dim: int = 64
    depth: int = 2
    heads: int = 4


def image_model(setup: Setup = Setup()) -> ViViT:
    """A small 2D ViT on one slice (B, C, 1, H, W): ViViT with a single frame and p x p patches."""
    _, p, _ = setup.tubelet
    return ViViT(num_classes=2, video_shape=(1, setup.size, setup.size), tubelet=(1, p, p), dim=setup.dim,
                 depth=setup.depth, heads=setup.heads, embed="frame")


def pretrain_image_model(data: dict[str, DataLoader], setup: Setup = Setup(), epochs: int = 4,
                         lr: float = 1e-3, seed: int = 0, frames=SLICES[28]) -> TrainResult:
    """Train ``image_model`` on single slices of the clips in ``data`` (val-selected, test once)."""
    check_positive_int("epochs", epochs)
    seed_everything(seed)
    model = image_model(setup)
    cfg = TrainConfig(epochs=epochs, lr=lr, seed=seed, augment=augment)
    s = slice_loaders(data, frames, batch_size=128, seed=seed)
    return fit(model, s["train"], s["val"], cfg, test_loader=s["test"])


def video_model(image: ViViT | None, embedding: str, setup: Setup = Setup()) -> ViViT:
    """A ViViT for (B, 1, size, size, size) clips, initialised from the 2D ``image`` model.

    ``embedding``: one of EMBEDDINGS (everything but the embedding copied from ``image``) or
    "scratch" (nothing copied; ``image`` may be None).
    """
    check_choice("embedding", embedding, EMBEDDINGS + REFERENCE)
    t, p, _ = setup.tubelet
    model = ViViT(num_classes=2, video_shape=(setup.size,) * 3, tubelet=setup.tubelet, dim=setup.dim,
                  depth=setup.depth, heads=setup.heads, embed="frame" if embedding == "uniform" else "tubelet")
    if embedding == "scratch":
        return model
    if not isinstance(image, ViViT) or image.grid != (1, setup.size // p, setup.size // p):
        raise bad_arg("image", f"a 2D model from image_model(setup) with grid (1, {setup.size // p}, "
                      f"{setup.size // p})", type(image).__name__ if not isinstance(image, ViViT) else image.grid,
                      "train one with pretrain_image_model(...) using the same Setup")
    conv2d = image.embed.proj                                              # (D, C, p, p)
    if embedding == "uniform":
        model.embed.proj.load_state_dict(conv2d.state_dict())
    elif embedding in ("tubelet-inflate", "tubelet-central"):
        model.embed = TubeletEmbed.from_2d(conv2d, t, init=embedding.split("-")[1])
    nt = model.grid[0]
    with torch.no_grad():
        model.pos.pos.copy_(image.pos.pos.repeat(1, nt, 1))               # (1, nh*nw, D) -> (1, nt*nh*nw, D)
    for name in ("pool", "encoder", "norm", "head"):
        getattr(model, name).load_state_dict(getattr(image, name).state_dict())
    return model.to(next(image.parameters()).device)


def sweep(seeds=(0, 1, 2), epochs: int = 8, pretrain_epochs: int = 4, lr: float = 5e-4,
          rows=EMBEDDINGS + REFERENCE, setup: Setup = Setup(), verbose: bool = True) -> tuple[list[dict], TrainResult]:
    """Pretrain the image model once, then train every row once per seed. Returns (rows, image result)."""
    for r in rows:
        check_choice("rows", r, EMBEDDINGS + REFERENCE)
    data = loaders("adrenal", size=setup.size, batch_size=32)
    t0 = time.perf_counter()
    pre = pretrain_image_model(data, setup, pretrain_epochs)
    image = pre.model.cpu()
    image_info = {"image_val_auc": round(pre.best_val["auc"], 4), "image_test_auc": round(pre.test["auc"], 4),
                  "pretrain_epochs": pretrain_epochs, "pretrain_seconds": round(time.perf_counter() - t0, 1)}
    if verbose:
        print(f"image model (slice level): val AUC {pre.best_val['auc']:.3f}, test AUC {pre.test['auc']:.3f}",
              flush=True)
    cfg = TrainConfig(epochs=epochs, lr=lr, augment=augment)
    out = []
    for name in rows:
        tokens = math.prod(video_model(None, "scratch", setup).grid)
        res = run(name, lambda: video_model(image, name, setup), data, cfg, seeds,
                  extra={"tokens": tokens, "lr": lr, **image_info, **asdict(setup)})
        out += res
        if verbose:
            report(res, f"{name:>16}")
    return out, pre


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--rows", nargs="+", default=list(EMBEDDINGS + REFERENCE),
                        choices=list(EMBEDDINGS + REFERENCE))
    parser.add_argument("--out", default=str(RESULTS / "embedding.csv"))
    args = parser.parse_args(argv)
    if len(args.seeds) < 1:
        parser.error("--seeds needs at least one seed")
    torch.set_num_threads(1)
    rows, _ = sweep(args.seeds, args.epochs, args.pretrain_epochs, args.lr, tuple(args.rows))
    write_results(rows, args.out, "python -m vtlib.experiments.embedding")


if __name__ == "__main__":
    main()
