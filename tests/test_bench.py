"""Smoke tests for vtlib.bench with tiny configs (the benchmark itself is a command, not a test)."""
from __future__ import annotations

import pytest
import torch

from vtlib.bench import (
    ENTRIES,
    PRESETS,
    BenchConfig,
    Entry,
    bench,
    format_rows,
    main,
    make_step,
    peak_memory,
    time_steps,
    train_flops,
)
from vtlib.cost import measure_flops, transformer_flops
from vtlib.errors import VtlibError

TINY = BenchConfig(video_shape=(4, 8, 8), tubelet=(2, 4, 4), dim=16, depth=1, heads=2, batch=2)


def test_bench_rows_have_both_sides_and_ratios():
    pytest.importorskip("transformers")
    (row,) = bench("vivit", TINY, warmup=1, repeats=2, iters=1, memory=False, config_name="tiny")
    assert row["model"] == "vivit" and row["config"] == "tiny" and row["tokens"] == 8
    assert row["logits_max_abs_diff"] < 1e-5                        # same weights, same logits
    assert row["params_ref"] - row["params_vtlib"] == TINY.dim      # HF's extra CLS position row
    assert row["gflops_fwd_per_clip_ratio"] == 1.0                  # same arithmetic
    assert row["gflops_train_per_clip_ratio"] == 1.0
    assert row["gflops_train_per_clip_vtlib"] > 2 * row["gflops_fwd_per_clip_vtlib"]
    for key in ("infer_clips_s", "train_clips_s"):
        assert row[f"{key}_vtlib"] > 0 and row[f"{key}_ref"] > 0
        assert row[f"{key}_ratio"] == pytest.approx(row[f"{key}_vtlib"] / row[f"{key}_ref"], rel=0.01)
    assert 0 <= row["train_vtlib_faster_share"] <= 1 and row["infer_vtlib_faster_share"] in (0, 0.5, 1)
    text = format_rows([row])
    assert "vtlib/ref" in text and "training clips/s" in text and "tiny" in text


def test_forward_flops_match_the_formula():
    model = ENTRIES["vivit"].build(TINY).eval()
    x = torch.randn(1, 1, *TINY.video_shape)
    n = TINY.tokens + 1                                              # + CLS
    embed = 2 * TINY.tokens * TINY.dim * 2 * 4 * 4                   # Conv3d as a matmul, C*t*p*p = 32
    head = 2 * TINY.dim * TINY.num_classes
    assert measure_flops(model, x) == transformer_flops(n, TINY.dim, TINY.depth) + embed + head
    assert train_flops(model, x, torch.tensor([1])) > measure_flops(model, x)


def test_entry_without_reference_and_step_modes():
    build = lambda cfg: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, cfg.num_classes))  # noqa: E731
    ENTRIES["toy"] = Entry(build, None, "", "a linear probe")
    try:
        (row,) = bench(["toy"], TINY, warmup=0, repeats=1, iters=1, memory=False)
    finally:
        del ENTRIES["toy"]
    assert "infer_clips_s_vtlib" in row and "infer_clips_s_ref" not in row and "infer_clips_s_ratio" not in row
    model = build(TINY)
    x, y = torch.randn(2, 1, 4, 8, 8), torch.tensor([0, 1])
    before = model[1].weight.detach().clone()
    make_step(model, x, y, train=True)()
    assert model.training and not torch.equal(before, model[1].weight)   # a training step updates
    make_step(model, x, y, train=False)()
    assert not model.training
    speeds = time_steps({"a": lambda: None, "b": lambda: None}, batch=4, device=torch.device("cpu"),
                        warmup=0, repeats=3, iters=2)
    assert list(speeds) == ["a", "b"] and all(len(v) == 3 for v in speeds.values())


def test_peak_memory_in_child_process():
    small = BenchConfig(video_shape=(8, 28, 28), tubelet=(2, 7, 7), dim=64, depth=2, heads=4, batch=16)
    mem = peak_memory("vivit", small, "vtlib")                     # measurable: a few MiB of activations
    assert 0 <= mem["infer_mib"] < mem["train_mib"] and "peak" in mem["method"]


