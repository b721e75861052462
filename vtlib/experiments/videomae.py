"""VideoMAE on AdrenalMNIST3D 28^3: pre-train, fine-tune, data efficiency, masking (notebook 08).

    python -m vtlib.experiments.videomae                        # default parts (all but recipe), 1 CPU thread
    python -m vtlib.experiments.videomae --parts pretrain       # only the long pre-training (the checkpoint)
    python -m vtlib.experiments.videomae --parts finetune efficiency --seeds 0 1 2
    python -m vtlib.experiments.videomae --parts recipe         # the extra diagnostic

Cost, in CPU time of one thread (wall time on the shared course machine was ~5x longer):
pretrain + speed ~3 min, masking (2 seeds) ~10 min, finetune + efficiency ~7 min, probe < 1 min,
recipe ~3 min. The checkpoint is reproducible: re-running ``--parts pretrain`` (seed 0, 1 thread, CPU)
gave tensor-identical weights.

Model (``MODEL``): tubelet 4 x 7 x 7 -> 112 tokens, encoder dim 48, depth 3, 4 heads, fixed
sincos_1d positions, no CLS; decoder dim 32, depth 1, 4 heads; per-tubelet normalised pixel
target (``norm_pix_loss``), MSE on the masked tubelets only.

Parts (each writes its own file under ``results/``):

* ``pretrain``   tube masking 75 %, ``PRETRAIN_EPOCHS`` epochs on the TRAIN clips only (labels unused),
                 seed 0. Writes the plain ``state_dict`` of the ``VideoMAE`` atomically to
                 ``results/videomae_pretrain.pt`` and the loss per epoch to ``results/videomae_pretrain.csv``.
* ``finetune``   ``VideoMAEClassifier`` (mean pooling + fc_norm + head) fine-tuned from that checkpoint
                 vs the same architecture from scratch, ``FINETUNE_EPOCHS`` epochs, one row per seed.
* ``efficiency`` the same two arms on 10 / 25 / 50 % of the training labels (a seeded subset; the
                 pre-training still saw all TRAIN clips, without labels). Fewer clips per epoch, so
                 the epochs grow as ``FINETUNE_EPOCHS / sqrt(fraction)`` (see ``efficiency_epochs``).
                 The 100 % rows are the ``finetune`` rows.
* ``masking``    tube 50 / 75 / 90 / 95 %, random 90 %, frame 87.5 % (6 of 7 token-frames), each pre-trained
                 ``ABLATION_EPOCHS`` epochs (seeds ``--mask-seeds``, default 0 1), scored by a linear probe
                 (logistic regression on the frozen mean-pooled encoder features, C chosen on VALIDATION
                 AUC, test once), plus a randomly initialised encoder as the no-pre-training reference.
* ``speed``      encoder forward time on all 112 tokens vs the visible ones only, and the FLOP ratio.
* ``recipe``     the ``finetune`` comparison again with a gentler learning rate (``RECIPE_LR`` = 3e-4, both arms):
                 does the verdict depend on the fine-tuning recipe? (``results/videomae_recipe.csv``)
* ``probe``      linear probe of the checkpoint's encoder vs randomly initialised encoders (one per seed):
                 what the pre-trained features hold before any fine-tuning (``results/videomae_probe.csv``).

Fine-tuning recipe (both arms): AdamW lr 1e-3, weight decay 0.05, 1 warm-up epoch then cosine, label
smoothing 0.1, drop path 0.1, ``vtlib.data.augment``, batch 32; ``vtlib.train.fit`` keeps the epoch with
the best VALIDATION AUC and evaluates TEST once. Rows record seed, epochs, device and the command.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from vtlib.checkpoint import save_weights
from vtlib.cost import transformer_flops
from vtlib.data import augment
from vtlib.experiments.common import RESULTS, format_summary, loaders, provenance, read_csv, run, summarise, write_csv
from vtlib.masking import actual_ratio, make_mask
from vtlib.metrics import evaluate_scores
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier
from vtlib.pretrain import PretrainConfig, load_pretrained, pretrain
from vtlib.train import TrainConfig
from vtlib.utils import get_device

MODEL = dict(video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim=48, depth=3, heads=4,
             decoder_dim=32, decoder_depth=1, decoder_heads=4)
ENCODER = {k: MODEL[k] for k in ("video_shape", "tubelet", "dim", "depth", "heads")}
PRETRAIN_EPOCHS = 40
ABLATION_EPOCHS = 15
FINETUNE_EPOCHS = 8
DROP_PATH = 0.1
FRACTIONS = (0.1, 0.25, 0.5)
MASKINGS = (("tube", 0.5), ("tube", 0.75), ("tube", 0.9), ("tube", 0.95), ("random", 0.9), ("frame", 0.875))
CHECKPOINT = RESULTS / "videomae_pretrain.pt"
PARTS = ("pretrain", "finetune", "efficiency", "masking", "speed", "recipe", "probe")
RECIPE_LR = 3e-4
COMMAND = "python -m vtlib.experiments.videomae"


def build_mae() -> VideoMAE:
    """The pre-training model of this experiment and of notebook 08."""
    return VideoMAE(**MODEL)


def pretrain_config(epochs: int = PRETRAIN_EPOCHS, kind: str = "tube", ratio: float = 0.75,
                    seed: int = 0, progress: bool | None = None) -> PretrainConfig:
    """AdamW lr 1.5e-3 (betas 0.9 / 0.95), weight decay 0.05, warm-up 10 % of the epochs, cosine,
    in-plane flips / 90-degree rotations (``vtlib.data.augment``, no intensity scaling)."""
    return PretrainConfig(epochs=epochs, lr=1.5e-3, weight_decay=0.05, warmup_epochs=max(1, epochs // 10),
                          mask_kind=kind, mask_ratio=ratio, seed=seed, augment=_flip_rot, progress=progress)


def _flip_rot(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return augment(x, generator, scale=None)


def finetune_config(epochs: int = FINETUNE_EPOCHS, seed: int = 0, lr: float = 1e-3,
                    progress: bool | None = None) -> TrainConfig:
    """The fine-tuning recipe shared by both arms (and notebook 08); ``recipe`` lowers ``lr``."""
    return TrainConfig(epochs=epochs, lr=lr, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1,
                       select_metric="auc", seed=seed, augment=augment, progress=progress)


def efficiency_epochs(fraction: float, base: int = FINETUNE_EPOCHS) -> int:
    """Epochs for a label fraction: ``base / sqrt(fraction)``, so 10 % of the clips gets ~3x the epochs
    (but ~1/3 of the optimiser steps) of the full set."""
    return math.ceil(base / math.sqrt(fraction))


def run_pretrain(epochs: int = PRETRAIN_EPOCHS, path: Path = CHECKPOINT, seed: int = 0) -> tuple[VideoMAE, list[dict]]:
    """Pre-train on the TRAIN clips, save the state_dict atomically, write the loss history CSV."""
    data = loaders("adrenal", size=28, batch_size=32, seed=seed)
    torch.manual_seed(seed)
    mae = build_mae()
    history = pretrain(mae, data["train"], pretrain_config(epochs, seed=seed))
    save_weights(mae, path)
    prov = {**provenance(), "command": COMMAND + " --parts pretrain"}
    write_csv([{**h, "loss": round(h["loss"], 6), "lr": round(h["lr"], 8), "seconds": round(h["seconds"], 2),
                "mask": "tube", "ratio": 0.75, "seed": seed, "device": str(get_device()), **prov} for h in history],
              path.with_suffix(".csv"))
    print(f"pre-trained {epochs} epochs: loss {history[0]['loss']:.4f} -> {history[-1]['loss']:.4f}; "
          f"wrote {path} ({path.stat().st_size} bytes)", flush=True)
    return mae, history


def load_mae(path: Path = CHECKPOINT) -> VideoMAE:
    """The checkpoint written by ``--parts pretrain``, in eval mode."""
    return load_pretrained(path, **MODEL)


def finetune_rows(mae: VideoMAE, data: dict, seeds, epochs: int, extra: dict, lr: float = 1e-3) -> list[dict]:
    """Both arms, one row per seed: pre-trained encoder vs the same architecture from scratch."""
    rows, extra = [], {**extra, "lr": lr}
    for arm, build in (("pretrained", lambda: VideoMAEClassifier.from_pretrained(mae, drop_path=DROP_PATH)),
                       ("scratch", lambda: VideoMAEClassifier(**ENCODER, drop_path=DROP_PATH))):
        res = run(arm, build, data, finetune_config(epochs, lr=lr), seeds, extra={**extra, "arm": arm})
        for r in res:
            print(f"{arm:>10} {extra}: seed {r['seed']} test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f} "
                  f"(best epoch {r['best_epoch']}/{epochs}, {r['train_seconds']} s)", flush=True)
        rows += res
    return rows


@torch.no_grad()
def encoder_features(encoder, loader) -> tuple[np.ndarray, np.ndarray]:
    """Frozen mean-pooled encoder features (M, D) and labels (M,)."""
    encoder.eval()
    feats, labels = [], []
    for x, y in loader:
        feats.append(encoder(x).mean(1))
        labels.append(y)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def linear_probe(encoder, data: dict, cs=(0.01, 0.1, 1.0)) -> dict:
    """Logistic regression on frozen features: C chosen on validation AUC, test evaluated once."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr), (xva, yva), (xte, yte) = (encoder_features(encoder, data[s]) for s in ("train", "val", "test"))
    best = None
    for c in cs:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(xtr, ytr)
        val_auc = evaluate_scores(yva, clf.predict_proba(xva), "binary-class").auc
        if best is None or val_auc > best[0]:
            best = (val_auc, c, clf)
    val_auc, c, clf = best
    test = evaluate_scores(yte, clf.predict_proba(xte), "binary-class")
    return {"probe_C": c, "val_auc": round(val_auc, 4), "test_auc": round(test.auc, 4), "test_acc": round(test.acc, 4)}


