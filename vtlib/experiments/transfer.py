"""Transfer on AdrenalMNIST3D 28^3: which source, which approach, at 10 % and 100 % of the labels (notebook 12).

    python -m vtlib.experiments.transfer                    # every part, seeds 0 1 2, 1 CPU thread
    python -m vtlib.experiments.transfer --parts features   # only the frozen-feature heads (minutes)

Every run uses notebook 08's VideoMAE classifier (tubelet 4 x 7 x 7 -> 112 tokens, dim 48, depth 3,
4 heads, mean pooling + fc_norm + head), so sources and approaches are compared on one architecture.

Sources (``SOURCES``), none of which saw a test or validation label:

* ``scratch``   random initialisation (the baseline every row is paired with);
* ``videomae``  notebook 08's self-supervised checkpoint (``results/videomae_pretrain.pt``: 40 epochs of
                75 % tube masking on ALL the AdrenalMNIST3D TRAIN clips, no labels; so the 10 % rows are
                semi-supervised: the pre-training saw the other 90 % of the clips without their labels);
* ``motion``    supervised on the synthetic direction task (1024 moving-object videos, 28 frames of 28 x 28;
                ``MOTION_EPOCHS`` epochs, seed 0, saved to ``results/transfer_motion.pt``): a source from
                another domain, as a pretrained Kinetics model is for a medical task;
* ``slice``     an image model: the same encoder on single 28 x 28 slices (1 x 7 x 7 patches, 16 tokens), trained
                with labels on the middle slices of the TRAIN clips (each slice labelled with its clip's label;
                ``SLICE_EPOCHS`` epochs, seed 0, ``results/transfer_slice.pt``), then inflated to video: its
                patch filter copied over the 4 frames of a tubelet and divided by 4 (I3D / ViViT inflation),
                its blocks copied as they are (the fixed position code is rebuilt for 112 tokens).

Part ``finetune`` (approach 1, ``vtlib.transfer.Finetune``): ``probe`` (only fc_norm + head), ``partial``
(the last block + fc_norm + head), ``full`` (everything), each from both sources, and ``scratch-full``.
Recipe of notebook 08 (AdamW lr 1e-3, weight decay 0.05, 1 warm-up epoch + cosine, label smoothing 0.1,
drop path 0.1, flips / rotations / intensity scaling), ``EPOCHS`` epochs at 100 % of the labels and
``EPOCHS / sqrt(fraction)`` at 10 % (a seeded subset, the one ``experiments.common.loaders`` keeps).

Part ``features`` (approach 2, ``vtlib.features``): the frozen encoder's pooled features of every clip,
extracted once per source into a ``datasets`` store (``results/transfer_features/``, not committed), then
``logreg`` (logistic regression, C chosen on validation AUC), ``mlp`` (one hidden layer, epoch chosen on
validation AUC) and ``triplet`` (a linear embedding trained with the batch-hard triplet loss, scored by the
nearest class centroid). Random-init features (``scratch``) are re-drawn per seed.

Outputs: ``results/transfer.csv`` (one row per run: test AUC / ACC of the validation-selected model, trained
and total parameters, seconds), ``transfer_scores.csv`` (per-clip test scores of every run) and
``transfer_intervals.csv`` (pooled 95 % intervals, and the paired difference from ``scratch-full`` at the
same label fraction).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.checkpoint import load_weights, save_weights
from vtlib.data import augment, load_split
from vtlib.errors import bad_arg, check_choice
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
    write_csv,
    write_scores,
)
from vtlib.experiments.videomae import CHECKPOINT, DROP_PATH, ENCODER, load_mae
from vtlib.metrics import evaluate_scores
from vtlib.models.videomae import VideoMAEClassifier
from vtlib.tokens import inflate_2d
from vtlib.train import TrainConfig, fit
from vtlib.transfer import Finetune, count_trainable

COMMAND = "python -m vtlib.experiments.transfer"
PARTS = ("finetune", "features")
SOURCES = ("scratch", "videomae", "motion", "slice")
APPROACHES = ("probe", "partial", "full")
HEADS = ("logreg", "mlp", "triplet")
FRACTIONS = (0.1, 1.0)
EPOCHS = 8
LR = 1e-3
MOTION_EPOCHS = 4
MOTION_CHECKPOINT = RESULTS / "transfer_motion.pt"
SLICE_EPOCHS = 6
SLICE_CHECKPOINT = RESULTS / "transfer_slice.pt"
FEATURES = RESULTS / "transfer_features"
OUT = RESULTS / "transfer.csv"


def epochs_for(fraction: float, base: int = EPOCHS) -> int:
    """``base / sqrt(fraction)``: 10 % of the clips gets ~3x the epochs (still ~1/3 of the steps)."""
    return math.ceil(base / math.sqrt(fraction))


def finetune_config(epochs: int, seed: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=LR, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1,
                       select_metric="auc", seed=seed, augment=augment, progress=False, device="cpu")


def trained_source(model: nn.Module, data: dict, *, name: str, task: str, epochs: int, path: Path) -> nn.Module:
    """``model`` with the weights saved at ``path``, or trained on ``data`` (seed 0, selected on validation
    AUC) and saved there first, with its row in ``path.with_suffix(".csv")``."""
    if path.exists():
        return load_weights(model, path).eval()
    cfg = TrainConfig(epochs=epochs, lr=LR, weight_decay=0.05, warmup_epochs=1.0, seed=0, progress=False, device="cpu")
    t0 = time.perf_counter()
    result = fit(model, data["train"], data["val"], cfg, test_loader=data["test"])
    save_weights(model, path)
    write_csv([{"source": name, "task": task, "epochs": epochs, "best_epoch": result.best_epoch,
                "val_auc": round(result.best_val["auc"], 4), "test_auc": round(result.test["auc"], 4),
                "train_seconds": round(time.perf_counter() - t0, 1), "seed": 0, "device": "cpu",
                **provenance(), "command": COMMAND}], path.with_suffix(".csv"))
    return model.eval()


def motion_source(path: Path = MOTION_CHECKPOINT, epochs: int = MOTION_EPOCHS) -> VideoMAEClassifier:
    """The classifier trained on the synthetic direction task (trained and saved on first use)."""
    torch.manual_seed(0)
    model = VideoMAEClassifier(**ENCODER)
    data = {} if path.exists() else loaders("direction", size=28, frames=28, n_train=1024, seed=0)
    return trained_source(model, data, name="motion", task="direction", epochs=epochs, path=path)


def slice_source(path: Path = SLICE_CHECKPOINT, epochs: int = SLICE_EPOCHS) -> VideoMAEClassifier:
    """The image model: the encoder on single slices (1, 28, 28), trained on the TRAIN clips' middle slices."""
    torch.manual_seed(0)
    model = VideoMAEClassifier(**{**ENCODER, "video_shape": (1, 28, 28), "tubelet": (1, 7, 7)})
    data = {} if path.exists() else slice_loaders(loaders("adrenal", batch_size=32, seed=0), SLICES[28], seed=0)
    return trained_source(model, data, name="slice", task="adrenal slices", epochs=epochs, path=path)


