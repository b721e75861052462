"""A frozen-feature store: run a pretrained model once over every clip, keep one vector per clip (notebook 12).

Transfer learning, approach 2: the backbone stays frozen, so its output for a clip never changes. Computing it
once and storing it turns every later experiment (a linear probe, kNN, a triplet head from ``vtlib.metric``)
into seconds of work on a (N, D) matrix instead of hours of forward passes.

    feats = {s: extract_features(model.features, loader(s)) for s in ("train", "val")}   # loaders must not shuffle
    save_features("results/adrenal_feats", feats, meta={"model": "videomae-small", "pooling": "mean"})
    x, y = load_features("results/adrenal_feats", "train")      # torch (N, D) float32, (N,) int64
    head_loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)   # shuffling is fine now

The store is a Hugging Face ``datasets.DatasetDict`` written with ``save_to_disk`` (Apache Arrow files that
``load_from_disk`` memory-maps, so a large store is not read into RAM until used). Each split has the columns
``index`` (the clip's position in its split), ``label`` and ``features`` (a fixed-length float32 list). The
index is the key: ``load_features`` refuses a split whose index is not 0..N-1 in order, so features can never
be paired with the wrong clip. ``vtlib_store.json`` beside the splits keeps the caller's ``meta`` (model,
layer, pooling, dataset, size ...). A store is written into a temporary sibling folder and renamed into place,
so an interrupted save leaves nothing behind. ``export_split`` / ``load_clips`` store raw MedMNIST clips the
same way (uint8, as in the MedMNIST files).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SubsetRandomSampler, WeightedRandomSampler

from vtlib.errors import bad_arg

STORE_FILE = "vtlib_store.json"
SHUFFLING = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


def _check_loader(loader) -> None:
    if isinstance(loader, DataLoader):
        samplers = [loader.sampler, getattr(loader.batch_sampler, "sampler", None)]
        if any(isinstance(s, SHUFFLING) for s in samplers):
            raise bad_arg("loader", "a DataLoader that keeps the split's order (the sample index is the key)",
                          "one with a shuffling sampler", "build it with shuffle=False (shuffle the stored features "
                          "later, when training the head)")
        if loader.drop_last:
            raise bad_arg("loader", "a DataLoader that yields every sample", "drop_last=True",
                          "build it with drop_last=False")


def extract_features(fn: Callable[[torch.Tensor], torch.Tensor], loader, *,
                     device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``fn(x) -> (B, D)`` over a loader of (x, y) batches, in order -> features float32 (N, D), labels int64 (N,).

    Runs under ``torch.no_grad()``. If ``fn`` is an ``nn.Module`` or a bound method of one (``model.features``),
    the module is put in eval mode (no dropout, frozen norms) and every submodule's mode restored afterwards; a
    plain function must call ``model.eval()`` itself. Batches go to ``device`` (default: the module's device).
    """
    _check_loader(loader)
    module = next((m for m in (fn, getattr(fn, "__self__", None)) if isinstance(m, nn.Module)), None)
    if device is None and module is not None:
        device = next((p.device for p in module.parameters()), None)
    modes = [(m, m.training) for m in module.modules()] if module is not None else []
    feats, labels = [], []
    try:
        for m, _ in modes:
            m.eval()
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise bad_arg("loader", "batches (x, y)", f"batch {i}: {type(batch).__name__}",
                                  "wrap clips and labels in a TensorDataset(x, y)")
                x, y = batch
                y = torch.as_tensor(y).reshape(-1)
                if y.is_floating_point() or y.dtype == torch.bool or len(y) != len(x):
                    raise bad_arg("loader", "integer labels y, one per clip", f"batch {i}: y {y.dtype} "
                                  f"shape {tuple(y.shape)} for {len(x)} clips", "yield (clips, labels) pairs")
                out = fn(x.to(device) if device is not None else x)
                width = feats[0].shape[1] if feats else None
                if not isinstance(out, torch.Tensor) or out.ndim != 2 or len(out) != len(x) or \
                        (width is not None and out.shape[1] != width):
                    got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
                    raise bad_arg("fn", f"one feature vector per clip, ({len(x)}, {width or 'D'})", f"batch {i}: {got}",
                                  "pool the tokens (e.g. mean over axis 1) so fn returns (B, D)")
                if not torch.isfinite(out).all():
                    raise bad_arg("fn", "finite features", f"NaN/inf in batch {i}", "check the model and its input")
                feats.append(out.detach().float().cpu())
                labels.append(y.long().cpu())
    finally:
        for m, mode in modes:
            m.train(mode)
    if not feats:
        raise bad_arg("loader", "at least one batch", "an empty loader", "check the split")
    return torch.cat(feats), torch.cat(labels)


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bars while writing: they would land in the notebooks' stored outputs."""
    import datasets

    was_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def _write_store(path, build: Callable[[], object], store: dict, *, overwrite: bool) -> Path:
    """Write ``build()`` (a DatasetDict) and the store file into a temp sibling, then rename it to ``path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise bad_arg("path", "a path that does not exist yet", f"{path}, which exists", "pass overwrite=True or "
                      "another path")
    if path.exists() and not (path / STORE_FILE).is_file():
        raise bad_arg("path", "a vtlib store to overwrite", f"{path}, which holds something else",
                      "pass another path; vtlib only replaces folders it wrote")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        with _quiet_datasets():
            build().save_to_disk(str(tmp))
        (tmp / STORE_FILE).write_text(json.dumps(store, indent=1))
        if path.exists():
            old = path.with_name(tmp.name[:-4] + ".old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _check_meta(meta) -> dict:
    try:
        if meta is None or (isinstance(meta, dict) and json.loads(json.dumps(meta)) == meta):
            return meta or {}
    except (TypeError, ValueError):
        pass
    raise bad_arg("meta", "a dict that survives JSON unchanged (str keys; str, numbers, lists, dicts)",
                  repr(meta)[:80], "write tuples as lists and objects as strings")


def _split_arrays(name: str, pair) -> tuple[np.ndarray, np.ndarray]:
    if not re.fullmatch(r"\w+", str(name)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise bad_arg("splits", "{split name (letters, digits, _): (features, labels)}", f"{name!r}: "
                      f"{type(pair).__name__}", "pass e.g. {'train': extract_features(fn, train_loader)}")
    f, y = (torch.as_tensor(v).detach().cpu() for v in pair)
    if f.ndim != 2 or not f.is_floating_point() or len(f) == 0 or not torch.isfinite(f).all():
        raise bad_arg(f"splits[{name!r}]", "finite float features (N >= 1, D)", f"{f.dtype} {tuple(f.shape)}",
                      "pass the features extract_features returns")
    if y.ndim != 1 or len(y) != len(f) or y.is_floating_point() or y.dtype == torch.bool:
        raise bad_arg(f"splits[{name!r}]", f"integer labels ({len(f)},), one per feature row",
                      f"{y.dtype} {tuple(y.shape)}", "pass the labels extract_features returns")
    return f.float().numpy(), y.long().numpy()


def save_features(path: str | os.PathLike, splits: dict, *, meta: dict | None = None,
                  overwrite: bool = False) -> Path:
    """Store {split: (features (N, D), labels (N,))} at ``path`` (a folder) with ``meta``; returns the path."""
    import datasets

    if not isinstance(splits, dict) or not splits:
        raise bad_arg("splits", "a non-empty dict {split: (features, labels)}", type(splits).__name__,
                      "pass e.g. {'train': (x, y), 'val': (xv, yv)}")
    meta = _check_meta(meta)
    arrays = {name: _split_arrays(name, pair) for name, pair in splits.items()}
    dims = {name: f.shape[1] for name, (f, _) in arrays.items()}
    if len(set(dims.values())) != 1:
        raise bad_arg("splits", "features of one width D in every split", dims, "extract every split with the same fn")
    dim = next(iter(dims.values()))
    columns = datasets.Features({"index": datasets.Value("int64"), "label": datasets.Value("int64"),
                                 "features": datasets.List(datasets.Value("float32"), length=dim)})

    def build():
        return datasets.DatasetDict({name: datasets.Dataset.from_dict(
            {"index": np.arange(len(f)), "label": y, "features": f}, features=columns)
            for name, (f, y) in arrays.items()})

    store = {"kind": "features", "column": "features", "rows": {n: len(f) for n, (f, _) in arrays.items()},
             "meta": meta}
    return _write_store(path, build, store, overwrite=overwrite)


def _store(path) -> dict:
    file = Path(path) / STORE_FILE
    if not file.is_file():
        raise bad_arg("path", "a folder written by vtlib.features (save_features or export_split)", str(path),
                      "check the path, or write the store first")
    return json.loads(file.read_text())


def feature_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` dict saved with the store (model, layer, pooling, dataset ...)."""
    return _store(path)["meta"]