def test_cli_writes_csv(tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "bench.csv"
    rows = main(["--model", "vivit", "--preset", "course", "--video", "4", "8", "8", "--tubelet", "2", "4", "4",
                 "--dim", "16", "--depth", "1", "--heads", "2", "--batch", "2", "--warmup", "0", "--repeats", "1",
                 "--iters", "1", "--no-memory", "--threads", "1", "2", "--out", str(out)])
    assert len(rows) == 2 and rows[0]["tokens"] == 8 and [r["threads"] for r in rows] == [1, 2]
    text = out.read_text()
    assert text.startswith("model,config,") and "train_clips_s_ratio" in text and "transformers" in text
    assert "vtlib/ref" in capsys.readouterr().out


def test_bad_arguments_are_refused():
    with pytest.raises(VtlibError, match="names"):
        bench(["nope"], TINY, memory=False)
    with pytest.raises(VtlibError, match="video_shape"):
        BenchConfig(video_shape=(5, 8, 8), tubelet=(2, 4, 4))
    with pytest.raises(VtlibError, match="cfg"):
        bench("vivit", {"dim": 8}, memory=False)
    with pytest.raises(VtlibError, match="repeats"):
        time_steps({"a": lambda: None}, 1, torch.device("cpu"), repeats=0)
    with pytest.raises(VtlibError, match="warmup"):
        time_steps({"a": lambda: None}, 1, torch.device("cpu"), warmup=-1)
    with pytest.raises(VtlibError, match="impl"):
        peak_memory("vivit", TINY, "keras")
    assert PRESETS["course"].tokens == 112 and PRESETS["fine"].tokens == 686


@pytest.mark.parametrize("name", ["videomae", "timesformer"])
def test_every_entry_runs_against_its_reference(name):
    pytest.importorskip("transformers")
    (row,) = bench(name, TINY, warmup=0, repeats=1, iters=1, memory=False)
    assert row["model"] == name and row["logits_max_abs_diff"] < 1e-5
    assert row["gflops_fwd_per_clip_ratio"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", ["convvit", "resnet3d_small", "resnet18_2.5d", "frame_temporal", "r2plus1d"])
def test_models_without_a_reference_are_benchmarked(name):
    cfg = BenchConfig(video_shape=(16, 16, 16), tubelet=(4, 4, 4), batch=2)
    (row,) = bench([name], cfg, warmup=0, repeats=1, iters=1, memory=False)
    assert row["train_clips_s_vtlib"] > 0 and row["gflops_fwd_per_clip_vtlib"] > 0
    assert "train_clips_s_ref" not in row


def test_vtn_entries_window_against_hugging_face_and_full():
    pytest.importorskip("transformers")
    from vtlib.models.vtn import FullBlock

    cfg = BenchConfig(video_shape=(40, 4, 4), tubelet=(1, 4, 4), dim=16, depth=1, heads=2, batch=2)
    (row,) = bench(["vtn"], cfg, warmup=0, repeats=1, iters=1, memory=False)
    assert row["logits_max_abs_diff"] < 1e-5 and row["tokens"] == 40 and row["params_ratio"] == 1.0
    assert ENTRIES["vtn_full"].reference is None
    full = ENTRIES["vtn_full"].build(cfg)
    assert full.attention == "full" and all(isinstance(b, FullBlock) for b in full.blocks)
    (row,) = bench(["vtn_full"], cfg, warmup=0, repeats=1, iters=1, memory=False)
    assert row["tokens"] == 40 and row["gflops_fwd_per_clip_vtlib"] > 0


def test_amp_and_compile_reach_both_models(monkeypatch):
    """--amp runs both steps in bf16 autocast; --compile times both through torch.compile while the
    parameters, FLOPs and logits come from the eager modules."""
    pytest.importorskip("transformers")
    compiled = []

    def fake_compile(module):                        # a real compile takes a minute on this CPU
        compiled.append(type(module).__name__)
        return module
    monkeypatch.setattr(torch, "compile", fake_compile)
    (row,) = bench(["vivit"], TINY, warmup=0, repeats=1, iters=1, memory=False, amp=True, compile=True)
    assert row["amp"] is True and row["compile"] is True and len(compiled) == 2
    assert row["logits_max_abs_diff"] < 1e-4 and row["gflops_fwd_per_clip_ratio"] == 1.0
    assert "bf16 autocast, torch.compile" in format_rows([row])
    seen = []
    model = torch.nn.Linear(4, 2)
    model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 1])
    make_step(model, x, y, train=True, amp=True)()
    make_step(model, x, y, train=False, amp=False)()
    assert seen == [torch.bfloat16, torch.float32]


def test_profile_groups_ops_by_kind_and_sees_the_tubelet_conv_only_in_the_reference():
    pytest.importorskip("transformers")
    from vtlib.bench import PROFILE_GROUPS, _inputs, _models, format_profile, profile_step

    models = _models(ENTRIES["vivit"], TINY, torch.device("cpu"), 0)
    x, y = _inputs(TINY, torch.device("cpu"))
    prof = {k: profile_step(m, x, y, steps=2) for k, m in models.items()}
    for p in prof.values():
        assert list(p) == list(PROFILE_GROUPS) and all(v >= 0 for v in p.values())
        assert p["matrix products"] > 0 and p["optimizer"] > 0
        assert p["attention kernel"] + p["softmax"] > 0    # SDPA, or the explicit form on short sequences
    assert prof["vtlib"]["convolution"] == 0          # training runs the Linear view of the tubelet conv
    assert prof["ref"]["convolution"] > 0             # Hugging Face runs Conv3d and its backward
    table = format_profile(prof)
    assert "attention kernel" in table and "vtlib" in table and "ref" in table
    with pytest.raises(VtlibError, match="^x: expected a CPU batch"):
        profile_step(models["vtlib"], x.to("meta"), y)