def inflated(image_model: VideoMAEClassifier, drop_path: float = DROP_PATH) -> VideoMAEClassifier:
    """The video classifier with the image model's weights: the patch filter inflated over the tubelet's
    frames (``tokens.inflate_2d``), everything else copied; a new fc_norm + head."""
    video = VideoMAEClassifier(**ENCODER, drop_path=drop_path)
    state = {k: v for k, v in image_model.encoder.state_dict().items()}
    w = state["embed.proj.weight"]                                         # (D, C, 1, p, p)
    state["embed.proj.weight"] = inflate_2d(w[:, :, 0], ENCODER["tubelet"][0])  # (D, C, t, p, p)
    video.encoder.load_state_dict(state)
    return video


def source_model(source: str, seed: int) -> VideoMAEClassifier:
    """A fresh classifier holding ``source``'s encoder (a new fc_norm + head for AdrenalMNIST3D)."""
    check_choice("source", source, SOURCES)
    torch.manual_seed(seed)
    if source == "scratch":
        return VideoMAEClassifier(**ENCODER, drop_path=DROP_PATH)
    if source == "slice":
        return inflated(slice_source())
    encoder = load_mae(CHECKPOINT).encoder if source == "videomae" else motion_source().encoder
    return VideoMAEClassifier.from_pretrained(encoder, drop_path=DROP_PATH)


