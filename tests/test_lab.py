"""The lab: configs, the recipe's pieces (ConvViT, flip TTA, eval scaling), the resumable sweep runner."""
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vtlib import lab
from vtlib.errors import VtlibError
from vtlib.models.convvit import ConvViT
from vtlib.train import TrainConfig, multistep


# ----------------------------------------------------------------------------- recipe pieces
def test_flip_tta_averages_the_eight_flips_in_eval_only():
    torch.manual_seed(0)
    model = ConvViT(stem=(4, 4, 4), dim=12, depth=1, heads=2)
    tta = lab.FlipTTA(model).eval()
    x = torch.rand(2, 1, 28, 28, 28)
    want = torch.stack([model(x.flip(d) if d else x) for d in lab.FlipTTA.FLIPS]).mean(0)
    torch.testing.assert_close(tta(x), want)
    assert len({tuple(f) for f in lab.FlipTTA.FLIPS}) == 8
    # invariant to flipping the input: the set of flips is a group
    torch.testing.assert_close(tta(x.flip(3)), tta(x), atol=1e-5, rtol=1e-4)
    tta.train()
    model.train()
    torch.manual_seed(1)
    a = tta(x)
    torch.manual_seed(1)
    torch.testing.assert_close(a, model(x))


def test_eval_scale_only_in_eval():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(float(x.max()))
            return x.flatten(1)[:, :2]

    net = lab.EvalScale(Probe(), 0.5)
    x = torch.ones(1, 1, 2, 2, 2)
    net.train()(x)
    net.eval()(x)
    assert seen == [1.0, 0.5]


def test_multistep_schedule_factors():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = multistep(opt, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == lrs[49] == 1.0 and lrs[50] == pytest.approx(0.1) and lrs[75] == pytest.approx(0.01)
    with pytest.raises(VtlibError, match="schedule"):
        TrainConfig(schedule="linear")


def test_configs_change_only_what_they_name():
    base = lab.config("recipe")
    assert lab.config("no_tta") == {**base, "tta": False}
    assert lab.config("no_drop_path")["model_args"] == {**base["model_args"], "drop_path": 0.0}
    cnn = lab.config("cnn")
    assert cnn["model"] == "resnet3d" and "stem" not in cnn["model_args"]
    med = lab.config("medmnist_r18_3d")
    assert (med["epochs"], med["schedule"], med["eval_scale"], med["weight_decay"]) == (100, "multistep", 0.5, 0.0)
    with pytest.raises(VtlibError, match="config"):
        lab.config("nope")
    for name in lab.CONFIGS:   # every config builds
        assert isinstance(lab.build_model(lab.config(name), 2, 28), torch.nn.Module)


def test_recipe_reads_only_dataset_and_size():
    """The recipe's model adapts to the dataset's classes and the clip size, nothing else."""
    m28 = lab.build_model(lab.config("recipe"), 11, 28)
    m64 = lab.build_model(lab.config("recipe"), 3, 64)
    assert m28(torch.rand(1, 1, 28, 28, 28)).shape == (1, 11)
    assert m64.grid == (4, 4, 4) and m64.eval()(torch.rand(1, 1, 64, 64, 64)).shape == (1, 3)


# ----------------------------------------------------------------------------- the sweep runner
@pytest.fixture
def tiny_lab(monkeypatch, tmp_path):
    """A 1-epoch tiny config on small random clips, so a sweep takes seconds."""
    monkeypatch.setitem(lab.CONFIGS, "tiny", {"epochs": 1, "tta": False,
                                              "model_args": {"stem": (4, 4, 4), "dim": 12, "depth": 1, "heads": 2}})
    monkeypatch.setitem(lab.CONFIGS, "tiny_tta", {"epochs": 1, "model_args": {"stem": (4, 4, 4), "dim": 12,
                                                                              "depth": 1, "heads": 2}})

    def loaders(dataset, size, batch_size, seed):
        g = torch.Generator().manual_seed(123)
        out = {}
        for split, n in (("train", 48), ("val", 24), ("test", 30)):
            y = torch.arange(n) % 2
            x = torch.rand(n, 1, size, size, size, generator=g) * 0.5 + y.view(-1, 1, 1, 1, 1) * 0.3
            out[split] = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=split == "train",
                                    generator=torch.Generator().manual_seed(seed))
        return out

    monkeypatch.setattr(lab, "_loaders", loaders)
    return tmp_path


