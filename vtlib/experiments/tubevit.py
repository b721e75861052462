"""TubeViT at small scale on AdrenalMNIST3D: the numbers behind notebook 09.

    python -m vtlib.experiments.tubevit                       # every part below, 3 seeds where set
    python -m vtlib.experiments.tubevit --parts cost compare28 --seeds 0 1 2

Parts (one CSV row per (config, seed) in results/tubevit.csv, mean and sample std per config in
results/tubevit_summary.csv, cost rows in results/tubevit_cost.csv):

    cost        tokens, parameters, FLOPs per clip (counted) and CPU inference throughput
                (clips per CPU-second, 1 thread, batch 32, best of 3 rounds of a median of 5)
                for every model; no training
    compare28   TubeViT (4 tubes, fixed sin-cos at tube centres) vs ViViT Model 1 (4x7x7
                tubelets, learned positions, CLS), 28^3, same width and depth
    compare64   the same at 64^3 (ViViT 8x16x16 tubelets); fewer epochs (see EPOCHS_64)
    table7a     TubeViT position code: none / learned / fixed-index (sin-cos at the token's index
                in its own tube, no stride or offset) / fixed (sin-cos at tube centres) (28^3)
    table7b     number of tube shapes: 1 (cube) / 2 (cube + 2D patch) / 4 (28^3)
    image       one model for frames and clips (28^3): "video-only" is TubeViT-28 again (same seed,
                same result) also tested on slices; "joint" trains TubeViT on slices and clips at
                once; "image" trains the 2D tube alone on slices; "image-to-video" extends that image
                model with the three video tubes behind a closed tanh gate and fine-tunes it briefly
                on clips (GatedTubeViT, lr 5e-4). Test AUC on clips and on single slices (10-18).

Rows shared between parts (e.g. TubeViT-28 is the "fixed" row of 7a and the "4 tubes" row of 7b)
are trained once. Recipe for all: AdamW (lr 1e-3, weight decay 0.05), 1 warm-up epoch then
cosine, label smoothing 0.1, random flips / 90-degree rotations / intensity scaling, batch 32.
``vtlib.train.fit`` keeps the epoch with the best VALIDATION AUC (on clips) and evaluates the
TEST split once with it. The model is small (dim 48, depth 2, heads 4) so that the whole sweep
takes about 25 minutes of CPU time on one thread (about 2.5 s per epoch at 28^3, 15 s at 64^3; much
longer in wall time on a busy machine: ``train_seconds`` is wall time). Rows of configs not re-run are
kept when the CSV already exists, so parts can be run separately (``--parts compare64`` alone takes
about half of the total).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from vtlib.cost import cpu_ms_per_clip, measure_flops
from vtlib.data import augment
from vtlib.errors import bad_arg
from vtlib.experiments.common import (
    RESULTS,
    SLICES,
    format_summary,
    loaders,
    provenance,
    read_csv,
    run,
    slice_loaders,
    summarise,
    write_csv,
)
from vtlib.models.tubevit import GatedTubeViT, TubeViT
from vtlib.models.vivit import ViViT
from vtlib.train import TrainConfig, evaluate, fit
from vtlib.tubes import tube_preset
from vtlib.utils import count_parameters, get_device

MODEL = dict(dim=48, depth=2, heads=4)
EPOCHS = 10                  # 28^3 runs
EPOCHS_64 = 6                # 64^3 runs (8x more voxels per clip)
IMAGE_EPOCHS = 4             # the image model of the "image" part, on slices
GATE_EPOCHS = 3              # brief fine-tuning of the gated image-to-video model
VIVIT_TUBELET = {28: (4, 7, 7), 64: (8, 16, 16)}
PARTS = ("cost", "compare28", "compare64", "table7a", "table7b", "image")


def build_tubevit(size: int = 28, position: str = "fixed", num_tubes: int = 4, **model) -> TubeViT:
    """TubeViT for size^3 AdrenalMNIST3D clips with the course's tube preset."""
    return TubeViT(num_classes=2, video_shape=(size,) * 3, tubes=tube_preset(size, num_tubes),
                   position=position, **{**MODEL, **model})


