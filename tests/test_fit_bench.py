"""vtlib.fit_bench on a tiny stand-in for a lab config (the real epoch is a command, not a test)."""
import csv

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vtlib import fit_bench
from vtlib.data import augment
from vtlib.errors import VtlibError
from vtlib.train import TrainConfig


@pytest.fixture
def tiny(monkeypatch):
    """Patch the lab set-up: 40 clips of 4x8x8, a linear model, the lab's augmentation."""
    def setup(config, seed, device):
        g = torch.Generator().manual_seed(seed)
        x, y = torch.rand(40, 1, 4, 8, 8, generator=g), torch.arange(40) % 2
        data = {"train": DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True,
                                    generator=torch.Generator().manual_seed(seed)),
                "val": DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8)}
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
        tcfg = TrainConfig(epochs=1, lr=1e-3, weight_decay=0.05, label_smoothing=0.1, seed=seed, device=device,
                           progress=False, augment=lambda v, gen: augment(v, gen))
        return data, net, tcfg
    monkeypatch.setattr(fit_bench, "_setup", setup)


def test_profile_epoch_times_every_part_and_reports_the_gap(tiny):
    row = fit_bench.profile_epoch("recipe", repeats=2)
    assert row["train_clips"] == 32 and row["epoch_s"] > 0
    # epoch_s is rounded to 0.01 s, so a tiny epoch's clips/s is only bounded by the rounding
    low, high = 32 / (row["epoch_s"] + 0.005), 32 / max(row["epoch_s"] - 0.005, 1e-9)
    assert low * 0.999 <= row["epoch_clips_s"] <= high * 1.001
    assert all(row[f"{p}_s"] >= 0 for p in fit_bench.PARTS)        # rounded to 1 ms: a tiny part may be 0.0
    raw = fit_bench.time_parts("recipe")
    assert list(raw) == list(fit_bench.PARTS) and all(t > 0 for t in raw.values())   # every part ran, timed
    assert sum(row[f"{p}_share"] for p in fit_bench.PARTS) == pytest.approx(1.0, abs=0.01)
    assert row["other_s"] == pytest.approx(row["epoch_s"] - row["parts_s"], abs=0.02)
    text = fit_bench.format_row(row)
    assert all(p in text for p in fit_bench.PARTS) and "epoch - sum" in text


def test_cli_writes_csv_and_refuses_unknown_configs(tiny, tmp_path, capsys):
    out = tmp_path / "fit.csv"
    fit_bench.main(["--config", "recipe", "cnn", "--threads", "1", "2", "--out", str(out)])
    rows = list(csv.DictReader(open(out)))
    assert [(r["config"], r["threads"]) for r in rows] == [("recipe", "1"), ("cnn", "1"), ("recipe", "2"), ("cnn", "2")]
    assert "python -m vtlib.fit_bench" in rows[0]["command"] and rows[0]["cpu"]
    assert "clips/s" in capsys.readouterr().out
    with pytest.raises(VtlibError, match="^--config: expected"):
        fit_bench.main(["--config", "nope"])


def test_timer_accumulates_per_part():
    timer = fit_bench.Timer(torch.device("cpu"))
    for _ in range(2):
        with timer("load"):
            sum(range(10000))
    assert timer.seconds["load"] > 0 and timer.seconds["augment"] == 0.0
