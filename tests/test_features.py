"""Tests for vtlib.features: extracting frozen features and the datasets-backed feature store."""
import json

import datasets
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from vtlib import features as vf
from vtlib.errors import VtlibError
from vtlib.features import export_split, extract_features, feature_meta, load_clips, load_features, open_store

save_features = vf.save_features

META = {"model": "tiny-linear", "layer": "pool", "pooling": "mean", "dataset": "adrenal", "size": [28, 28, 28]}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def make_splits(seed=0, dim=7):
    g = torch.Generator().manual_seed(seed)
    return {s: (torch.randn(n, dim, generator=g), torch.randint(0, 3, (n,), generator=g))
            for s, n in (("train", 23), ("val", 5), ("test", 9))}


@pytest.fixture
def store(tmp_path):
    splits = make_splits()
    save_features(tmp_path / "feats", splits, meta=META)
    return tmp_path / "feats", splits


def leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_round_trip_is_exact_split_by_split(store):
    path, splits = store
    for name, (f, y) in splits.items():
        got_f, got_y = load_features(path, name)
        assert isinstance(got_f, torch.Tensor) and isinstance(got_y, torch.Tensor)
        assert got_f.dtype == torch.float32 and got_y.dtype == torch.int64 and got_f.shape == f.shape
        assert torch.equal(got_f, f) and torch.equal(got_y, y)
    assert not torch.equal(load_features(path, "train")[0][:5], load_features(path, "val")[0])   # splits not mixed
    assert feature_meta(path) == META
    assert json.loads((path / vf.STORE_FILE).read_text())["rows"] == {"train": 23, "val": 5, "test": 9}


def test_the_store_is_a_memory_mapped_datasetdict(store):
    path, _ = store
    dd = datasets.load_from_disk(str(path))
    assert isinstance(dd, datasets.DatasetDict) and sorted(dd) == ["test", "train", "val"]
    assert dd["train"].cache_files and dd["train"].cache_files[0]["filename"].endswith(".arrow")
    assert dd["train"].column_names == ["index", "label", "features"]
    assert dd["train"].features["features"] == datasets.List(datasets.Value("float32"), length=7)
    ds = open_store(path, "val")
    assert ds.cache_files and ds.format["type"] == "torch"
    assert torch.equal(ds[:]["index"], torch.arange(5))
    x, y = load_features(path, "train")                              # the documented way to train a head
    batch = next(iter(DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)))
    assert batch[0].shape == (8, 7)


def test_extract_features_runs_in_eval_mode_in_order_and_restores_modes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Dropout(0.5), nn.BatchNorm1d(6))
    model.train()
    model[3].eval()                                                  # a frozen norm the caller set up
    x, y = torch.randn(10, 1, 3, 2, 2), torch.arange(10) % 3
    loader = DataLoader(TensorDataset(x, y[:, None]), batch_size=4)  # (B, 1) labels, like MedMNIST's files
    f, labels = extract_features(model, loader)
    assert f.shape == (10, 6) and f.dtype == torch.float32 and not f.requires_grad
    assert torch.equal(labels, y) and labels.dtype == torch.int64
    assert [m.training for m in model] == [True, True, True, False]
    with torch.no_grad():
        model.eval()
        want = model(x)
    assert torch.allclose(f, want, atol=1e-6)                        # no dropout, running BatchNorm statistics

    class WithMethod(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.9)

        def features(self, v):
            return self.drop(v.flatten(1))

    m = WithMethod().train()
    f2, _ = extract_features(m.features, DataLoader(TensorDataset(x, y), batch_size=3))
    assert torch.equal(f2, x.flatten(1)) and m.training              # bound method: eval, then restored


def test_shuffled_or_truncating_loaders_are_refused():
    ds = TensorDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(VtlibError, match="loader.*shuffle=False"):
        extract_features(nn.Identity(), DataLoader(ds, batch_size=4, shuffle=True))
    hidden = DataLoader(ds, batch_sampler=BatchSampler(RandomSampler(ds), batch_size=4, drop_last=False))
    with pytest.raises(VtlibError, match="loader.*shuffle=False"):
        extract_features(nn.Identity(), hidden)
    with pytest.raises(VtlibError, match="loader.*drop_last"):
        extract_features(nn.Identity(), DataLoader(ds, batch_size=3, drop_last=True))