def build_vivit(size: int = 28, **model) -> ViViT:
    """ViViT Model 1 (learned positions, CLS read-out) at the same width and depth."""
    return ViViT(num_classes=2, video_shape=(size,) * 3, tubelet=VIVIT_TUBELET[size], **{**MODEL, **model})


def build_image(size: int = 28, position: str = "fixed", **model) -> TubeViT:
    """A TubeViT with the 2D tube alone: an image model (it reads one frame of a clip)."""
    return TubeViT(num_classes=2, video_shape=(size,) * 3, tubes=tube_preset(size, 4)[3:],
                   position=position, **{**MODEL, **model})


def build_gated(image: TubeViT, size: int = 28) -> GatedTubeViT:
    """``image`` extended with the three video tubes of the preset behind a closed gate."""
    return GatedTubeViT(image_model=image, tubes=tube_preset(size, 4)[:3], heads=MODEL["heads"])


# Every trained configuration: name -> (size, builder, extra columns).
CONFIGS = {
    "tubevit-28": (28, lambda: build_tubevit(28), dict(model="tubevit", position="fixed", num_tubes=4)),
    "vivit-28": (28, lambda: build_vivit(28), dict(model="vivit", position="learned")),
    "tubevit-64": (64, lambda: build_tubevit(64), dict(model="tubevit", position="fixed", num_tubes=4)),
    "vivit-64": (64, lambda: build_vivit(64), dict(model="vivit", position="learned")),
    "pos-none": (28, lambda: build_tubevit(28, "none"), dict(model="tubevit", position="none", num_tubes=4)),
    "pos-learned": (28, lambda: build_tubevit(28, "learned"), dict(model="tubevit", position="learned", num_tubes=4)),
    "pos-fixed-index": (28, lambda: build_tubevit(28, "fixed-index"),
                        dict(model="tubevit", position="fixed-index", num_tubes=4)),
    "tubes-1": (28, lambda: build_tubevit(28, num_tubes=1), dict(model="tubevit", position="fixed", num_tubes=1)),
    "tubes-2": (28, lambda: build_tubevit(28, num_tubes=2), dict(model="tubevit", position="fixed", num_tubes=2)),
}
PART_CONFIGS = {
    "compare28": ("tubevit-28", "vivit-28"),
    "compare64": ("tubevit-64", "vivit-64"),
    "table7a": ("pos-none", "pos-learned", "pos-fixed-index", "tubevit-28"),
    "table7b": ("tubes-1", "tubes-2", "tubevit-28"),
}
# How the tables of notebook 09 read the configs.
TABLE_7A = {"none": "pos-none", "learned": "pos-learned", "fixed, no stride/offset": "pos-fixed-index",
            "fixed, tube centres": "tubevit-28"}
TABLE_7B = {1: "tubes-1", 2: "tubes-2", 4: "tubevit-28"}


def train_config(epochs: int = EPOCHS, seed: int = 0, lr: float = 1e-3) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=lr, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1,
                       select_metric="auc", seed=seed, augment=augment)


# ----------------------------------------------------------------------------- images and clips
class JointLoader:
    """Alternate batches of clips and batches of single frames: clip, frame, clip, frame, ...

    One epoch = every clip batch once, each followed by the next frame batch (frames cycle).
    Both loaders should shuffle with ``generator``; ``fit`` re-seeds it (``self.generator``).
    """

    def __init__(self, clips: DataLoader, frames: DataLoader):
        for name, ld in (("clips", clips), ("frames", frames)):
            if not isinstance(ld, DataLoader) or len(ld) == 0:
                raise bad_arg(name, "a non-empty DataLoader", type(ld).__name__, "pass the train loaders")
        self.clips, self.frames = clips, frames
        self.generator = clips.generator

    def __len__(self) -> int:
        return 2 * len(self.clips)

    def __iter__(self):
        frame_iter = iter(self.frames)
        for clip_batch in self.clips:
            yield clip_batch
            try:
                yield next(frame_iter)
            except StopIteration:
                frame_iter = iter(self.frames)
                yield next(frame_iter)