def run_masking(seeds=(0,), epochs: int = ABLATION_EPOCHS) -> list[dict]:
    data = loaders("adrenal", size=28, batch_size=32)
    rows = []
    grid = build_mae().grid
    for seed in seeds:
        torch.manual_seed(seed)
        ref = VideoMAEClassifier(**ENCODER).encoder
        rows.append({"config": "random-init", "mask": "none", "ratio": 0.0, "actual_ratio": 0.0, "seed": seed,
                     "pretrain_epochs": 0, "final_loss": "", **linear_probe(ref, data), "pretrain_seconds": 0.0})
        print(f"random-init encoder seed {seed}: probe test AUC {rows[-1]['test_auc']:.3f}", flush=True)
        for kind, ratio in MASKINGS:
            torch.manual_seed(seed)
            mae = build_mae()
            t0 = time.perf_counter()
            hist = pretrain(mae, data["train"], pretrain_config(epochs, kind, ratio, seed))
            seconds = time.perf_counter() - t0
            row = {"config": f"{kind}-{round(ratio * 100, 1):g}", "mask": kind, "ratio": ratio,
                   "actual_ratio": round(actual_ratio(kind, grid, ratio), 4), "seed": seed,
                   "pretrain_epochs": epochs, "final_loss": round(hist[-1]["loss"], 4),
                   **linear_probe(mae.encoder, data), "pretrain_seconds": round(seconds, 1)}
            rows.append(row)
            print(f"{row['config']:>10} (actual {row['actual_ratio']:.3f}) seed {seed}: loss {row['final_loss']:.4f} "
                  f"probe test AUC {row['test_auc']:.3f} ACC {row['test_acc']:.3f} ({seconds:.0f} s)", flush=True)
    return [{**r, "device": str(get_device())} for r in rows]


