"""The experiment plumbing: loaders, one tiny run, summaries and atomic CSV files."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib.errors import VtlibError
from vtlib.experiments.common import (
    dataset_summary,
    format_summary,
    loaders,
    read_csv,
    report,
    run,
    slice_loaders,
    summarise,
    write_csv,
    write_results,
)
from vtlib.train import TrainConfig


def test_loaders_adrenal_and_synthetic():
    dl = loaders("adrenal", batch_size=8)
    assert len(dl["train"].dataset) == 1188 and len(dl["test"].dataset) == 298
    x, y = next(iter(dl["val"]))
    assert x.shape == (8, 1, 28, 28, 28) and y.dtype == torch.int64
    half = loaders("adrenal", train_fraction=0.25, seed=1)
    assert len(half["train"].dataset) == 297 and len(half["val"].dataset) == 98
    syn = loaders("direction", n_train=64, size=28)
    assert len(syn["train"].dataset) == 64 and len(syn["val"].dataset) == 64


def test_run_summarise_and_csv(tmp_path):
    data = loaders("direction", n_train=64, size=28, batch_size=16)
    build = lambda: nn.Sequential(nn.Flatten(), nn.Linear(28 ** 3, 2))  # noqa: E731
    rows = run("linear", build, data, TrainConfig(epochs=1, progress=False), seeds=[0, 1])
    assert [r["seed"] for r in rows] == [0, 1] and all(0 <= r["test_auc"] <= 1 for r in rows)
    summary = summarise(rows)
    assert summary[0]["n"] == 2 and "test_auc_mean" in summary[0]
    assert "linear" in format_summary(summary)
    path = write_csv(rows, tmp_path / "r.csv")
    back = read_csv(path)
    assert [float(r["test_auc"]) for r in back] == pytest.approx([r["test_auc"] for r in rows])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_write_results_stamps_provenance_and_summary(tmp_path):
    rows = [{"config": "a", "seed": s, "test_auc": 0.5 + s / 10, "test_acc": 0.7} for s in range(3)]
    write_results(rows, tmp_path / "x.csv", "python -m vtlib.experiments.x")
    back = read_csv(tmp_path / "x.csv")
    assert all(r["command"] == "python -m vtlib.experiments.x" for r in back)
    summary = read_csv(tmp_path / "x_summary.csv")
    assert summary[0]["n"] == "3" and float(summary[0]["test_auc_mean"]) == pytest.approx(0.6)
    assert float(summary[0]["test_auc_std"]) == pytest.approx(0.1)


def test_dataset_summary_columns_and_order(capsys):
    rows = [{"dataset": ds, "config": c, "seed": s, "epochs": 8, "params": 10, "mflops": 1.5, "extra": c,
             "test_auc": 0.5 + s / 10, "test_acc": 0.6, "val_auc": 0.7, "clips_per_cpu_s": str(100 + 10 * s)}
            for ds in ("direction", "adrenal") for c in ("b", "a") for s in range(3)]
    out = dataset_summary(rows, ("epochs", "params", "mflops", "extra"))
    assert [(r["dataset"], r["config"]) for r in out] == [("direction", "b"), ("direction", "a"),
                                                         ("adrenal", "b"), ("adrenal", "a")]
    assert list(out[0]) == ["dataset", "config", "n", "test_auc_mean", "test_auc_std", "test_acc_mean",
                            "test_acc_std", "val_auc_mean", "val_auc_std", "epochs", "params", "mflops", "extra",
                            "clips_per_cpu_s"]
    assert out[0]["test_auc_mean"] == pytest.approx(0.6) and out[0]["clips_per_cpu_s"] == 110.0
    report([{**rows[0], "best_epoch": 3, "train_seconds": 2.5}], f"{'direction':>10} b")
    assert capsys.readouterr().out == " direction b seed 0: test AUC 0.500 ACC 0.600 (best epoch 3, 2.5 s)\n"


def test_slice_loaders_label_every_slice_and_check_frames():
    x = torch.arange(2 * 6, dtype=torch.float32).view(2, 1, 6, 1, 1)
    data = {"train": DataLoader(TensorDataset(x, torch.tensor([0, 1])))}
    out = slice_loaders(data, frames=(0, 5), batch_size=3)["train"]
    xs, ys = out.dataset.tensors
    assert xs.shape == (4, 1, 1, 1, 1) and xs.flatten().tolist() == [0, 5, 6, 11] and ys.tolist() == [0, 0, 1, 1]
    assert out.batch_size == 3 and slice_loaders(data, frames=(1,))["train"].batch_size == 64
    for frames in ((), (6,), (-1,)):
        with pytest.raises(VtlibError, match="^frames:"):
            slice_loaders(data, frames=frames)


def test_positions_experiment_builds_every_cell_and_merges_in_table_order(tmp_path):
    from vtlib.experiments.positions import SETTINGS, _merge, build

    for setting, s in SETTINGS.items():
        for position in s["positions"]:
            model = build(setting, position)
            assert model(torch.zeros(1, 1, 28, 28, 28)).shape == (1, 2)
    out = tmp_path / "p.csv"
    write_csv([{"config": "adrenal/none", "seed": 0, "test_auc": 0.7}], out)
    new = [{"config": "direction-frame/none", "seed": 1, "test_auc": 0.5}]
    merged = _merge(new, str(out), {("direction-frame/none", "1")})
    assert [r["config"] for r in merged] == ["direction-frame/none", "adrenal/none"]   # table order


def test_timesformer_experiment_parts(monkeypatch):
    from vtlib.experiments import timesformer as tsf

    cost = tsf.cost_sweep(configs=("joint", "divided"), frames=(4,), sizes=(), verbose=False)
    by = {r["config"]: r for r in cost}
    assert by["joint"]["comparisons_per_patch"] == 4 * 16 + 1 and by["divided"]["comparisons_per_patch"] == 16 + 4 + 1
    assert by["joint"]["tokens"] == by["divided"]["tokens"] == 1 + 4 * 16 and by["joint"]["mflops"] > 0
    rows = tsf.train_sweep("direction", seeds=(0,), epochs=1, configs=("space",), n_train=64, verbose=False)
    assert rows[0]["config"] == "space" and 0 <= rows[0]["test_auc"] <= 1 and rows[0]["clips_per_cpu_s"] > 0
    (summary,) = tsf.summary_rows(rows)
    assert summary["dataset"] == "direction" and summary["paper_ssv2"] == 36.6
    monkeypatch.setitem(tsf.JOINT_PROBES, "tiny", (64, 2, 1e-3, {"dim": 12, "depth": 1, "heads": 2}, 1.0))
    (probe,) = tsf.joint_probes(("tiny",), verbose=False)
    assert probe["probe"] == "tiny" and len(probe["train_loss_per_epoch"].split()) == 2
    assert 0 <= probe["test_auc"] <= 1 and probe["sincos_time_scale"] == 1.0