def joint_train_loader(data: dict[str, DataLoader], frames=SLICES[28], seed: int = 0) -> JointLoader:
    """Clips and slices of the TRAIN split, sharing one shuffling generator."""
    g = torch.Generator().manual_seed(seed)
    clips = DataLoader(data["train"].dataset, batch_size=data["train"].batch_size, shuffle=True, generator=g)
    sl = slice_loaders({"train": data["train"]}, frames, seed=seed)["train"]
    sl = DataLoader(sl.dataset, batch_size=sl.batch_size, shuffle=True, generator=g)
    return JointLoader(clips, sl)


# ----------------------------------------------------------------------------- cost
def throughput(model: nn.Module, x: torch.Tensor, repeats: int = 5) -> float:
    """Inference clips per CPU-second: 1000 / ``vtlib.cost.cpu_ms_per_clip`` (eval, no grad, one
    warm-up pass, median of ``repeats`` passes of CPU time); run it with one thread."""
    return 1000.0 / cpu_ms_per_clip(model, x, repeats)


def cost_rows(batch: int = 32, rounds: int = 3) -> list[dict]:
    """Tokens, parameters, MFLOPs per clip (counted) and clips per CPU-second for every config.

    Throughput: ``rounds`` rounds over all models (order reversed every other round, so no model
    is always measured first), the best of its per-round medians.
    """
    models, rows = {}, []
    for name, (size, build, extra) in CONFIGS.items():
        torch.manual_seed(0)
        models[name] = (build().eval(), torch.rand(batch, 1, size, size, size))
    speed = {name: 0.0 for name in models}
    for r in range(rounds):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            speed[name] = max(speed[name], throughput(*models[name]))
    for name, (model, x) in models.items():
        size, _, extra = CONFIGS[name]
        rows.append({"config": name, "size": size, **extra, "tokens": model.num_tokens,
                     "params": count_parameters(model), "mflops": round(measure_flops(model, x[:1]) / 1e6, 3),
                     "clips_per_cpu_s": round(speed[name], 1), "batch": batch})
        print(f"{name:>16}: {rows[-1]['tokens']:4d} tokens {rows[-1]['mflops']:8.2f} MFLOPs "
              f"{rows[-1]['clips_per_cpu_s']:7.1f} clips per CPU-second", flush=True)
    return rows


# ----------------------------------------------------------------------------- the image part
def _row(name: str, seed: int, epochs: int, res, model: nn.Module, slice_test: DataLoader, t0: float,
         extra: dict) -> dict:
    s = evaluate(model, slice_test, "binary-class")
    return {"config": name, "seed": seed, "epochs": epochs, "best_epoch": res.best_epoch,
            "val_auc": round(res.best_val["auc"], 4), "test_auc": round(res.test["auc"], 4),
            "test_acc": round(res.test["acc"], 4), "slice_test_auc": round(s["auc"], 4),
            "slice_test_acc": round(s["acc"], 4), "params": count_parameters(model),
            "train_seconds": round(time.perf_counter() - t0, 1), "device": str(get_device()), **extra}