def test_sweep_writes_one_record_per_run_with_scores(tiny_lab):
    runs = [lab.Run("tiny", seed=s) for s in (0, 1)] + [lab.Run("tiny_tta", seed=0)]
    records = lab.sweep("t", runs, root=tiny_lab, progress=False)
    assert [r["row"]["run"] for r in records] == sorted(r.id for r in runs)
    rec = records[0]
    assert len(rec["test"]["labels"]) == 30 and np.asarray(rec["test"]["scores"]).shape == (30, 2)
    assert len(rec["val"]["labels"]) == 24
    assert rec["row"]["params"] > 0 and rec["row"]["mflops"] > 0 and rec["row"]["epochs"] == 1
    assert not list((tiny_lab / "t").glob("*.tmp")) and not list((tiny_lab / "t" / ".ckpt").glob("*.pt"))
    rows = lab.summarize(records, reference="tiny")
    tta_row = next(r for r in rows if r["config"] == "tiny_tta")
    assert tta_row["auc_low"] <= tta_row["test_auc_mean"] <= tta_row["auc_high"]
    assert "minus_tiny" in tta_row and tta_row["diff_low"] <= tta_row["minus_tiny"] <= tta_row["diff_high"]
    assert tta_row["paired_seeds"] == 1          # only seed 0 exists for both: the comparison is paired
    assert 0 <= tta_row["test_bal_acc_mean"] <= 1 and tta_row["majority_acc"] == 0.5
    assert "tiny" in lab.format_table(rows)
    path = lab.write_summary("t", rows, root=tiny_lab)
    assert path.exists() and "minus_tiny" in path.read_text()


def test_sweep_resumes_and_skips_finished_runs(tiny_lab, monkeypatch):
    runs = [lab.Run("tiny", seed=s) for s in (0, 1, 2)]
    real, calls = lab.train_run, []

    def flaky(run, **kw):
        calls.append(run.id)
        if run.seed == 1 and calls.count(run.id) == 1:
            raise KeyboardInterrupt  # the user stops the sweep during the second run
        return real(run, **kw)

    monkeypatch.setattr(lab, "train_run", flaky)
    with pytest.raises(KeyboardInterrupt):
        lab.sweep("r", runs, root=tiny_lab, progress=False)
    done = sorted(p.name for p in (tiny_lab / "r").glob("*.json*"))
    assert done == ["tiny-adrenal28-s0.json"]            # nothing half-written
    first = json.loads((tiny_lab / "r" / done[0]).read_text())
    records = lab.sweep("r", runs, root=tiny_lab, progress=False)
    assert calls == ["tiny-adrenal28-s0", "tiny-adrenal28-s1", "tiny-adrenal28-s1", "tiny-adrenal28-s2"]
    assert len(records) == 3 and records[0] == first      # the finished run was not redone


def test_same_run_same_record(tiny_lab):
    a = lab.train_run(lab.Run("tiny", seed=3))
    b = lab.train_run(lab.Run("tiny", seed=3))
    assert a["test"] == b["test"] and a["row"]["test_auc"] == b["row"]["test_auc"]


def test_sweep_and_load_errors(tmp_path):
    with pytest.raises(VtlibError, match="runs"):
        lab.sweep("x", [], root=tmp_path)
    with pytest.raises(VtlibError, match="name"):
        lab.load_sweep("missing", root=tmp_path)


def test_two_processes_share_a_sweep_through_claims(tiny_lab):
    import subprocess
    import sys

    claim = tiny_lab / "c" / ".ckpt" / "tiny-adrenal28-s1.claim"
    assert lab._claim(claim) and lab._claim(claim)          # ours, and still ours
    claim.unlink()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        claim.write_text(str(other.pid))                  # a live process holds seed 1
        records = lab.sweep("c", [lab.Run("tiny", seed=s) for s in (0, 1)], root=tiny_lab, progress=False)
        assert [r["row"]["seed"] for r in records] == [0]
    finally:
        other.kill()
        other.wait()
    # its holder is gone: the claim is stale and the run is taken over
    records = lab.sweep("c", [lab.Run("tiny", seed=s) for s in (0, 1)], root=tiny_lab, progress=False)
    assert [r["row"]["seed"] for r in records] == [0, 1] and not claim.exists()


