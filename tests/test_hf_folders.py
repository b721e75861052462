"""Tests for vtlib.hf.folders: vtlib model -> HF model folder -> Auto classes + processor -> same predictions.

Tiny random models (8 frames of 14 x 14, dim 16, depth 1), perturbed so no weight sits at a special value.
Everything is offline: folders live in tmp_path, and the Hub test runs with HF_HUB_OFFLINE=1.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.testing import assert_close

transformers = pytest.importorskip("transformers")

from test_hf_common import _perturbed  # noqa: E402  (no weight left at a special value)

from vtlib.data.medmnist3d import to_video  # noqa: E402
from vtlib.errors import VtlibError  # noqa: E402
from vtlib.hf import from_folder, load_folder, predict_frames, save_folder, to_hf_video  # noqa: E402
from vtlib.models.timesformer import TimeSformer  # noqa: E402
from vtlib.models.videomae import VideoMAEClassifier  # noqa: E402
from vtlib.models.vivit import ViViT  # noqa: E402

SHAPE = (8, 14, 14)
KINDS = ["vivit", "timesformer", "videomae"]
PROCESSOR = {"vivit": "VivitImageProcessor", "timesformer": "VideoMAEImageProcessorPil",
             "videomae": "VideoMAEImageProcessorPil"}


def _model(kind: str, *, shape=SHAPE, attention: str = "divided", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    small = dict(num_classes=3, video_shape=shape, dim=16, depth=1, heads=2)
    if kind == "vivit":
        model = ViViT(tubelet=(2, 7, 7), **small)
    elif kind == "timesformer":
        model = TimeSformer(patch=7, attention=attention, **small)
    else:
        model = VideoMAEClassifier(tubelet=(2, 7, 7), **small)
    return _perturbed(model, seed + 1)


def _volumes(n: int = 2, shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """kind -> (vtlib model, its folder), each exported once."""
    root = tmp_path_factory.mktemp("folders")
    out = {}
    for kind in KINDS:
        model = _model(kind)
        out[kind] = model, save_folder(model, root / kind, labels=["benign", "malignant", "other"])
    return out


# ----------------------------------------------------------------------------- export, load, round trip
@pytest.mark.parametrize("kind", KINDS)
def test_auto_classes_load_the_same_model(saved, kind):
    model, folder = saved[kind]
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == kind
    assert config["id2label"] == {"0": "benign", "1": "malignant", "2": "other"}
    hf, processor = load_folder(folder, expect=kind)
    assert type(hf).__name__ == transformers.AutoModelForVideoClassification._model_mapping[type(hf.config)].__name__
    assert type(processor).__name__ == PROCESSOR[kind]
    assert hf.config.label2id == {"benign": 0, "malignant": 1, "other": 2} and not hf.training
    x = to_video(_volumes())
    with torch.no_grad():
        assert_close(hf(pixel_values=to_hf_video(x)).logits, model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_vtlib_folder_vtlib_round_trip_is_identical(saved, kind):
    model, folder = saved[kind]
    back = from_folder(folder)
    assert type(back) is type(model) and not back.training
    want, got = model.state_dict(), back.state_dict()
    assert want.keys() == got.keys()
    for name, value in want.items():
        if kind == "videomae" and name.endswith("attn.qkv.bias"):
            # HF VideoMAE has no k bias (softmax cancels it): q and v come back, k comes back zero
            q, k, v = got[name].chunk(3)
            assert torch.equal(torch.cat([q, v]), torch.cat([value.chunk(3)[0], value.chunk(3)[2]]))
            assert not k.any() and value.chunk(3)[1].any()
        else:
            assert torch.equal(got[name], value), name
    x = to_video(_volumes())
    with torch.no_grad():
        assert_close(back(x), model(x), atol=1e-6, rtol=1e-6)


def test_default_labels_are_class_indices(tmp_path):
    folder = save_folder(_model("vivit"), tmp_path / "m")
    hf, _ = load_folder(folder)
    assert hf.config.id2label == {0: "0", 1: "1", 2: "2"}


# ----------------------------------------------------------------------------- processor and predict_frames
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.3, 0.2)])
def test_processor_pixel_values_equal_vtlib_clips(tmp_path, kind, mean, std):
    folder = save_folder(_model(kind), tmp_path / kind, mean=mean, std=std)
    _, processor = load_folder(folder)
    volumes = _volumes()
    frames = [list(v[..., None]) for v in volumes]             # each video: T frames (H, W, 1)
    pixel_values = processor(frames, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    want = to_hf_video((to_video(volumes) - mean) / std)
    assert pixel_values.shape == want.shape == (2, 8, 1, 14, 14)
    assert_close(pixel_values, want, atol=1e-6, rtol=1e-6)
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    assert (settings["do_resize"], settings["do_center_crop"], settings["image_mean"], settings["image_std"]) == (
        False, False, [mean], [std])
    assert settings.get("offset", False) is False               # ViViT's default would map to [-1, 1]


@pytest.mark.parametrize("kind, attention", [("vivit", "divided"), ("timesformer", "divided"),
                                             ("timesformer", "space"), ("videomae", "divided")])
def test_predict_frames_equals_vtlib_logits(tmp_path, kind, attention):
    model = _model(kind, attention=attention)
    hf, processor = load_folder(save_folder(model, tmp_path / kind))
    volumes = _volumes(3)
    logits = predict_frames(hf, processor, volumes)
    with torch.no_grad():
        want = model(to_video(volumes))
    assert logits.shape == (3, 3)                                # space_only: per-frame rows averaged
    assert_close(logits, want, atol=1e-5, rtol=1e-5)
    assert_close(predict_frames(hf, processor, volumes[1]), want[1:2], atol=1e-5, rtol=1e-5)


def test_predict_frames_standardised_model(tmp_path):
    model = _model("videomae")
    hf, processor = load_folder(save_folder(model, tmp_path / "m", mean=0.4, std=0.25))
    volumes = _volumes()
    with torch.no_grad():
        want = model((to_video(volumes) - 0.4) / 0.25)
    assert_close(predict_frames(hf, processor, volumes), want, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- errors
def test_missing_folder(tmp_path):
    with pytest.raises(VtlibError, match="no such folder.*save_folder"):
        load_folder(tmp_path / "nope")


def test_folder_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(VtlibError, match="config.json.*save_folder"):
        load_folder(tmp_path)


def test_expect_mismatch_names_both(saved):
    with pytest.raises(VtlibError, match=r"'videomae'.*holds 'vivit'"):
        load_folder(saved["vivit"][1], expect="videomae")


@pytest.mark.parametrize("hub_id", ["MCG-NJU/videomae-base", "vtlib-course/never-published"])
def test_hub_id_offline(monkeypatch, hub_id):
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        pytest.skip(f"{hub_id} is in the local Hub cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VtlibError, match="could not be fetched.*HF_HUB_OFFLINE.*run once with network") as err:
        load_folder(hub_id)
    assert hub_id in str(err.value)


def test_wrong_frame_count(saved):
    hf, processor = load_folder(saved["vivit"][1])
    with pytest.raises(VtlibError, match=r"8 frames.*got 6 frames.*frame_indices\(6, 8\).*export a model"):
        predict_frames(hf, processor, _volumes(shape=(6, 14, 14)))


def test_wrong_frame_size(saved):
    hf, processor = load_folder(saved["timesformer"][1])
    with pytest.raises(VtlibError, match="frames 14 x 14.*got 28 x 28"):
        predict_frames(hf, processor, _volumes(shape=(8, 28, 28)))


@pytest.mark.parametrize("bad", [_volumes().astype(np.float32) / 255, torch.zeros(2, 8, 14, 14, dtype=torch.uint8),
                                 np.zeros((14, 14), np.uint8)])
def test_predict_frames_wants_raw_uint8_arrays(saved, bad):
    hf, processor = load_folder(saved["vivit"][1])
    with pytest.raises(VtlibError, match="uint8 numpy array"):
        predict_frames(hf, processor, bad)


def test_non_empty_folder_needs_overwrite(tmp_path):
    folder = save_folder(_model("vivit", seed=0), tmp_path / "m")
    with pytest.raises(VtlibError, match="not empty.*overwrite=True"):
        save_folder(_model("vivit", seed=1), folder)
    newer = _model("vivit", seed=1)
    save_folder(newer, folder, overwrite=True)
    assert torch.equal(from_folder(folder).head.weight, newer.head.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]          # no temporary siblings left
    (tmp_path / "empty").mkdir()
    save_folder(newer, tmp_path / "empty")                                # an empty folder is fine
    assert (tmp_path / "empty" / "config.json").is_file()


@pytest.mark.parametrize("model", [torch.nn.Linear(2, 2),
                                   ViViT(num_classes=2, video_shape=SHAPE, tubelet=(2, 7, 7), dim=16, depth=1,
                                         heads=2, pool="mean")])
def test_unsupported_model(tmp_path, model):
    with pytest.raises(VtlibError, match="ViViT|pool"):
        save_folder(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_labels_and_std(tmp_path):
    with pytest.raises(VtlibError, match="3 distinct class names"):
        save_folder(_model("vivit"), tmp_path / "m", labels=["a", "b"])
    with pytest.raises(VtlibError, match="std > 0"):
        save_folder(_model("vivit"), tmp_path / "m", std=0.0)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_folder(_model("timesformer"), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_folder(tmp_path, monkeypatch):
    old = _model("vivit", seed=0)
    folder = save_folder(old, tmp_path / "m")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.ImageProcessingMixin, "save_pretrained", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_folder(_model("vivit", seed=1), folder, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert torch.equal(from_folder(folder).head.weight, old.head.weight)


def test_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    import pathlib

    old = _model("vivit", seed=0)
    folder = save_folder(old, tmp_path / "m")
    rename = pathlib.Path.rename

    def flaky(self, target):
        if self.name == "new":                                  # the finished new folder moving into place
            raise OSError("rename failed")
        return rename(self, target)

    monkeypatch.setattr(pathlib.Path, "rename", flaky)
    with pytest.raises(OSError, match="rename failed"):
        save_folder(_model("vivit", seed=1), folder, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert torch.equal(from_folder(folder).head.weight, old.head.weight)