def image_part(data: dict[str, DataLoader], seeds, epochs: int = EPOCHS, image_epochs: int = IMAGE_EPOCHS,
               gate_epochs: int = GATE_EPOCHS, verbose: bool = True) -> list[dict]:
    """Rows video-only / joint / image / image-to-video at 28^3 (see the module docstring)."""
    slices = slice_loaders(data, SLICES[28])
    rows = []
    for seed in seeds:
        for name in ("video-only", "joint"):
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            model = build_tubevit(28)
            train = data["train"] if name == "video-only" else joint_train_loader(data, SLICES[28], seed)
            res = fit(model, train, data["val"], train_config(epochs, seed), test_loader=data["test"])
            rows.append(_row(name, seed, epochs, res, model, slices["test"], t0,
                             dict(model="tubevit", tokens=model.num_tokens)))
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        image = build_image(28)
        res = fit(image, slices["train"], slices["val"], train_config(image_epochs, seed), test_loader=data["test"])
        rows.append(_row("image", seed, image_epochs, res, image, slices["test"], t0,
                         dict(model="tubevit-2d", tokens=image.num_tokens)))
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        gated = build_gated(image, 28)
        res = fit(gated, data["train"], data["val"], train_config(gate_epochs, seed, lr=5e-4),
                  test_loader=data["test"])
        rows.append(_row("image-to-video", seed, gate_epochs, res, gated, slices["test"], t0,
                         dict(model="gated", tokens=image.num_tokens + gated.video_pos.num_tokens,
                              gate=round(gated.gate.item(), 4))))
        if verbose:
            for r in rows[-4:]:
                print(f"{r['config']:>16} seed {seed}: clip test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f}, "
                      f"slice test AUC {r['slice_test_auc']:.3f} ({r['train_seconds']} s)", flush=True)
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds-64", type=int, nargs="+", default=None, help="seeds at 64^3 (default: --seeds)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--epochs-64", type=int, default=EPOCHS_64)
    parser.add_argument("--out", default=str(RESULTS / "tubevit.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)                                   # the course machine is shared
    prov = {**provenance(), "command": "python -m vtlib.experiments.tubevit"}
    out = Path(args.out)
    if "cost" in args.parts:
        cost = [{**r, **prov} for r in cost_rows()]
        write_csv(cost, out.with_name(out.stem + "_cost.csv"))
    names = []
    for part in args.parts:
        names += [n for n in PART_CONFIGS.get(part, ()) if n not in names]
    rows = []
    for name in names:
        size, build, extra = CONFIGS[name]
        big = size == 64
        epochs, seeds = (args.epochs_64, args.seeds_64 or args.seeds) if big else (args.epochs, args.seeds)
        data = loaders("adrenal", size=size, batch_size=32)
        res = run(name, build, data, train_config(epochs), seeds,
                  extra={"size": size, **extra, "tokens": build().num_tokens, **MODEL})
        for r in res:
            print(f"{name:>16} seed {r['seed']}: test AUC {r['test_auc']:.3f} ACC {r['test_acc']:.3f} "
                  f"(val AUC {r['val_auc']:.3f}, best epoch {r['best_epoch']}/{epochs}, {r['train_seconds']} s)",
                  flush=True)
        rows += res
    if "image" in args.parts:
        rows += [{"size": 28, **r, **MODEL} for r in image_part(loaders("adrenal", size=28, batch_size=32),
                                                               args.seeds, args.epochs)]
    if rows:
        rows = [{**r, **prov} for r in rows]
        done = {r["config"] for r in rows}                     # keep earlier rows of configs not re-run
        old = [r for r in read_csv(out) if r["config"] not in done] if out.exists() else []
        rows = old + rows
        path = write_csv(rows, out)
        summary = summary_rows(rows)
        write_csv(summary, path.with_name(path.stem + "_summary.csv"))
        print(format_summary(summary))
        print("wrote", path, "and", path.with_name(path.stem + "_summary.csv"))
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and sample std per config of test AUC/ACC (and slice AUC/ACC where a row has them)."""
    keys, slice_keys = ("test_auc", "test_acc"), ("test_auc", "test_acc", "slice_test_auc", "slice_test_acc")
    with_slices = [r for r in rows if r.get("slice_test_auc") not in (None, "")]
    plain = [r for r in rows if r.get("slice_test_auc") in (None, "")]
    return (summarise(plain, keys) if plain else []) + (summarise(with_slices, slice_keys) if with_slices else [])


if __name__ == "__main__":
    main()