def open_store(path: str | os.PathLike, split: str):
    """One split as a memory-mapped ``datasets.Dataset`` in torch format, after checking its index column.

    Pitfall: the torch (and numpy) formatter of ``datasets`` casts every integer column to int64, so uint8
    clips would come back 8 times larger; a clip store therefore formats only ``clip``, as uint8.
    """
    import datasets

    store = _store(path)
    if split not in store["rows"]:
        raise bad_arg("split", f"one of the stored splits {sorted(store['rows'])}", repr(split), "pass one of those")
    with _quiet_datasets():
        ds = datasets.load_from_disk(str(path))[split]
    index = ds.data.column("index").to_numpy()
    if ds.num_rows != store["rows"][split] or not np.array_equal(index, np.arange(ds.num_rows)):
        raise bad_arg("split", f"rows indexed 0..{store['rows'][split] - 1} in order", f"{split!r} in {path} with "
                      f"{ds.num_rows} rows, index starting {index[:5].tolist()}", "rewrite the store with "
                      "save_features; never reorder or filter its Arrow files")
    if store["kind"] == "clips":
        return ds.with_format("torch", columns=["clip"], dtype=torch.uint8, output_all_columns=True)
    return ds.with_format("torch")


def _load(path, split: str, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    store = _store(path)
    if store["kind"] != kind:
        raise bad_arg("path", f"a store of {kind}", f"{path}, a store of {store['kind']}",
                      "use load_features for save_features stores, load_clips for export_split ones")
    ds = open_store(path, split)
    return ds[:][store["column"]], torch.tensor(ds.data.column("label").to_numpy())


def load_features(path: str | os.PathLike, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a feature store -> features torch float32 (N, D), labels torch int64 (N,)."""
    return _load(path, split, "features")


def load_clips(path: str | os.PathLike, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split written by export_split -> clips torch uint8 (N, D, H, W), labels int64 (N,).
    ``vtlib.data.to_video`` makes them float clips (N, 1, T, H, W) in [0, 1]."""
    return _load(path, split, "clips")


def export_split(name: str, split: str, size: int, path: str | os.PathLike, *,
                 root: str | os.PathLike | None = None, download: bool = True, overwrite: bool = False) -> Path:
    """Store a MedMNIST split as clips uint8 (N, D, H, W) + labels, with the index and atomic write of
    save_features. Read it back with ``load_clips(path, split)`` (or ``open_store`` for a Dataset)."""
    import datasets

    from vtlib.data import load_arrays

    volumes, labels = load_arrays(name, split, size, root, download=download)
    columns = datasets.Features({"index": datasets.Value("int64"), "label": datasets.Value("int64"),
                                 "clip": datasets.Array3D(shape=volumes.shape[1:], dtype="uint8")})

    def build():
        return datasets.DatasetDict({split: datasets.Dataset.from_dict(
            {"index": np.arange(len(volumes)), "label": labels, "clip": volumes}, features=columns)})

    store = {"kind": "clips", "column": "clip", "rows": {split: len(volumes)},
             "meta": {"dataset": name, "split": split, "size": size}}
    return _write_store(path, build, store, overwrite=overwrite)
