"""The experiment plumbing: loaders, one tiny run, summaries and atomic CSV files."""
import numpy as np
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


# ------------------------------------------------------------------------------------------ VTN (notebook 10)
def test_vtn_score_count_is_the_window_pattern():
    from vtlib.experiments.vtn import window_score_count
    from vtlib.window import window_mask

    for frames in (1, 3, 8, 17, 40):
        for window in (2, 8, 18, 100):
            L = frames + 1
            is_global = torch.zeros(1, L, dtype=torch.bool)
            is_global[0, 0] = True
            assert window_score_count(frames, window) == int(window_mask(L, window // 2, None, is_global).sum())
            assert window_score_count(frames, window, global_cls=False) == int(window_mask(L, window // 2).sum())
    assert window_score_count(4095, 18) < 21 * 4096 < 4096 ** 2             # 19 per frame + the CLS row and column


def test_vtn_sweep_swaps_full_attention_into_the_window_model():
    from vtlib.experiments.vtn import _vtn_model
    from vtlib.models.vtn import VTN, FrameCNN, FullBlock, use_full_attention

    kw = dict(dim=16, depth=2, heads=2, window=4, max_frames=12)
    torch.manual_seed(0)
    full = _vtn_model(FrameCNN(out_dim=16), attention="full", freeze=True, **kw)
    torch.manual_seed(0)
    swapped = use_full_attention(VTN(backbone=FrameCNN(out_dim=16), freeze_backbone=True, **kw))
    assert all(isinstance(b, FullBlock) for b in full.blocks) and full.freeze_backbone
    assert all(torch.equal(p, q) for p, q in zip(full.state_dict().values(), swapped.state_dict().values()))
    torch.manual_seed(0)
    assert _vtn_model(None, **kw).attention == "window"
    with pytest.raises(VtlibError, match="attention"):
        _vtn_model(None, attention="sparse", **kw)


def test_vtn_stored_features_and_on_features_give_the_model_logits():
    from vtlib.experiments.vtn import OnFeatures, SliceClassifier, as_feature_clips, stored_features
    from vtlib.models.vtn import VTN, FrameCNN

    torch.manual_seed(0)
    model = VTN(dim=16, depth=1, heads=2, window=4, max_frames=12, head_drop=0.0).eval()
    x = torch.randn(5, 1, 12, 16, 16)
    f = stored_features(model, x, batch=2, chunk=7)
    assert f.shape == (5, 12, 16) and not f.requires_grad
    with torch.no_grad():
        assert torch.allclose(OnFeatures(model)(as_feature_clips(f)), model(x), atol=1e-5)
    net = SliceClassifier(FrameCNN(out_dim=8), num_classes=3)
    assert net(torch.randn(4, 1, 1, 16, 16)).shape == (4, 3)
    with pytest.raises(VtlibError, match="single frames"):
        net(x)
    with pytest.raises(VtlibError, match="out_dim"):
        SliceClassifier(nn.Conv2d(1, 2, 3))


def test_vtn_frame_splits_balance_events_and_empty_frames():
    from vtlib.data import make_order_videos
    from vtlib.experiments.vtn import frame_splits

    splits = {"train": make_order_videos(40, frames=64, seed=0), "val": make_order_videos(20, frames=64, seed=1)}
    out = frame_splits(splits, clips=10)
    x, y = out["train"]
    assert x.shape[1:] == (1, 1, 8, 8) and (y == 0).sum() == (y > 0).sum() == 10 * 2 * 4
    bright = (x[:, 0, 0] > 0.6).flatten(1).sum(1)
    assert (bright[y == 1] >= 7).all() and (bright[y == 2] >= 12).all() and (bright[y == 0] <= 3).all()


def test_vtn_sweep_is_resumable(tmp_path, monkeypatch):
    from vtlib.experiments import vtn

    calls = []

    def fake(config, seed):
        calls.append((config, seed))
        return {"part": "order", "config": config, "seed": seed, "epochs": 1, "best_epoch": 1, "val_auc": 0.5,
                "test_auc": 0.5 + seed / 10, "test_acc": 0.5, "params": 1, "train_seconds": 0.1, "window": 8,
                "depth": 2, "global_cls": True, "backbone": "x", "frozen_backbone": True}

    monkeypatch.setitem(vtn.RUNNERS, "order", (fake, {"global": {}, "local": {}}))
    out = tmp_path / "vtn.csv"
    vtn.sweep(("order",), seeds=(0, 1), out=out, verbose=False)
    assert calls == [("global", 0), ("global", 1), ("local", 0), ("local", 1)]
    vtn.sweep(("order",), seeds=(0, 1, 2), out=out, verbose=False)        # only seed 2 is new
    assert calls[4:] == [("global", 2), ("local", 2)]
    rows = read_csv(out)
    assert len(rows) == 6 and all(r["command"] == vtn.COMMAND for r in rows)
    summary = {r["config"]: r for r in read_csv(tmp_path / "vtn_summary.csv")}
    assert summary["global"]["n"] == "3" and float(summary["global"]["test_auc_mean"]) == pytest.approx(0.6)


def test_vtn_cost_rows():
    pytest.importorskip("transformers")
    from vtlib.experiments.vtn import cost_rows

    rows = cost_rows((8, 40), verbose=False, dim=16, heads=2, window=4)
    by = {(r["frames"], r["impl"]): r for r in rows}
    assert set(by) == {(t, i) for t in (8, 40) for i in ("window", "window-explicit", "full", "hf-longformer")}
    assert by[40, "full"]["scores_per_head"] == 41 ** 2 and by[40, "window"]["scores_per_head"] < 41 * 8
    assert by[40, "window-explicit"]["largest_mib"] > by[40, "window"]["largest_mib"]
    assert all(r["mflops"] > 0 and r["cpu_ms"] >= 0 for r in rows)


def test_vtn_sweep_keeps_scores_and_reruns_unscored_adrenal_rows(tmp_path, monkeypatch):
    from vtlib.experiments import vtn

    calls, n = [], 6

    def fake(config, seed):
        calls.append((config, seed))
        row = {"part": "adrenal", "config": config, "seed": seed, "epochs": 1, "best_epoch": 1, "val_auc": 0.5,
               "test_auc": 0.7, "test_acc": 0.5, "params": 1, "train_seconds": 0.1, "window": 8, "depth": 2,
               "global_cls": True, "backbone": "x", "frozen_backbone": False,
               "_scores": [seed / 10 + i / n for i in range(n)]}
        return [row, {**row, "config": config + "@28", "_scores": [1 - s for s in row["_scores"]]}]

    monkeypatch.setitem(vtn.RUNNERS, "adrenal", (fake, {"a": {}}))
    monkeypatch.setattr(vtn, "interval_rows", lambda rows, scores: [{"config": k[1]} for k in scores])
    out = tmp_path / "vtn.csv"
    write_csv([{"part": "adrenal", "config": "a", "seed": 0, "test_auc": 0.1}], out)     # an old row, no scores
    vtn.sweep(("adrenal",), seeds=(0, 1), out=out, verbose=False)
    assert calls == [("a", 0), ("a", 1)]                                               # seed 0 trained again
    rows = read_csv(out)
    assert sorted((r["config"], r["seed"]) for r in rows) == [("a", "0"), ("a", "1"), ("a@28", "0"), ("a@28", "1")]
    assert all(r["test_auc"] == "0.7" for r in rows)                                   # the old row was replaced
    scores = vtn.read_scores(out)
    assert set(scores) == {("adrenal", c, s) for c in ("a", "a@28") for s in ("0", "1")}
    assert scores["adrenal", "a", "1"] == pytest.approx([0.1 + i / n for i in range(n)])
    vtn.sweep(("adrenal",), seeds=(0, 1), out=out, verbose=False)
    assert len(calls) == 2                                                     # everything scored: nothing to do


def test_vtn_sparse_frames_read_every_stride_th_slice_at_its_index():
    from vtlib.experiments.vtn import SparseFrames
    from vtlib.models.vtn import VTN

    torch.manual_seed(0)
    model = VTN(dim=8, depth=1, heads=2, window=2, max_frames=28, head_drop=0.0).eval()
    x = torch.rand(2, 1, 28, 8, 8)
    net = SparseFrames(model, frames=7).eval()
    ids = torch.arange(1, 28, 4)                                                        # the middle phase of stride 4
    assert torch.allclose(net(x), model(x[:, :, ids], frame_ids=ids))
    net.eval_frames = 28
    assert torch.allclose(net(x), model(x))
    with pytest.raises(ValueError, match="multiple of 28"):
        net(x[:, :, :14])
    phases = set()
    model.forward = lambda clips, frame_ids: phases.add(int(frame_ids[0])) or torch.zeros(len(clips), 2)
    net.train()
    torch.manual_seed(1)
    for _ in range(40):                                   # training: a random phase of stride 4 each call
        net(x)
    assert phases == {0, 1, 2, 3}


def test_vtn_intervals_pair_each_config_with_its_reference(adrenal_path):
    from vtlib.data import load_split
    from vtlib.experiments import vtn

    y = load_split("adrenal", "test")[1].numpy()
    rng = np.random.default_rng(0)
    good = {str(s): list(y + rng.normal(0, 0.8, len(y))) for s in range(3)}
    noise = {str(s): list(rng.normal(0, 1, len(y))) for s in range(3)}
    scores = {**{("adrenal", "scratch", s): v for s, v in good.items()},
              **{("adrenal", "local-cls", s): v for s, v in noise.items()},
              **{("adrenal", "sparse-7", s): v for s, v in noise.items()},
              **{("adrenal", "sparse-7@28", s): v for s, v in good.items()}}
    rows = [{"part": "adrenal", "config": c} for c in ("scratch", "local-cls", "sparse-7", "sparse-7@28")]
    table = {r["config"]: r for r in vtn.interval_rows(rows, scores)}
    assert table["scratch"]["reference"] == "" and table["scratch"]["auc_low"] < table["scratch"]["test_auc"]
    local = table["local-cls"]
    assert local["reference"] == "scratch" and local["diff"] < 0 and local["resolved"]
    assert table["sparse-7@28"]["reference"] == "sparse-7" and table["sparse-7@28"]["diff_low"] > 0


def test_vtn_intervals_agree_with_the_sweep_rows():
    """The stored per-clip scores reproduce every config's mean test AUC (rounded or tied scores would not)."""
    from vtlib.experiments.common import RESULTS

    if not (RESULTS / "vtn_intervals.csv").exists():
        pytest.skip("results/vtn_intervals.csv not written yet")
    summary = {r["config"]: r for r in read_csv(RESULTS / "vtn_summary.csv") if r["part"] == "adrenal"}
    for r in read_csv(RESULTS / "vtn_intervals.csv"):
        want = float(summary[r["config"]]["test_auc_mean"])
        assert float(r["test_auc"]) == pytest.approx(want, abs=1e-3), r["config"]
        assert float(r["auc_low"]) < float(r["test_auc"]) < float(r["auc_high"])