def _base(config: str, source: str, fraction: float, seed: int) -> dict:
    return {"config": config, "source": source, "fraction": fraction, "seed": seed}


def finetune(source: str, approach: str, fraction: float, seed: int) -> tuple[Finetune, dict]:
    """One fine-tuning run: (the trained net, its row with the per-clip test scores under ``"_scores"``)."""
    check_choice("approach", approach, APPROACHES)
    if source == "scratch" and approach != "full":
        raise bad_arg("approach", "'full' for source 'scratch' (a frozen random encoder is part 'features')",
                      repr(approach), "use approach='full'")
    model = source_model(source, seed)
    net = Finetune(model, approach=approach, blocks=1)
    epochs = epochs_for(fraction)
    data = loaders("adrenal", size=28, batch_size=32, seed=seed, train_fraction=fraction)
    t0 = time.perf_counter()
    result = fit(net, data["train"], data["val"], finetune_config(epochs, seed), test_loader=data["test"])
    seconds = time.perf_counter() - t0
    trained, total = count_trainable(net)
    return net, {**_base(f"{source}-{approach}", source, fraction, seed), "approach": approach, "head": "",
            "epochs": epochs, "best_epoch": result.best_epoch, "val_auc": round(result.best_val["auc"], 4),
            "test_auc": round(result.test["auc"], 4), "test_acc": round(result.test["acc"], 4),
            "trained_params": trained, "params": total, "train_seconds": round(seconds, 1),
            "seconds_per_epoch": round(seconds / epochs, 2), "n_train": len(data["train"].dataset),
            "_scores": positive_scores(result.test)}


def finetune_run(source: str, approach: str, fraction: float, seed: int) -> dict:
    """The row of :func:`finetune` (what the sweep keeps)."""
    return finetune(source, approach, fraction, seed)[1]


# ----------------------------------------------------------------------------- approach 2: frozen features
def store_features(source: str, seed: int, root: Path = FEATURES) -> Path:
    """Extract ``source``'s pooled features of every clip once into a ``datasets`` store; its path."""
    from vtlib.features import extract_features, save_features

    path = root / (f"{source}-s{seed}" if source == "scratch" else source)
    if path.exists():
        return path
    model = source_model(source, seed).eval()
    t0 = time.perf_counter()
    splits = {s: extract_features(model.features, ordered_loader(s)) for s in ("train", "val", "test")}
    save_features(path, splits, meta={"source": source, "seed": seed, "layer": "fc_norm(mean pool(encoder))",
                                      "dataset": "adrenal", "size": 28,
                                      "extract_seconds": round(time.perf_counter() - t0, 2)})
    return path


def ordered_loader(split: str, batch_size: int = 64) -> DataLoader:
    """An AdrenalMNIST3D 28^3 split in its stored order (no shuffling: the sample index is the store's key)."""
    return DataLoader(TensorDataset(*load_split("adrenal", split)), batch_size=batch_size)


def train_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """The training indices ``loaders(train_fraction=fraction, seed=seed)`` keeps (the same clips)."""
    if fraction >= 1.0:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[: max(2, int(round(fraction * n)))]


