"""The six MedMNIST v2 3D datasets, read as short grayscale videos (depth slices are frames).

Metadata (URLs, MD5, labels, split sizes, license) comes from the official ``medmnist``
package's ``INFO`` table; nothing is copied here. Files live in the data root:

1. the ``root`` argument, else
2. the ``VTLIB_DATA`` environment variable, else
3. the repository's ``data/`` folder (``~/.vtlib/data`` when vtlib is installed elsewhere).

A file already there is used without any network access (after an MD5 check, repeated whenever
the file changes on disk); a missing one is downloaded from the official URL, or from a mirror
(the ``mirror`` argument or the ``VTLIB_DATA_URL`` variable: a base URL that serves the same file
names), see ``download.py``.

Normalisation (documented once, used everywhere): voxels are uint8 in [0, 255]; ``to_video``
maps them to float32 in [0, 1] (x / 255). ``load_split(..., normalize="standard")`` further
subtracts the training split's mean voxel value and divides by its standard deviation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vtlib.data.download import DataFileError, download_file, md5sum
from vtlib.errors import bad_arg, check_choice, check_positive_int

NAMES = ("organ", "nodule", "adrenal", "fracture", "vessel", "synapse")
SIZES = (28, 64)
SPLITS = ("train", "val", "test")
MIRROR_ENV = "VTLIB_DATA_URL"
_VERIFIED: dict[Path, tuple[int, int, int]] = {}   # path -> (size, mtime_ns, inode) when its MD5 matched


def _info_table() -> dict:
    try:
        from medmnist.info import INFO
    except ImportError as e:  # pragma: no cover - exercised only without medmnist
        raise ImportError(
            "vtlib.data needs the medmnist package for dataset metadata. Fix: "
            "pip install --no-deps medmnist==3.0.2 (the course setup does this; --no-deps avoids "
            "pulling torchvision, which the course does not need)") from e
    return INFO


@dataclass(frozen=True)
class DatasetInfo:
    name: str          # short name, e.g. "adrenal"
    flag: str          # medmnist key, e.g. "adrenalmnist3d"
    task: str          # "binary-class" or "multi-class"
    labels: dict       # {"0": "normal", ...}
    n_samples: dict    # {"train": 1188, "val": 98, "test": 298}
    license: str

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def url(self, size: int = 28) -> str:
        return _info_table()[self.flag]["url" if size == 28 else f"url_{size}"]

    def md5(self, size: int = 28) -> str:
        return _info_table()[self.flag]["MD5" if size == 28 else f"MD5_{size}"]

    def filename(self, size: int = 28) -> str:
        return f"{self.flag}.npz" if size == 28 else f"{self.flag}_{size}.npz"


def dataset_info(name: str) -> DatasetInfo:
    """Metadata of a 3D dataset by short name ("adrenal") or medmnist flag ("adrenalmnist3d")."""
    short = name.lower().removesuffix("mnist3d") if isinstance(name, str) else name
    check_choice("name", short, NAMES, fix=f"use one of the 3D datasets {list(NAMES)}")
    flag = f"{short}mnist3d"
    e = _info_table()[flag]
    return DatasetInfo(short, flag, e["task"], dict(e["label"]), dict(e["n_samples"]), e["license"])


def default_root() -> Path:
    repo = Path(__file__).resolve().parents[2]
    if (repo / "notebooks").is_dir() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".vtlib" / "data"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data folder: argument, else $VTLIB_DATA, else the repo's data/ folder."""
    if root is not None or os.environ.get("VTLIB_DATA"):
        source = "root" if root is not None else "VTLIB_DATA"
        path = Path(root if root is not None else os.environ["VTLIB_DATA"]).expanduser()
        if path.exists() and not path.is_dir():
            raise bad_arg(source, "a folder", f"the file {path}",
                          f"point {source} at the folder that holds the .npz files (e.g. {path.parent})")
        if not path.is_dir():
            raise bad_arg(source, "an existing folder", str(path),
                          f"create it (mkdir -p {path}) or point {source} at the folder holding the .npz files")
        return path
    path = default_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_size(size: int) -> None:
    check_choice("size", size, SIZES, fix="MedMNIST 3D ships 28 (28^3) and 64 (64^3) volumes")


def file_url(info: DatasetInfo, size: int = 28, mirror: str | None = None) -> str:
    """Where to download a file: ``mirror`` (else $VTLIB_DATA_URL) + its file name, else the official URL."""
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if base is None or base == "":
        return info.url(size)
    if not isinstance(base, str) or not base.startswith(("http://", "https://", "file://")):
        source = "mirror" if mirror is not None else MIRROR_ENV
        raise bad_arg(source, "a base URL starting with http://, https:// or file://", repr(base),
                      "pass the folder URL that serves the .npz files, e.g. http://127.0.0.1:8000/medmnist")
    return f"{base.rstrip('/')}/{info.filename(size)}"


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def ensure_file(name: str, size: int = 28, root: str | os.PathLike | None = None,
                download: bool = True, progress: bool = True, *, timeout: float = 60.0,
                mirror: str | None = None) -> Path:
    """Path to the dataset file, downloading it if missing.

    The MD5 is checked once per process and again whenever the file changes (size, mtime or inode).
    ``timeout`` bounds a download in seconds; ``mirror`` (or $VTLIB_DATA_URL) replaces the official
    server by a base URL serving the same file names.
    """
    info = dataset_info(name)
    _check_size(size)
    folder = data_root(root)
    path = folder / info.filename(size)
    url, md5 = file_url(info, size, mirror), info.md5(size)
    if not path.exists():
        if not download:
            raise DataFileError(f"{path.name} is not in {folder}. Fix: download it from {url} "
                                f"into {folder}, or call with download=True.")
        download_file(url, path, md5=md5, progress=progress, timeout=timeout)
    signature = _signature(path)
    if _VERIFIED.get(path) != signature:
        got = md5sum(path)
        if got != md5:
            _VERIFIED.pop(path, None)
            raise DataFileError(f"{path} is corrupted: MD5 {got}, expected {md5}. Fix: delete it and "
                                f"run again to re-download from {url}.")
        _VERIFIED[path] = signature
    return path