def test_revisit_reads_every_headline_comparison():
    import csv

    rows = lab.revisit()
    assert len(rows) == len(lab.REVISIT)
    for row, (nb, name, where, a, b) in zip(rows, lab.REVISIT):
        assert row["seeds"] >= 3, f"notebook {nb}: {a} vs {b} found {row['seeds']} paired seeds"
        with open(lab.REPO / "results" / f"{name}.csv", newline="") as f:
            recs = [r for r in csv.DictReader(f) if all(r.get(k) == v for k, v in where.items())]
        mean = {c: np.mean([float(r["test_auc"]) for r in recs if r["config"] == c]) for c in (a, b)}
        assert row["diff"] == pytest.approx(mean[a] - mean[b], abs=1e-9)
        assert row["low"] < row["diff"] < row["high"]


def test_notebook_prose_quotes_the_revisit_intervals():
    """Each earlier notebook's verdict quotes its comparison's interval exactly as lab.revisit computes it."""
    for row in lab.revisit():
        src = next((lab.REPO / "notebooks" / "src").glob(f"{row['notebook']}_*.py")).read_text()
        nb = next((lab.REPO / "notebooks").glob(f"{row['notebook']}_*.ipynb")).read_text()
        quoted = f"{row['diff']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"
        assert quoted in src and quoted in nb, f"notebook {row['notebook']}: {row['a']} vs {row['b']} {quoted}"
        after = src.split(quoted, 1)[1][:160]
        if row["resolved"]:
            assert after.lstrip(", ").startswith("resolved"), \
                f"notebook {row['notebook']}: {quoted} should say resolved"
        else:
            assert "not resolved" in after or "neither is resolved" in after, \
                f"notebook {row['notebook']}: {quoted} should say not resolved"


def test_multiclass_runs_summarise_without_binary_intervals(tiny_lab, monkeypatch):
    """Organ (11 classes) and Fracture (3) go through the same recipe; intervals are binary-only."""
    from vtlib.data import dataset_info

    real = lab._loaders

    def three_classes(dataset, size, batch_size, seed):
        out = real(dataset, size, batch_size, seed)
        for dl in out.values():
            x, y = dl.dataset.tensors
            dl.dataset.tensors = (x, torch.arange(len(y)) % 3)
        return out

    monkeypatch.setattr(lab, "_loaders", three_classes)
    rec = lab.train_run(lab.Run("tiny", dataset="fracture", seed=0))
    assert dataset_info("fracture").num_classes == 3
    assert np.asarray(rec["test"]["scores"]).shape == (30, 3)
    (row,) = lab.summarize([rec, {**rec, "row": {**rec["row"], "seed": 1}}])
    assert np.isnan(row["auc_low"]) and "test_bal_acc_mean" not in row and 0 <= row["test_auc_mean"] <= 1


def test_readme_lab_rows_match_results():
    """Every README results row that cites results/lab quotes the summary of that config exactly."""
    import re

    readme = (lab.REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("|") and "results/lab/" in line]
    assert rows, "the README results table has no lab rows"
    records = [rec for name in ("recipe", "ingredients", "baselines") for rec in lab.load_sweep(name)]
    summary = {r["config"]: r for r in lab.summarize(records)}
    for line in rows:
        config = re.search(r"config `(\w+)`", line).group(1)
        s = summary[config]
        want = f"{s['test_auc_mean']:.3f} ± {s['test_auc_std']:.3f} [{s['auc_low']:.3f}, {s['auc_high']:.3f}]"
        assert want in line, f"README row for {config} should quote {want}"
        assert f"{s['test_acc_mean']:.3f}" in line and f"{s['test_bal_acc_mean']:.3f}" in line
        assert f"n={s['seeds']}" in line


def test_train_config_is_the_config_with_overrides():
    cfg = lab.config("recipe")
    t = lab.train_config(cfg, "binary-class", 3, epochs=1, progress=False)
    assert (t.epochs, t.lr, t.weight_decay, t.warmup_epochs, t.label_smoothing, t.mixup_alpha, t.seed) == (
        1, cfg["lr"], cfg["weight_decay"], cfg["warmup_epochs"], cfg["label_smoothing"], cfg["mixup_alpha"], 3)
    assert callable(t.augment) and t.progress is False
    assert lab.train_config(cfg, "binary-class", 0, augment=None).augment is None
