"""vtlib models as Hugging Face model folders: ``save_pretrained``, the Auto classes and the processor.

On the Hub a model is a folder: ``config.json`` (the architecture, ``model_type``, label names),
``model.safetensors`` (the weights) and ``preprocessor_config.json`` (how raw frames become
``pixel_values``). ``save_folder`` writes one from a vtlib ViViT, TimeSformer or VideoMAEClassifier
with the weight ports of ``vtlib.hf``; ``load_folder`` reads it back with
``AutoModelForVideoClassification`` and ``AutoImageProcessor``, as for any Hub model;
``predict_frames`` runs raw uint8 volumes (MedMNIST depth slices are the frames) through both.

The processor is configured for vtlib's grayscale clips: no resize, no crop, rescale by 1/255,
normalise with one-channel ``[mean]`` / ``[std]``, so its ``pixel_values`` (B, T, 1, H, W) equal
``to_hf_video(to_video(volumes))`` (standardised when mean/std are given). With transformers 5.23 and
no torchvision, ``AutoVideoProcessor`` (torchvision only) cannot be used; ``AutoImageProcessor``
falls back to the PIL backend: ``VideoMAEImageProcessorPil`` for VideoMAE and TimeSformer, the numpy
``VivitImageProcessor`` for ViViT (whose default ``offset=True`` maps to [-1, 1]: set to False here).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vtlib.errors import bad_arg
from vtlib.hf.common import transformers_module
from vtlib.hf.timesformer import timesformer_from_hf, timesformer_to_hf
from vtlib.hf.videomae import classifier_from_hf, classifier_to_hf
from vtlib.hf.vivit import vivit_from_hf, vivit_to_hf
from vtlib.models.timesformer import TimeSformer
from vtlib.models.videomae import VideoMAEClassifier
from vtlib.models.vivit import ViViT

# model_type -> (vtlib class, to HF, from HF, the processor class AutoImageProcessor picks without torchvision)
KINDS = {"vivit": (ViViT, vivit_to_hf, vivit_from_hf, "VivitImageProcessor"),
         "timesformer": (TimeSformer, timesformer_to_hf, timesformer_from_hf, "VideoMAEImageProcessorPil"),
         "videomae": (VideoMAEClassifier, classifier_to_hf, classifier_from_hf, "VideoMAEImageProcessorPil")}
MAKE_ONE = "make one with vtlib.hf.save_folder(model, folder)"


def _kind(model: nn.Module) -> str:
    for kind, (cls, *_) in KINDS.items():
        if isinstance(model, cls):
            return kind
    raise bad_arg("model", "a vtlib ViViT, TimeSformer or VideoMAEClassifier", type(model).__name__,
                  "export one of the three (HF has no counterpart for the other vtlib models)")


def _processor(kind: str, size: tuple[int, int], mean: float, std: float):
    H, W = size
    settings = dict(do_resize=False, do_center_crop=False, do_rescale=True, rescale_factor=1 / 255,
                    do_normalize=True, image_mean=[mean], image_std=[std],
                    size={"height": H, "width": W}, crop_size={"height": H, "width": W})
    if kind == "vivit":
        settings["offset"] = False           # ViViT's default maps [0, 255] to [-1, 1]
    return getattr(transformers_module(), KINDS[kind][3])(**settings)


def _labels(labels, num_labels: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(num_labels)]
    labels = list(labels)
    if len(labels) != num_labels or not all(isinstance(n, str) for n in labels) or len(set(labels)) != len(labels):
        raise bad_arg("labels", f"{num_labels} distinct class names (str), one per output of the head",
                      repr(labels), f"pass a list of {num_labels} names in class-index order, or None")
    return labels


def save_folder(model: nn.Module, folder: str | os.PathLike, *, labels: list[str] | None = None,
                mean: float = 0.0, std: float = 1.0, overwrite: bool = False) -> Path:
    """Write ``model`` as an HF model folder (config, safetensors weights, processor); return its path.

    ``labels``: class names in index order (default "0", "1", ...); ``mean``/``std``: the standardisation
    the model was trained with (clips in [0, 1]: 0 and 1). Written into a temporary sibling and renamed,
    so a failed save leaves nothing; an existing non-empty ``folder`` is replaced only if ``overwrite``.
    """
    kind = _kind(model)
    if not isinstance(mean, (int, float)) or not isinstance(std, (int, float)) or not std > 0:
        raise bad_arg("mean/std", "numbers, std > 0 (the clip standardisation)", (mean, std),
                      "pass the training split's mean and std, or leave 0 and 1 for clips in [0, 1]")
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise bad_arg("folder", "a folder path", f"{folder} (a file)", "pick a folder name")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise bad_arg("folder", "a new or empty folder", f"{folder} (exists, not empty)",
                      "pick another folder or pass overwrite=True to replace it")
    hf = KINDS[kind][1](model)
    labels = _labels(labels, hf.config.num_labels)
    hf.config.id2label = dict(enumerate(labels))
    hf.config.label2id = {n: i for i, n in enumerate(labels)}
    size = hf.config.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    old = tmp / "old"                        # where an existing folder waits until the new one is in place
    try:
        hf.save_pretrained(tmp / "new")      # safetensors by default
        _processor(kind, size, float(mean), float(std)).save_pretrained(tmp / "new")
        if folder.exists():
            folder.rename(old)
        try:
            (tmp / "new").rename(folder)
        except OSError:
            if old.exists():
                old.rename(folder)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _offline() -> bool:
    from huggingface_hub import constants
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.HF_HUB_OFFLINE or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _source(folder_or_id: str | os.PathLike) -> tuple[str, bool]:
    """(what to pass to from_pretrained, is it a local folder)."""
    path = Path(folder_or_id).expanduser()
    name = str(folder_or_id)
    if path.exists() or isinstance(folder_or_id, os.PathLike) or name.startswith((".", "/", "~")) \
            or name.count("/") > 1 or "\\" in name:
        if not path.is_dir():
            raise bad_arg("folder_or_id", "a model folder (config.json, model.safetensors, "
                          "preprocessor_config.json) or a Hub id 'org/name'", f"{name} (no such folder)", MAKE_ONE)
        if not (path / "config.json").is_file():
            raise bad_arg("folder_or_id", "a model folder holding config.json (plus model.safetensors and "
                          "preprocessor_config.json)", f"{name} (no config.json)", MAKE_ONE)
        return str(path), True
    return name, False


def load_folder(folder_or_id: str | os.PathLike, *, expect: str | None = None):
    """(hf_model in eval mode, processor) from a model folder or a Hub id, via the Auto classes.

    ``expect``: the ``model_type`` the folder must hold ("vivit", "timesformer", "videomae").
    A folder is read with local files only; a Hub id needs the network once (then it is cached).
    """
    tf = transformers_module()
    src, local = _source(folder_or_id)
    only_local = local or _offline()
    try:
        config = tf.AutoConfig.from_pretrained(src, local_files_only=only_local)
    except OSError as err:
        raise bad_arg("folder_or_id", "a model folder or a Hub id that can be fetched",
                      f"{src!r}: no local folder of that name, and as a Hub id it could not be fetched ("
                      f"{'offline: HF_HUB_OFFLINE is set' if _offline() else 'no network, or no such repository'})",
                      "run once with network (it is then cached), or pass the cached/local model folder") from err
    if expect is not None and config.model_type != expect:
        raise bad_arg("expect", f"a folder holding {expect!r}", f"{src} holds {config.model_type!r}",
                      f"pass expect={config.model_type!r} or load the {expect} folder")
    try:
        hf_model = tf.AutoModelForVideoClassification.from_pretrained(src, local_files_only=only_local).eval()
    except ValueError as err:                # a model_type with no video classifier (e.g. a text model)
        raise bad_arg("folder_or_id", "a video classifier (vivit, timesformer, videomae, ...)",
                      f"{src} holds {config.model_type!r}", "load it with its own Auto class") from err
    try:
        processor = tf.AutoImageProcessor.from_pretrained(src, local_files_only=only_local)
    except OSError as err:
        raise bad_arg("folder_or_id", "a folder with preprocessor_config.json", f"{src} (no processor)",
                      MAKE_ONE + " (it saves the processor too)") from err
    return hf_model, processor


def from_folder(folder: str | os.PathLike) -> nn.Module:
    """The vtlib model (eval mode) stored in a model folder: ``from_folder(save_folder(m, f))`` equals ``m``."""
    hf_model, _ = load_folder(folder)
    kind = hf_model.config.model_type
    if kind not in KINDS:
        raise bad_arg("folder", f"a folder holding one of {list(KINDS)}", repr(kind), "vtlib has no such model")
    return KINDS[kind][2](hf_model)


@torch.no_grad()
def predict_frames(hf_model: nn.Module, processor, volumes: np.ndarray) -> Tensor:
    """Raw uint8 volumes (N, T, H, W) or one (T, H, W) -> logits (N, K), through processor and model.

    Each volume becomes a list of T frames (H, W, 1), as HF video processors expect. The model is put
    in eval mode.
    """
    if not isinstance(volumes, np.ndarray) or volumes.dtype != np.uint8 or volumes.ndim not in (3, 4):
        got = (f"{type(volumes).__name__} {getattr(volumes, 'dtype', '')} shape {tuple(getattr(volumes, 'shape', ()))}")
        raise bad_arg("volumes", "a uint8 numpy array (N, T, H, W) or (T, H, W): raw frames", got,
                      "pass the raw MedMNIST volumes (np.asarray(...)); the processor rescales by 1/255 itself")
    if volumes.ndim == 3:
        volumes = volumes[None]
    cfg = hf_model.config
    videos = [list(v[..., None]) for v in volumes]
    x = processor(videos, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    T, C, H, W = x.shape[1:]
    if T != cfg.num_frames:
        raise bad_arg("volumes", f"{cfg.num_frames} frames (hf_model.config.num_frames)", f"{T} frames",
                      f"sample {cfg.num_frames} frames uniformly (vtlib.data.transforms.frame_indices({T}, "
                      f"{cfg.num_frames})) or export a model for {T} frames")
    size = cfg.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    if (H, W) != size or C != cfg.num_channels:
        raise bad_arg("volumes", f"frames {size[0]} x {size[1]} with {cfg.num_channels} channel(s) "
                      "(hf_model.config)", f"{H} x {W} with {C}",
                      "resize the volumes (vtlib.data.transforms.resize) or export a model for that size")
    ref = next(hf_model.parameters())
    x = x.to(device=ref.device, dtype=ref.dtype)
    logits = hf_model.eval()(pixel_values=x).logits
    if logits.shape[0] != x.shape[0]:        # TimeSformer space_only: one row per frame -> average
        logits = logits.reshape(x.shape[0], -1, logits.shape[-1]).mean(dim=1)
    return logits
