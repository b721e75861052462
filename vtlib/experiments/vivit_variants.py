"""ViViT Table 2 at small scale: the four attention patterns and the average-pool baseline.

    python -m vtlib.experiments.vivit_variants                       # adrenal, 3 seeds + cost curves
    python -m vtlib.experiments.vivit_variants --part train --dataset direction --epochs 8
    python -m vtlib.experiments.vivit_variants --part cost           # only the cost-vs-frames table

Every variant has the same width (dim 64, 4 heads, MLP ratio 4), the same tubelet embedding
(4 x 7 x 7 -> a 7 x 4 x 4 grid of 112 tokens on 28^3) and 4 transformer blocks in total:

    model1-joint     Model 1, joint space-time attention over all 112 tokens, CLS readout
    model2-fe        Model 2, factorised encoder: 3 spatial blocks per frame + 1 temporal block
    model3-fsa       Model 3, factorised self-attention: 4 blocks of space-then-time attention
    model4-fdp       Model 4, factorised dot-product: 4 blocks, 2 heads in space + 2 in time
    model2-avgpool   Model 2 without its temporal block: 3 spatial blocks, frame embeddings averaged

(The paper's Model 2 is *deeper* than Model 1: 12 spatial + 4 temporal blocks against 12. Here the
total depth is equal, so Model 2 has Ls = 3, Lt = 1 and about as many parameters as Model 1.)

Outputs (``results/``):

- ``vivit_variants.csv``: one row per (dataset, variant, seed): test AUC/ACC of the epoch selected
  on validation, parameters, FLOPs per clip (``vtlib.cost.measure_flops``), attention score
  entries per clip, CPU inference throughput. Rows of the datasets run now replace older ones.
- ``vivit_variants_summary.csv``: mean and sample std over seeds per (dataset, variant).
- ``vivit_variants_cost.csv``: FLOPs, score entries and CPU milliseconds per clip against the
  number of frames (28, 64, 128, 256, 512 frames of 28 x 28, random clips: cost does not depend on
  content), for the five variants at the same width and depth.

Throughput and time are measured with ONE CPU thread and read from ``time.process_time`` (CPU
seconds this process used), so other jobs on a shared machine slow the wall clock but barely
change the numbers. They still depend on the CPU: compare rows, not machines.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from vtlib.cost import cpu_ms_per_clip, measure_flops
from vtlib.data import augment
from vtlib.errors import bad_arg, check_choice, check_positive_int
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
from vtlib.models.vivit import ViViT
from vtlib.models.vivit_fdp import ViViTFactorisedDotProduct
from vtlib.models.vivit_fe import ViViTFactorisedEncoder, vivit_avgpool
from vtlib.models.vivit_fsa import ViViTFactorisedSelfAttention
from vtlib.train import TrainConfig
from vtlib.utils import count_parameters

VARIANTS = ("model1-joint", "model2-fe", "model3-fsa", "model4-fdp", "model2-avgpool")
PAPER = {  # ViViT-B Table 2 (K400 top-1, EK, GFLOPs, params in M, TPU runtime in ms) (Arnab et al., ICCV 2021)
    "model1-joint": (80.0, 43.1, 455.2, 88.9, 58.9), "model2-fe": (78.8, 43.7, 284.4, 115.1, 17.4),
    "model3-fsa": (77.4, 39.1, 372.3, 117.3, 31.7), "model4-fdp": (76.3, 39.5, 277.1, 88.9, 22.9),
    "model2-avgpool": (75.8, 38.8, 283.9, 86.7, 17.3),
}
FRAMES = (28, 64, 128, 256, 512)
DATASETS = ("adrenal", "direction")


def build(variant: str, frames: int = 28, size: int = 28, dim: int = 64, depth: int = 4, heads: int = 4,
          tubelet=(4, 7, 7), num_classes: int = 2) -> nn.Module:
    """One of VARIANTS for clips (B, 1, frames, size, size), ``depth`` blocks in total."""
    check_choice("variant", variant, VARIANTS)
    check_positive_int("depth", depth)
    kw = dict(num_classes=num_classes, video_shape=(frames, size, size), tubelet=tubelet, dim=dim, heads=heads)
    if variant in ("model2-fe", "model2-avgpool") and depth < 2:
        raise bad_arg("depth", "at least 2 for Model 2 (Ls = depth - 1 spatial + Lt = 1 temporal)", depth,
                      "use depth >= 2")
    if variant == "model1-joint":
        return ViViT(depth=depth, **kw)
    if variant == "model2-fe":
        return ViViTFactorisedEncoder(depth_spatial=depth - 1, depth_temporal=1, **kw)
    if variant == "model2-avgpool":
        return vivit_avgpool(depth_spatial=depth - 1, **kw)
    if variant == "model3-fsa":
        return ViViTFactorisedSelfAttention(depth=depth, **kw)
    return ViViTFactorisedDotProduct(depth=depth, **kw)


def attention_score_entries(model: nn.Module) -> int:
    """Entries of all attention score matrices for one clip (all layers and heads).

    Models 2-4 know their own count; Model 1 is depth * heads * N^2 (N with the CLS token).
    """
    if hasattr(model, "attention_score_entries"):
        return model.attention_score_entries()
    if isinstance(model, ViViT):
        blocks = model.encoder.blocks
        return len(blocks) * blocks[0].attn.heads * model.num_tokens ** 2
    raise bad_arg("model", "a ViViT variant from vtlib.models", type(model).__name__, "build one with build()")


def cost_row(variant: str, frames: int, size: int = 28, batch: int = 4, repeats: int = 3, **kw) -> dict:
    """Parameters, tokens, FLOPs, score entries and CPU time per clip for one variant and frame count."""
    torch.manual_seed(0)
    model = build(variant, frames, size, **kw).eval()
    x = torch.randn(batch, 1, frames, size, size, generator=torch.Generator().manual_seed(0))
    nt, nh, nw = model.grid
    return {"variant": variant, "frames": frames, "tokens": nt * nh * nw, "params": count_parameters(model),
            "mflops": round(measure_flops(model, x[:1]) / 1e6, 3),
            "score_entries": attention_score_entries(model),
            "cpu_ms_per_clip": round(cpu_ms_per_clip(model, x, repeats), 2)}


def cost_sweep(frames=FRAMES, variants=VARIANTS, verbose: bool = True, **kw) -> list[dict]:
    rows = []
    for f in frames:
        for v in variants:
            rows.append(cost_row(v, f, **kw))
            if verbose:
                r = rows[-1]
                print(f"{v:>15} T={f:>3} N={r['tokens']:>5}: {r['mflops']:>9.1f} MFLOPs, "
                      f"{r['score_entries']:>10} scores, {r['cpu_ms_per_clip']:>8.2f} CPU-ms/clip", flush=True)
    return rows


def train_sweep(dataset: str = "adrenal", seeds=(0, 1, 2), epochs: int = 10, lr: float = 5e-4,
                variants=VARIANTS, n_train: int = 1024, verbose: bool = True, **kw) -> list[dict]:
    """Train every variant once per seed on ``dataset``; one row per run, with cost columns."""
    check_choice("dataset", dataset, DATASETS)
    data = loaders(dataset, size=28, batch_size=32, n_train=n_train)
    # In-plane flips would swap the label of a direction clip (left-right), so only adrenal augments.
    cfg_kw = dict(epochs=epochs, lr=lr, augment=augment if dataset == "adrenal" else None)

    rows = []
    for v in variants:
        probe = build(v, **kw).eval()
        x = torch.randn(32, 1, 28, 28, 28, generator=torch.Generator().manual_seed(0))
        extra = {"dataset": dataset, "lr": lr, "mflops": round(measure_flops(probe, x[:1]) / 1e6, 3),
                 "score_entries": attention_score_entries(probe),
                 "clips_per_cpu_s": round(1000 / cpu_ms_per_clip(probe, x, repeats=5), 1),
                 "train_augment": dataset == "adrenal"}
        res = run(v, lambda: build(v, **kw), data, TrainConfig(**cfg_kw), seeds, extra=extra)
        rows += res
        if verbose:
            report(res, f"{dataset:>9} {v:>15}")
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean/std per (dataset, variant), with parameters, MFLOPs, score entries and throughput."""
    return dataset_summary(rows, ("epochs", "params", "mflops", "score_entries"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["all", "train", "cost"], default="all")
    parser.add_argument("--dataset", nargs="+", choices=list(DATASETS), default=["adrenal"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=1024, help="training clips for the synthetic task")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--frames", type=int, nargs="+", default=list(FRAMES))
    parser.add_argument("--out", default=str(RESULTS / "vivit_variants.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # several jobs share the CPU; the timings are single-thread by design

    path = Path(args.out)
    prov = provenance()
    if args.part in ("all", "cost"):
        rows = [{**r, "dim": args.dim, "depth": 4, "heads": 4, "tubelet": "4x7x7", **prov}
                for r in cost_sweep(tuple(args.frames), tuple(args.variants), dim=args.dim)]
        cost_path = write_csv(rows, path.with_name(path.stem + "_cost.csv"))
        print("wrote", cost_path)
    if args.part in ("all", "train"):
        new = []
        for ds in args.dataset:
            new += [{**r, "dim": args.dim, "depth": 4, "heads": 4, "tubelet": "4x7x7", **prov}
                    for r in train_sweep(ds, tuple(args.seeds), args.epochs, args.lr, tuple(args.variants),
                                         args.n_train, dim=args.dim)]
        write_per_dataset(merge_rows(path, new, "dataset"), path, summary_rows)


if __name__ == "__main__":
    main()