def logreg_head(xtr, ytr, xva, yva, xte, seed: int, cs=(0.01, 0.1, 1.0, 10.0)) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features, C chosen on validation AUC: (test scores, val AUC)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr, xva, yva, xte = (np.asarray(a) for a in (xtr, ytr, xva, yva, xte))
    best = None
    for c in cs:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed)).fit(xtr, ytr)
        auc = evaluate_scores(yva, clf.predict_proba(xva), "binary-class").auc
        if best is None or auc > best[0]:
            best = (auc, clf)
    return best[1].predict_proba(xte)[:, 1], best[0]


def _standardise(xtr: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    return [(x - mean) / std for x in (xtr, *others)]


def mlp_head(xtr, ytr, xva, yva, xte, seed: int, epochs: int = 200, hidden: int = 64) -> tuple[np.ndarray, float]:
    """One hidden layer, AdamW on the whole (small) training set per step; the epoch with the best
    validation AUC is kept: (test scores, val AUC)."""
    torch.manual_seed(seed)
    xtr, xva, xte = _standardise(xtr, xva, xte)
    net = nn.Sequential(nn.Linear(xtr.shape[1], hidden), nn.GELU(), nn.Dropout(0.2), nn.Linear(hidden, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    best = (-1.0, None)
    for _ in range(epochs):
        net.train()
        loss = nn.functional.cross_entropy(net(xtr), ytr, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            auc = evaluate_scores(yva.numpy(), net(xva).softmax(-1).numpy(), "binary-class").auc
            if auc > best[0]:
                best = (auc, net(xte).softmax(-1)[:, 1].numpy())
    return best[1], best[0]


def triplet_head(xtr, ytr, xva, yva, xte, seed: int, epochs: int = 200, dim: int = 16,
                 margin: float = 0.2) -> tuple[np.ndarray, float]:
    """A linear embedding (L2-normalised) trained with the batch-hard triplet loss on class-balanced
    batches; score = distance to the negative-class centroid minus distance to the positive one; the
    epoch with the best validation AUC is kept: (test scores as sigmoid(score), so 0.5 is the nearest
    centroid, val AUC)."""
    from vtlib.metric import class_centroids, pairwise_distances, triplet_loss

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xtr, xva, xte = _standardise(xtr, xva, xte)
    embed = nn.Linear(xtr.shape[1], dim)
    opt = torch.optim.AdamW(embed.parameters(), lr=1e-3, weight_decay=0.05)
    by_class = [torch.nonzero(ytr == c).flatten() for c in (0, 1)]
    per_class = min(32, min(len(i) for i in by_class))

    def score(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            e = nn.functional.normalize(embed(x), dim=-1)
            classes, centroids = class_centroids(nn.functional.normalize(embed(xtr), dim=-1), ytr)
            d = pairwise_distances(e, centroids)
            return torch.sigmoid(d[:, list(classes).index(0)] - d[:, list(classes).index(1)]).numpy()

    best = (-1.0, None)
    for _ in range(epochs):
        batch = torch.cat([i[torch.randperm(len(i), generator=g)[:per_class]] for i in by_class])
        loss = triplet_loss(nn.functional.normalize(embed(xtr[batch]), dim=-1), ytr[batch], margin=margin,
                            mining="hard")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sva = score(xva)
        auc = evaluate_scores(yva.numpy(), np.stack([1 - sva, sva], axis=1), "binary-class").auc
        if auc > best[0]:
            best = (auc, score(xte))
    return best[1], best[0]


HEAD_FNS = {"logreg": logreg_head, "mlp": mlp_head, "triplet": triplet_head}


def features_run(source: str, head: str, fraction: float, seed: int) -> dict:
    """One light head on the stored features of ``source``; row with per-clip test scores."""
    from vtlib.features import load_features

    check_choice("head", head, HEADS)
    path = store_features(source, seed)
    (xtr, ytr), (xva, yva), (xte, yte) = (load_features(path, s) for s in ("train", "val", "test"))
    keep = train_subset(len(ytr), fraction, seed)
    xtr, ytr = xtr[keep], ytr[keep]
    t0 = time.perf_counter()
    scores, val_auc = HEAD_FNS[head](xtr, ytr, xva, yva, xte, seed)
    seconds = time.perf_counter() - t0
    test = evaluate_scores(yte.numpy(), np.stack([1 - scores, scores], axis=1), "binary-class")
    return {**_base(f"{source}-features-{head}", source, fraction, seed), "approach": "features", "head": head,
            "epochs": "", "best_epoch": "", "val_auc": round(val_auc, 4), "test_auc": round(test.auc, 4),
            "test_acc": round(test.acc, 4), "trained_params": "", "params": "", "train_seconds": round(seconds, 2),
            "seconds_per_epoch": "", "n_train": len(ytr), "_scores": [float(f"{v:.9g}") for v in scores]}


# ----------------------------------------------------------------------------- the sweep
def plan(parts=PARTS, seeds=(0, 1, 2), fractions=FRACTIONS) -> list[tuple[str, str, str, float, int]]:
    """Every run as (part, source, approach or head, fraction, seed), seed-major so a stopped sweep has
    whole seeds."""
    runs = []
    for seed in seeds:
        for fraction in fractions:
            if "features" in parts:
                runs += [("features", src, head, fraction, seed) for src in SOURCES for head in HEADS]
            if "finetune" in parts:
                runs.append(("finetune", "scratch", "full", fraction, seed))
                runs += [("finetune", src, a, fraction, seed) for src in SOURCES[1:] for a in APPROACHES]
    return runs


def _label(fraction: float) -> str:
    return f"{round(float(fraction) * 100):d}%"


def _key(part: str, config: str, fraction, seed) -> tuple[str, str, str]:
    return part, f"{config}@{_label(fraction)}", str(seed)


def interval_rows(scores: dict[tuple[str, str, str], list[float]]) -> list[dict]:
    """Pooled 95 % interval of every config's mean test AUC, and its paired difference from
    ``scratch-full`` at the same label fraction (same test clips, seeds paired)."""
    y = load_split("adrenal", "test")[1].numpy()
    runs: dict[str, dict[str, list[float]]] = {}
    for (_, config, seed), s in sorted(scores.items()):
        runs.setdefault(config, {})[seed] = s
    return paired_interval_rows(y, runs, lambda c: "scratch-full@" + c.split("@")[1])


def sweep(parts=PARTS, seeds=(0, 1, 2), fractions=FRACTIONS, out: str | Path = OUT, verbose: bool = True) -> list[dict]:
    """Run every planned run not yet in ``out`` (with its scores); rows and scores are rewritten after each
    run (a stopped sweep resumes), the intervals once at the end."""
    out = Path(out)
    rows = read_csv(out) if out.exists() else []
    scores = read_scores(out)
    done = {_key(r["part"], r["config"], r["fraction"], r["seed"]) for r in rows}
    done &= set(scores)
    rows = [r for r in rows if _key(r["part"], r["config"], r["fraction"], r["seed"]) in done]
    t_start = time.perf_counter()
    for part, source, what, fraction, seed in plan(parts, seeds, fractions):
        config = f"{source}-{what}" if part == "finetune" else f"{source}-features-{what}"
        key = _key(part, config, fraction, seed)
        if key in done:
            continue
        row = (finetune_run if part == "finetune" else features_run)(source, what, fraction, seed)
        scores[key] = row.pop("_scores")
        rows.append({"part": part, **row, "device": "cpu", **provenance(), "command": COMMAND})
        done.add(key)
        write_csv(rows, out)
        write_scores(scores, out)
        if verbose:
            print(f"[{time.perf_counter() - t_start:6.0f} s] {config:>24} {_label(fraction):>4} seed {seed}: "
                  f"test AUC {row['test_auc']:.3f} ACC {row['test_acc']:.3f} ({row['train_seconds']} s)", flush=True)
    if scores:                                  # the bootstrap over every config, once per sweep
        write_csv(interval_rows(scores), out.with_name(out.stem + "_intervals.csv"))
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    return sweep(args.parts, args.seeds, args.fractions, args.out)


if __name__ == "__main__":
    main()