def test_extract_features_errors():
    ds = TensorDataset(torch.randn(6, 2, 3), torch.zeros(6, dtype=torch.long))
    loader = DataLoader(ds, batch_size=4)
    with pytest.raises(VtlibError, match="fn.*one feature vector per clip"):
        extract_features(nn.Identity(), loader)                      # (B, 2, 3) tokens, not pooled
    with pytest.raises(VtlibError, match="fn.*finite"):
        extract_features(lambda v: v.flatten(1) / 0, loader)
    floats = DataLoader(TensorDataset(torch.randn(4, 3), torch.rand(4)), batch_size=2)
    with pytest.raises(VtlibError, match="loader.*integer labels"):
        extract_features(nn.Identity(), floats)
    with pytest.raises(VtlibError, match="loader.*at least one batch"):
        extract_features(nn.Identity(), [])
    zeros = torch.zeros(2, dtype=torch.long)
    widths = [(torch.randn(2, 3), zeros), (torch.randn(2, 4), zeros)]
    with pytest.raises(VtlibError, match=r"fn.*\(2, 3\)"):
        extract_features(lambda v: v, widths)                        # a plain list of batches is a loader too


def test_unknown_split_lists_the_splits(store):
    path, _ = store
    with pytest.raises(VtlibError, match=r"split.*\['test', 'train', 'val'\].*'valid'"):
        load_features(path, "valid")


def test_a_permuted_index_is_refused(store, tmp_path):
    path, _ = store
    dd = datasets.load_from_disk(str(path))
    perm = np.random.default_rng(0).permutation(23)
    dd["train"] = dd["train"].select(perm)                           # rows and their index move together
    bad = tmp_path / "tampered"
    dd.save_to_disk(str(bad))
    (bad / vf.STORE_FILE).write_text((path / vf.STORE_FILE).read_text())
    assert load_features(bad, "val")[0].shape == (5, 7)              # the untouched splits still load
    with pytest.raises(VtlibError, match="index"):
        load_features(bad, "train")
    dd["train"] = dd["train"].select(range(20))                      # a filtered split: rows missing
    short = tmp_path / "short"
    dd.save_to_disk(str(short))
    (short / vf.STORE_FILE).write_text((path / vf.STORE_FILE).read_text())
    with pytest.raises(VtlibError, match="20 rows"):
        load_features(short, "train")