def load_arrays(name: str, split: str, size: int = 28, root: str | os.PathLike | None = None,
                download: bool = True, *, timeout: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw arrays: volumes uint8 (N, D, H, W) and labels int64 (N,)."""
    check_choice("split", split, SPLITS)
    path = ensure_file(name, size, root, download, timeout=timeout)
    with np.load(path) as f:
        return f[f"{split}_images"], f[f"{split}_labels"].reshape(-1).astype(np.int64)


def to_video(volumes: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 volumes (N, D, H, W) -> float32 clips (N, C=1, T=D, H, W) in [0, 1]."""
    v = torch.as_tensor(volumes)
    if v.ndim != 4:
        raise bad_arg("volumes", "a 4-D array (N, D, H, W)", f"shape {tuple(v.shape)}",
                      "pass a stack of volumes, e.g. the output of load_arrays")
    if v.dtype != torch.uint8:
        raise bad_arg("volumes", "dtype uint8 (raw MedMNIST voxels)", v.dtype,
                      "clips that are already float need no conversion")
    return v.unsqueeze(1).float().div_(255.0)


def load_split(name: str, split: str, size: int = 28, root: str | os.PathLike | None = None,
               normalize: str = "unit", download: bool = True, *,
               timeout: float = 60.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as clips ``x`` float32 (N, 1, T, H, W) and labels ``y`` int64 (N,).

    normalize="unit": x / 255 in [0, 1]. normalize="standard": then (x - mean) / std with the
    TRAINING split's statistics (so val/test never leak into preprocessing). ``timeout`` bounds a
    download of the file, in seconds.
    """
    check_choice("normalize", normalize, ("unit", "standard"))
    volumes, labels = load_arrays(name, split, size, root, download, timeout=timeout)
    x = to_video(volumes)
    if normalize == "standard":
        mean, std = train_stats(name, size, root)
        x = (x - mean) / std
    return x, torch.from_numpy(labels)


def train_stats(name: str, size: int = 28, root: str | os.PathLike | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the training split's voxels, after scaling to [0, 1]."""
    volumes, _ = load_arrays(name, "train", size, root)
    v = volumes.astype(np.float64) / 255.0
    return float(v.mean()), float(v.std())


class MedMNISTVideo(Dataset):
    """A MedMNIST 3D split as a Dataset of (clip (1, T, H, W) float32 in [0, 1], label int64).

    Volumes stay uint8 in memory (64^3 clips are 1 GB as float32) and are scaled per item.
    ``transform(clip, generator)`` (e.g. ``vtlib.data.augment``) runs per item with the dataset's
    own generator, so augmentation is reproducible under ``seed`` with ``num_workers=0``.
    """

    def __init__(self, name: str, split: str, size: int = 28, root: str | os.PathLike | None = None,
                 transform=None, seed: int = 0, download: bool = True):
        self.info = dataset_info(name)
        self.split, self.size = split, size
        volumes, labels = load_arrays(name, split, size, root, download)
        self.volumes = torch.from_numpy(volumes)
        self.labels = torch.from_numpy(labels)
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.volumes[i].unsqueeze(0).float() / 255.0
        if self.transform is not None:
            clip = self.transform(clip.unsqueeze(0), self.generator).squeeze(0)
        return clip, self.labels[i]

    def __repr__(self) -> str:
        return (f"MedMNISTVideo({self.info.name}, split={self.split}, size={self.size}, "
                f"clips={len(self)}, shape=(1, {self.size}, {self.size}, {self.size}))")


def make_loaders(name: str, size: int = 28, batch_size: int = 32, root: str | os.PathLike | None = None,
                 seed: int = 0, num_workers: int = 0, transform=None) -> dict[str, DataLoader]:
    """train/val/test DataLoaders. Train shuffles with a seeded generator; 0 workers by default
    (worker processes in notebooks fail to pickle on Windows/macOS)."""
    check_positive_int("batch_size", batch_size)
    loaders = {}
    for split in SPLITS:
        ds = MedMNISTVideo(name, split, size, root, transform if split == "train" else None, seed)
        g = torch.Generator().manual_seed(seed)
        loaders[split] = DataLoader(ds, batch_size=batch_size, shuffle=split == "train",
                                    generator=g, num_workers=num_workers)
    return loaders
