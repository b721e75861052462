"""vtlib.data on the real AdrenalMNIST3D files: shapes, dtypes, normalisation, augmentation, errors."""
import numpy as np
import pytest
import torch

from vtlib.data import (
    DataFileError,
    MedMNISTVideo,
    augment,
    data_root,
    dataset_info,
    from_frames,
    load_arrays,
    load_split,
    make_loaders,
    resize,
    sample_frames,
    to_frames,
    to_video,
    train_stats,
)
from vtlib.errors import VtlibError


def test_all_six_datasets_known_from_medmnist_info():
    from medmnist.info import INFO

    for name in ["organ", "nodule", "adrenal", "fracture", "vessel", "synapse"]:
        info = dataset_info(name)
        assert info.flag == f"{name}mnist3d"
        assert info.n_samples == INFO[info.flag]["n_samples"]
        assert info.url(64) == INFO[info.flag]["url_64"] and info.md5(28) == INFO[info.flag]["MD5"]
    assert dataset_info("organ").num_classes == 11 and dataset_info("organ").task == "multi-class"
    assert dataset_info("AdrenalMNIST3D").filename(64) == "adrenalmnist3d_64.npz"


@pytest.mark.parametrize("size", [28, 64])
def test_load_split_shapes_and_range(size):
    x, y = load_split("adrenal", "val", size=size)
    assert x.shape == (98, 1, size, size, size) and x.dtype == torch.float32
    assert y.shape == (98,) and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1 and set(y.tolist()) <= {0, 1}


def test_split_sizes_match_info():
    info = dataset_info("adrenal")
    for split in ["train", "val", "test"]:
        volumes, labels = load_arrays("adrenal", split)
        assert volumes.dtype == np.uint8 and len(volumes) == len(labels) == info.n_samples[split]


def test_standard_normalisation_uses_train_statistics():
    mean, std = train_stats("adrenal")
    xtr, _ = load_split("adrenal", "train", normalize="standard")
    assert abs(xtr.mean().item()) < 1e-4 and abs(xtr.std().item() - 1) < 1e-3
    xte, _ = load_split("adrenal", "test", normalize="standard")
    raw, _ = load_split("adrenal", "test")
    torch.testing.assert_close(xte, (raw - mean) / std)


def test_dataset_and_loaders():
    ds = MedMNISTVideo("adrenal", "test")
    clip, label = ds[0]
    assert clip.shape == (1, 28, 28, 28) and clip.dtype == torch.float32 and label.dtype == torch.int64
    assert "clips=298" in repr(ds)
    loaders = make_loaders("adrenal", batch_size=16, seed=3)
    assert loaders["train"].num_workers == 0
    xb, yb = next(iter(loaders["train"]))
    assert xb.shape == (16, 1, 28, 28, 28)
    xb2, _ = next(iter(make_loaders("adrenal", batch_size=16, seed=3)["train"]))
    assert torch.equal(xb, xb2)   # shuffling is reproducible under the seed


def test_augment_is_reproducible_and_label_safe():
    x, _ = load_split("adrenal", "val")
    a = augment(x[:16], torch.Generator().manual_seed(0))
    b = augment(x[:16], torch.Generator().manual_seed(0))
    c = augment(x[:16], torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x[:16].shape
    # flips and rotations only move voxels within a frame: each frame keeps its mass up to scaling
    no_scale = augment(x[:16], torch.Generator().manual_seed(0), scale=None)
    torch.testing.assert_close(no_scale.sum(dim=(3, 4)), x[:16].sum(dim=(3, 4)))


def test_augment_rotates_each_clip_by_its_own_draw_without_building_all_four_rotations():
    """Same draws and result as stacking the four rotations of the batch and picking one per clip."""
    x, _ = load_split("adrenal", "val")
    x = x[:24]
    for seed in range(3):
        got = augment(x, torch.Generator().manual_seed(seed), flip=False, scale=None)
        k = torch.randint(0, 4, (len(x),), generator=torch.Generator().manual_seed(seed))
        want = torch.stack([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])[k, torch.arange(len(x))]
        assert torch.equal(got, want)


def test_dataset_transform_is_seeded():
    t1 = MedMNISTVideo("adrenal", "val", transform=augment, seed=5)
    t2 = MedMNISTVideo("adrenal", "val", transform=augment, seed=5)
    assert all(torch.equal(t1[i][0], t2[i][0]) for i in range(4))


def test_frames_sampling_and_resize():
    x, _ = load_split("adrenal", "val")
    f = to_frames(x[:2])
    assert f.shape == (2, 28, 1, 28, 28)
    torch.testing.assert_close(from_frames(f), x[:2])
    assert sample_frames(x[:2], 7).shape == (2, 1, 7, 28, 28)
    torch.testing.assert_close(sample_frames(x[:2], 28), x[:2])
    assert resize(x[:2], 16, frames=8).shape == (2, 1, 8, 16, 16)


def test_to_video():
    v = to_video(np.full((2, 3, 4, 5), 255, dtype=np.uint8))
    assert v.shape == (2, 1, 3, 4, 5) and v.max() == 1.0


@pytest.mark.parametrize("call, arg", [
    (lambda: dataset_info("brain"), "name"),
    (lambda: load_split("adrenal", "training"), "split"),
    (lambda: load_split("adrenal", "val", size=32), "size"),
    (lambda: load_split("adrenal", "val", normalize="zscore"), "normalize"),
    (lambda: data_root("/no/such/folder"), "root"),
    (lambda: to_video(np.zeros((2, 3, 4), dtype=np.uint8)), "volumes"),
    (lambda: to_video(np.zeros((2, 3, 4, 5), dtype=np.float32)), "volumes"),
    (lambda: sample_frames(torch.zeros(1, 1, 4, 8, 8), 5), "n"),
    (lambda: augment(torch.zeros(1, 4, 8, 8)), "x"),
    (lambda: augment(torch.zeros(1, 1, 4, 8, 8, dtype=torch.uint8)), "x"),
    (lambda: make_loaders("adrenal", batch_size=0), "batch_size"),
])
def test_bad_inputs_get_clear_errors(call, arg):
    with pytest.raises(VtlibError, match=rf"^{arg}: expected .* got .*Fix: "):
        call()


def test_env_root_that_does_not_exist(monkeypatch):
    monkeypatch.setenv("VTLIB_DATA", "/no/such/folder")
    with pytest.raises(VtlibError, match="VTLIB_DATA: expected an existing folder"):
        data_root()


def test_missing_file_without_download(tmp_path):
    with pytest.raises(DataFileError, match="not in"):
        load_split("vessel", "train", root=tmp_path, download=False)


@pytest.mark.parametrize("kwargs,name", [(dict(size=28, frames=0), "frames"), (dict(size=28, frames=-2), "frames"),
                                         (dict(size=0), "size"), (dict(size=(28,)), "size"),
                                         (dict(size=(28, 2.5)), "size")])
def test_resize_refuses_sizes_it_would_ignore(kwargs, name):
    from vtlib.data import resize
    from vtlib.errors import VtlibError

    with pytest.raises(VtlibError, match=f"^{name}:"):
        resize(torch.zeros(1, 1, 4, 8, 8), **kwargs)