def test_overwrite_is_refused_unless_asked(store, tmp_path):
    path, splits = store
    other = make_splits(seed=1, dim=3)
    with pytest.raises(VtlibError, match="path.*exists.*overwrite=True"):
        save_features(path, other)
    assert torch.equal(load_features(path, "train")[0], splits["train"][0])
    save_features(path, other, meta={"model": "other"}, overwrite=True)
    assert torch.equal(load_features(path, "train")[0], other["train"][0]) and feature_meta(path) == {"model": "other"}
    assert leftovers(tmp_path, {"feats"}) == []                      # no temp or old folder left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(VtlibError, match="path.*vtlib only replaces"):
        save_features(mine, other, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    real, calls = datasets.Dataset.save_to_disk, []

    def crash_on_second_split(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("power cut")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", crash_on_second_split)
    with pytest.raises(KeyboardInterrupt):
        save_features(tmp_path / "feats", make_splits())
    assert len(calls) == 2 and leftovers(tmp_path, set()) == []
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", real)
    save_features(tmp_path / "feats", make_splits(), meta=META)
    calls.clear()
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", crash_on_second_split)
    with pytest.raises(KeyboardInterrupt):
        save_features(tmp_path / "feats", make_splits(seed=1), overwrite=True)
    assert leftovers(tmp_path, {"feats"}) == []
    assert torch.equal(load_features(tmp_path / "feats", "train")[0], make_splits()["train"][0])   # old store intact
    assert feature_meta(tmp_path / "feats") == META


def test_a_failed_final_rename_puts_the_old_store_back(store, tmp_path, monkeypatch):
    path, splits = store
    real = vf.os.replace

    def fail_on_the_new_store(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(vf.os, "replace", fail_on_the_new_store)
    with pytest.raises(OSError, match="disk full"):
        save_features(path, make_splits(seed=2), overwrite=True)
    monkeypatch.setattr(vf.os, "replace", real)
    assert leftovers(tmp_path, {"feats"}) == []
    assert torch.equal(load_features(path, "test")[0], splits["test"][0]) and feature_meta(path) == META


def test_save_features_errors(tmp_path):
    f, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    cases = [({"train": (f, y[:3])}, "one per feature row"), ({"train": (f, y.float())}, "integer labels"),
             ({"train": (f[0], y)}, "finite float features"), ({"train": (f * float("nan"), y)}, "finite"),
             ({"train": (f, y), "val": (torch.randn(2, 5), y[:2])}, "one width D"), ({}, "non-empty"),
             ({"my split": (f, y)}, "split name"), ({"train": f}, "split name")]
    for splits, message in cases:
        with pytest.raises(VtlibError, match=message):
            save_features(tmp_path / "x", splits)
    with pytest.raises(VtlibError, match="meta.*lists"):
        save_features(tmp_path / "x", {"train": (f, y)}, meta={"size": (28, 28, 28)})   # would come back a list
    assert not (tmp_path / "x").exists()
    save_features(tmp_path / "np", {"train": (f.numpy().astype(np.float64), y.numpy())})   # NumPy input works
    assert load_features(tmp_path / "np", "train")[0].dtype == torch.float32
    with pytest.raises(VtlibError, match="path.*written by vtlib.features"):
        load_features(tmp_path / "nothing", "train")


def test_export_split_stores_clips_with_the_same_guarantees(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    vols, labels = rng.integers(0, 256, (6, 4, 5, 5), dtype=np.uint8), np.arange(6, dtype=np.int64) % 2
    seen = {}

    def fake_load_arrays(name, split, size=28, root=None, download=True):
        seen.update(name=name, split=split, size=size, download=download)
        return vols, labels

    monkeypatch.setattr("vtlib.data.load_arrays", fake_load_arrays)
    path = export_split("adrenal", "val", 28, tmp_path / "clips", download=False)
    assert seen == {"name": "adrenal", "split": "val", "size": 28, "download": False}
    clips, got_labels = load_clips(path, "val")
    assert clips.dtype == torch.uint8 and torch.equal(clips, torch.from_numpy(vols))   # not widened to int64
    assert got_labels.dtype == torch.int64 and torch.equal(got_labels, torch.from_numpy(labels))
    ds = open_store(path, "val")
    assert ds.cache_files and ds[2]["clip"].dtype == torch.uint8 and ds[2]["label"] == labels[2]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["clip"].shape == (4, 4, 5, 5) and batch["label"].tolist() == labels[:4].tolist()
    assert feature_meta(path) == {"dataset": "adrenal", "split": "val", "size": 28}
    with pytest.raises(VtlibError, match="a store of features.*store of clips"):
        load_features(path, "val")
    with pytest.raises(VtlibError, match="a store of clips.*store of features"):
        load_clips(save_features(tmp_path / "f", make_splits()), "train")
    with pytest.raises(VtlibError, match="exists"):
        export_split("adrenal", "val", 28, path)


def test_export_split_of_the_real_file(tmp_path, adrenal_path):
    from vtlib.data import load_arrays

    path = export_split("adrenal", "val", 28, tmp_path / "adrenal_val", root=adrenal_path.parent, download=False)
    vols, labels = load_arrays("adrenal", "val", 28, adrenal_path.parent, download=False)
    clips, got_labels = load_clips(path, "val")
    assert torch.equal(clips, torch.from_numpy(vols)) and torch.equal(got_labels, torch.from_numpy(labels))
    assert clips.shape == (98, 28, 28, 28) and feature_meta(path)["dataset"] == "adrenal"