@torch.no_grad()
def encoder_speed(mae: VideoMAE, batch: int = 32, ratios=(0.75, 0.9), reps: int = 5) -> list[dict]:
    """Encoder forward time (median of ``reps``) on all tokens vs the visible tokens of a tube mask."""
    enc = mae.encoder.eval()
    x = torch.rand(batch, 1, *enc.video_shape, generator=torch.Generator().manual_seed(0))
    n, dim, depth = enc.num_tokens, enc.dim, len(enc.transformer.blocks)

    def timed(mask):
        enc(x, mask)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            enc(x, mask)
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    full = timed(None)
    rows = [{"tokens": n, "ratio": 0.0, "ms_per_batch": round(full * 1e3, 2), "speedup": 1.0, "flop_ratio": 1.0}]
    for r in ratios:
        mask = make_mask("tube", batch, enc.grid, r, torch.Generator().manual_seed(0))
        nv = n - int(mask[0].sum())
        t = timed(mask)
        rows.append({"tokens": nv, "ratio": r, "ms_per_batch": round(t * 1e3, 2), "speedup": round(full / t, 2),
                     "flop_ratio": round(transformer_flops(n, dim, depth) / transformer_flops(nv, dim, depth), 2)})
    return [{**row, "batch": batch, "threads": torch.get_num_threads(), "device": "cpu"} for row in rows]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=[p for p in PARTS if p != "recipe"], choices=PARTS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mask-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pretrain-epochs", type=int, default=PRETRAIN_EPOCHS)
    parser.add_argument("--masking-out", default=str(RESULTS / "videomae_masking.csv"))
    parser.add_argument("--checkpoint", default=str(CHECKPOINT), help="where --parts pretrain writes (and others read)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)                                  # the course machine is shared
    prov = provenance()
    t_start = time.perf_counter()

    needs_mae = {"speed", "finetune", "efficiency", "recipe", "probe"} & set(args.parts)
    checkpoint = Path(args.checkpoint)
    if "pretrain" in args.parts or (needs_mae and not checkpoint.exists()):
        mae, _ = run_pretrain(args.pretrain_epochs, checkpoint)
    elif needs_mae:
        mae = load_mae(checkpoint)
    if "speed" in args.parts:
        rows = encoder_speed(mae)
        write_csv([{**r, **prov, "command": COMMAND + " --parts speed"} for r in rows], RESULTS / "videomae_speed.csv")
        for r in rows:
            print(f"encoder on {r['tokens']:>3} tokens: {r['ms_per_batch']:.1f} ms/batch, speed-up {r['speedup']}x "
                  f"(FLOPs {r['flop_ratio']}x)", flush=True)
    if "finetune" in args.parts or "efficiency" in args.parts:
        path = RESULTS / "videomae.csv"
        old = [r for r in read_csv(path)] if path.exists() else []
        rows = []
        if "finetune" in args.parts:
            data = loaders("adrenal", size=28, batch_size=32)
            rows += finetune_rows(mae, data, args.seeds, FINETUNE_EPOCHS, {"fraction": 1.0})
        else:
            rows += [r for r in old if float(r["fraction"]) == 1.0]
        if "efficiency" in args.parts:
            for frac in FRACTIONS:
                for seed in args.seeds:  # the label subset changes with the seed, like the init
                    data = loaders("adrenal", size=28, batch_size=32, seed=seed, train_fraction=frac)
                    rows += finetune_rows(mae, data, [seed], efficiency_epochs(frac),
                                          {"fraction": frac, "n_train": len(data["train"].dataset)})
        else:
            rows += [r for r in old if float(r["fraction"]) != 1.0]
        rows = [{**r, **prov, "command": COMMAND} for r in rows]
        write_csv(rows, path)
        for r in rows:
            r["group"] = f"{r['arm']} {float(r['fraction']):.0%}"
        summary = summarise(rows, by="group")
        write_csv(summary, RESULTS / "videomae_summary.csv")
        print(format_summary(summary, by="group"))
    if "recipe" in args.parts:
        data = loaders("adrenal", size=28, batch_size=32)
        rows = finetune_rows(mae, data, args.seeds, FINETUNE_EPOCHS, {"fraction": 1.0}, lr=RECIPE_LR)
        rows = [{**r, **prov, "command": COMMAND + " --parts recipe"} for r in rows]
        write_csv(rows, RESULTS / "videomae_recipe.csv")
        print(format_summary(summarise(rows)))
    if "probe" in args.parts:
        data = loaders("adrenal", size=28, batch_size=32)
        rows = [{"config": f"pre-trained {args.pretrain_epochs} epochs (checkpoint)", "seed": 0,
                 **linear_probe(mae.encoder, data)}]
        for seed in args.seeds:
            torch.manual_seed(seed)
            rows.append({"config": "random-init", "seed": seed,
                         **linear_probe(VideoMAEClassifier(**ENCODER).encoder, data)})
        write_csv([{**r, "device": str(get_device()), **prov, "command": COMMAND + " --parts probe"} for r in rows],
                  RESULTS / "videomae_probe.csv")
        for r in rows:
            print(f"linear probe, {r['config']} seed {r['seed']}: test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f}")
    if "masking" in args.parts:
        rows = run_masking(args.mask_seeds)
        write_csv([{**r, **prov, "command": COMMAND + " --parts masking"} for r in rows],
                  args.masking_out)
    print(f"done in {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
