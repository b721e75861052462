"""Benchmark: vtlib models next to a peer implementation with the same weights, in the same run.

    python -m vtlib.bench --model vivit                       # the course config on the CPU, 1 thread
    python -m vtlib.bench --model vivit --preset course fine wide --out results/bench_vivit.csv
    python -m vtlib.bench --model vivit --dim 96 --depth 6 --heads 6 --batch 8 --threads 2
    python -m vtlib.bench --model vivit timesformer videomae --preset course fine --device cuda --amp --compile

For every model entry and config it reports, for vtlib and for the reference (Hugging Face's
``VivitForVideoClassification`` for ViViT Model 1), and as a ratio vtlib / reference:

* **inference throughput**, clips/s: eval mode, ``torch.no_grad()``, one batch per step;
* **training throughput**, clips/s: one step = forward, cross-entropy, backward, AdamW step;
* **peak memory**, MiB above the memory held before the step (model, optimiser, input batch):
  CUDA: ``torch.cuda.max_memory_allocated`` minus ``memory_allocated`` before. CPU: the growth of
  the process's peak resident memory (the ``ru_maxrss`` high-water mark; on Linux read as VmHWM
  and reset through ``/proc/self/clear_refs`` just before the step) during one inference pass and
  one training step, after one warm-up step, in a fresh child process per model. The resting state
  includes the model, the input batch and AdamW's state. CPU numbers include the allocator's
  overhead: compare them with each other, not with a formula;
* **FLOPs** per clip, counted by ``torch.utils.flop_counter`` (``vtlib.cost.measure_flops``, SDPA
  run through its MATH backend so attention is counted on CPU): forward, and forward + backward.

On a GPU, ``--amp`` (bf16 autocast, what ``TrainConfig(amp=True)`` does on CUDA) and ``--compile``
(``torch.compile``, as ``TrainConfig(compile=True)``) apply to vtlib and the reference alike; SDPA
then picks its fused CUDA kernels for both. On a CPU without bf16 units neither pays.

How the timings are taken: ``torch.set_num_threads(--threads)`` (default 1: the course machine is
shared), the reference gets a copy of vtlib's weights (and its logits are checked against vtlib's),
``--warmup`` untimed steps per model, then ``--repeats`` timed repeats of ``--iters`` steps each,
alternating vtlib and reference (and their order) so that machine noise hits both alike. The
reported throughput is the **median** over repeats. Ratios > 1 mean vtlib is faster (throughput)
or needs more (memory, FLOPs). ``*_vtlib_faster_share`` is the share of repeats in which vtlib beat
the reference it was paired with: about 0.5 means "no measurable difference".

Adding a model: put an ``Entry`` in ``ENTRIES`` with ``build(cfg) -> nn.Module`` taking clips
(B, C, T, H, W) to logits, and ``reference(model) -> nn.Module`` (same weights, same layout) or
``None`` when there is no peer implementation (the reference columns stay empty).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from vtlib.cost import measure_flops
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.tokens import token_grid
from vtlib.utils import count_parameters

MiB = 2**20


@dataclass(frozen=True)
class BenchConfig:
    """One model size and batch. ``video_shape`` = (T, H, W); ``tubelet`` = (t, p, p)."""
    video_shape: tuple[int, int, int] = (28, 28, 28)
    tubelet: tuple[int, int, int] = (4, 7, 7)
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 2
    in_channels: int = 1
    batch: int = 16

    def __post_init__(self):
        for name in ("dim", "depth", "heads", "num_classes", "in_channels", "batch"):
            check_positive_int(name, getattr(self, name))
        token_grid(self.video_shape, self.tubelet)      # sizes must divide

    @property
    def tokens(self) -> int:
        return math.prod(token_grid(self.video_shape, self.tubelet))


PRESETS: dict[str, BenchConfig] = {
    "course": BenchConfig(),                                             # notebook 05: 112 tokens
    "fine": BenchConfig(tubelet=(2, 4, 4), batch=8),                     # 686 tokens: attention-bound
    "wide": BenchConfig(dim=192, depth=6, heads=6),                      # 112 tokens, 3x wider, deeper
}


@dataclass(frozen=True)
class Entry:
    """A benchmarked model: ``build(cfg)`` -> vtlib model; ``reference(model)`` -> peer model with
    the same weights taking the same clips (B, C, T, H, W), or None."""
    build: Callable[[BenchConfig], nn.Module]
    reference: Callable[[nn.Module], nn.Module] | None = None
    reference_name: str = ""
    description: str = ""


def _build_vivit(cfg: BenchConfig) -> nn.Module:
    from vtlib.models.vivit import ViViT

    return ViViT(num_classes=cfg.num_classes, video_shape=cfg.video_shape, tubelet=cfg.tubelet, dim=cfg.dim,
                 depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, in_channels=cfg.in_channels)


def _hf_vivit(model: nn.Module) -> nn.Module:
    from vtlib.hf import HFVideoClassifier, vivit_to_hf

    return HFVideoClassifier(vivit_to_hf(model, attn_implementation="sdpa"))


ENTRIES: dict[str, Entry] = {
    "vivit": Entry(_build_vivit, _hf_vivit, "transformers.VivitForVideoClassification (sdpa)",
                   "ViViT Model 1: joint space-time attention"),
}


class EveryNthFrame(nn.Module):
    """Keep frames offset, offset + n, ... (offset = n // 2) of (B, C, T, H, W), then run ``model``.

    Lets a per-frame model take the benchmark's clips with the token count of a (n, p, p) tubelet.
    """

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        check_positive_int("n", n)
        self.model, self.n = model, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, :, self.n // 2::self.n])


def timesformer_entry(attention: str = "divided") -> Entry:
    """TimeSformer next to HF's ``TimesformerForVideoClassification``, same weights.

    The bench config's tubelet (t, p, p) becomes every t-th frame cut into p x p patches, so the
    token count equals the tubelet model's (course preset: 7 frames x 16 patches = 112 tokens).
    """
    from vtlib.hf import HF_ATTENTION

    if attention not in HF_ATTENTION:
        raise bad_arg("attention", f"one of {list(HF_ATTENTION)}", repr(attention), "HF has only these three")

    def build(cfg: BenchConfig) -> nn.Module:
        from vtlib.models.timesformer import TimeSformer

        t, p, q = cfg.tubelet
        T, H, W = cfg.video_shape
        if p != q:
            raise bad_arg("cfg.tubelet", "square patches (t, p, p)", cfg.tubelet, "use e.g. (4, 7, 7)")
        model = TimeSformer(num_classes=cfg.num_classes, video_shape=(len(range(t // 2, T, t)), H, W), patch=p,
                            dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio,
                            in_channels=cfg.in_channels, attention=attention)
        return EveryNthFrame(model, t)

    def reference(wrapped: EveryNthFrame) -> nn.Module:
        from vtlib.hf import HFTimesformerClassifier, timesformer_to_hf

        return EveryNthFrame(HFTimesformerClassifier(timesformer_to_hf(wrapped.model)), wrapped.n)

    return Entry(build, reference, f"transformers.TimesformerForVideoClassification ({HF_ATTENTION[attention]})",
                 f"TimeSformer, {attention} attention")


def _build_videomae(cfg: BenchConfig) -> nn.Module:
    from vtlib.models.videomae import VideoMAEClassifier

    return VideoMAEClassifier(num_classes=cfg.num_classes, video_shape=cfg.video_shape, tubelet=cfg.tubelet,
                              dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio,
                              in_channels=cfg.in_channels)


def _hf_videomae(model: nn.Module) -> nn.Module:
    from vtlib.hf import HFVideoMAEClassifier, classifier_to_hf

    return HFVideoMAEClassifier(classifier_to_hf(model, attn_implementation="sdpa"))


def _build_convvit(cfg: BenchConfig) -> nn.Module:
    from vtlib.models.convvit import ConvViT

    return ConvViT(num_classes=cfg.num_classes, video_shape=cfg.video_shape, in_channels=cfg.in_channels)


def _cnn(kind: str, **kwargs) -> Callable[[BenchConfig], nn.Module]:
    def build(cfg: BenchConfig) -> nn.Module:
        from vtlib.models.cnn_temporal import FrameTemporalCNN, R2Plus1dCNN
        from vtlib.models.resnet3d import ResNet3D

        factory = {"resnet3d": ResNet3D, "frame_temporal": FrameTemporalCNN, "r2plus1d": R2Plus1dCNN}[kind]
        return factory(num_classes=cfg.num_classes, in_channels=cfg.in_channels, **kwargs)
    return build


VTN_WINDOW = 18                                    # the authors' attention_window: 9 frames on each side


def _vtn(attention: str) -> Callable[[BenchConfig], nn.Module]:
    """VTN's temporal encoder on every frame of the clip. Each frame (C, H, W) is flattened and mapped
    to ``dim`` by one Linear (a stand-in backbone, so that the temporal encoder dominates the cost), then
    [CLS] + learned positions, ``depth`` window blocks (window ``VTN_WINDOW``, the CLS global) or full
    attention blocks, and VTN's head. One token per frame: pass ``--tubelet 1 H W`` so that the
    ``tokens`` column counts the frames, and grow the frames with ``--video T H W``."""
    def build(cfg: BenchConfig) -> nn.Module:
        from vtlib.models.vtn import VTN, ImageBackbone

        T, H, W = cfg.video_shape
        frame = ImageBackbone(nn.Sequential(nn.Flatten(), nn.Linear(cfg.in_channels * H * W, cfg.dim)),
                              out_dim=cfg.dim)
        return VTN(backbone=frame, attention=attention, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads,
                   window=VTN_WINDOW, num_classes=cfg.num_classes, max_frames=T, in_channels=cfg.in_channels,
                   mlp_ratio=cfg.mlp_ratio, head_drop=0.0)
    return build


def _hf_vtn(model: nn.Module) -> nn.Module:
    from vtlib.hf.longformer import use_hf_attention

    return use_hf_attention(model)


# The registry: a static table; every build and reference imports its model when first called, so
# importing vtlib.bench loads neither the models nor transformers.
ENTRIES.update({
    "videomae": Entry(_build_videomae, _hf_videomae, "transformers.VideoMAEForVideoClassification (sdpa)",
                      "VideoMAE classifier: encoder on all tokens, mean pooling + fc_norm"),
    "timesformer": timesformer_entry(),
    # the course recipe's ConvViT and the CNN chapter's models: no peer implementation, own columns only
    "convvit": Entry(_build_convvit, description="the course recipe: 3D conv tokenizer + ViT"),
    "resnet3d_small": Entry(_cnn("resnet3d", widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1)),
                            description="the lab's CNN yardstick: 3D ResNet, widths 8-64, 1 block per stage"),
    **{f"resnet18_{conv}": Entry(_cnn("resnet3d", conv=conv), description=f"MedMNIST v2's ResNet-18 + {conv}")
       for conv in ("3d", "2.5d", "acs")},
    "frame_temporal": Entry(_cnn("frame_temporal"), description="per-frame 2D conv + temporal conv"),
    # VTN: the temporal encoder with vtlib's window attention against Hugging Face's Longformer attention
    # (same weights, same blocks), and with full attention; grow the frames with --video T H W
    "vtn": Entry(_vtn("window"), _hf_vtn, "transformers LongformerSelfAttention (same weights, same blocks)",
                 f"VTN temporal encoder, window {VTN_WINDOW} frames, global CLS"),
    "vtn_full": Entry(_vtn("full"), description="VTN temporal encoder with full attention over the frames (SDPA)"),
    "r2plus1d": Entry(_cnn("r2plus1d"), description="(2+1)D convolutions"),
})



# ----------------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: bool):
    """bf16 autocast on ``device`` when ``amp`` (what ``TrainConfig(amp=True)`` does on CUDA)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool, amp: bool = False,
              module: nn.Module | None = None) -> Callable[[], None]:
    """One benchmark step: inference (eval, no_grad) or a training step (AdamW), in bf16 autocast
    if ``amp``. ``model`` may be a ``torch.compile`` wrapper of ``module`` (whose mode is set)."""
    module = model if module is None else module
    autocast = functools.partial(_autocast, x.device, amp)
    if not train:
        module.eval()

        def step() -> None:
            with torch.no_grad(), autocast():
                model(x)
        return step
    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, foreach=True)     # as vtlib.train.fit

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()
    return step


# What a training step's time is spent on: profiler ops grouped by kind (first match wins). Every op
# called inside ``optimizer.step`` / ``zero_grad`` counts as "optimizer", whatever its name.
OP_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    ("attention kernel", ("aten::_scaled_dot_product", "aten::_flash_attention", "aten::_efficient_attention")),
    ("convolution", ("aten::convolution", "aten::_convolution", "aten::mkldnn_convolution",
                     "aten::cudnn_convolution", "aten::conv")),
    ("GELU", ("aten::gelu",)),
    ("LayerNorm", ("aten::native_layer_norm",)),
    ("softmax", ("aten::_softmax",)),
    ("copies", ("aten::copy_", "aten::cat", "aten::clone", "aten::stack")),
)
PROFILE_GROUPS = (*(g for g, _ in OP_GROUPS), "optimizer", "other")


def _op_group(event) -> str:
    e = event
    while e is not None:
        if e.name.startswith("Optimizer."):
            return "optimizer"
        e = e.cpu_parent
    return next((g for g, prefixes in OP_GROUPS if event.name.startswith(prefixes)), "other")


@contextlib.contextmanager
def _fd2_silenced():
    """Send file descriptor 2 to /dev/null: the profiler's C++ start/stop lines bypass sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3,
                 amp: bool = False) -> dict[str, float]:
    """Milliseconds per training step (as :func:`make_step`) spent in each of ``PROFILE_GROUPS``.

    ``torch.profiler``'s self CPU time of every op, summed by :data:`OP_GROUPS`, after one warm-up
    step; the values add up to the profiled step time (the profiler adds a little of its own).
    CPU only: on a GPU the CPU self time is launch overhead, not kernel time.
    """
    from torch.profiler import ProfilerActivity, profile

    check_positive_int("steps", steps)
    if x.device.type != "cpu":
        raise bad_arg("x", "a CPU batch (profile_step sums CPU self time)", f"a batch on {x.device}",
                      "profile on the CPU, or use torch.profiler with ProfilerActivity.CUDA on a GPU")
    step = make_step(model, x, y, train=True, amp=amp)
    step()
    prof = profile(activities=[ProfilerActivity.CPU])
    with _fd2_silenced():
        prof.start()
    try:
        for _ in range(steps):
            step()
    finally:
        with _fd2_silenced():
            prof.stop()
    out = dict.fromkeys(PROFILE_GROUPS, 0.0)
    for e in prof.events():
        out[_op_group(e)] += e.self_cpu_time_total / 1e3 / steps
    return out


def format_profile(profiles: dict[str, dict[str, float]]) -> str:
    """A table: one row per group, one column per profiled model (ms per step and share)."""
    names = list(profiles)
    lines = [f"  {'ms per training step':<22}" + "".join(f"{n:>18}" for n in names)]
    totals = {n: sum(p.values()) for n, p in profiles.items()}
    for g in PROFILE_GROUPS:
        cells = "".join(f"{profiles[n][g]:>10.1f} ({profiles[n][g] / totals[n]:>4.0%})" for n in names)
        lines.append(f"  {g:<22}{cells}")
    lines.append(f"  {'total':<22}" + "".join(f"{totals[n]:>10.1f}        " for n in names))
    return "\n".join(lines)


def time_steps(steps: dict[str, Callable[[], None]], batch: int, device: torch.device, warmup: int = 2,
               repeats: int = 5, iters: int = 3) -> dict[str, list[float]]:
    """Clips/s of each step function, per repeat: warm-up, then repeats alternating the models."""
    check_positive_int("repeats", repeats)
    check_positive_int("iters", iters)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise bad_arg("warmup", "an int >= 0", repr(warmup), "pass e.g. warmup=2")
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    _sync(device)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):  # alternate the order
            t0 = time.perf_counter()
            for _ in range(iters):
                steps[name]()
            _sync(device)
            out[name].append(iters * batch / (time.perf_counter() - t0))
    return out


def train_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of forward + backward of cross-entropy (no optimiser), whole batch, MATH SDPA."""
    counter = FlopCounterMode(display=False)
    model.train()
    with sdpa_kernel(SDPBackend.MATH), counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux: VmHWM, via /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_mib(field: str) -> float:
    """Resident memory in MiB: "VmRSS" (now) or "VmHWM" (peak) on Linux; ru_maxrss elsewhere.

    (On Linux ``ru_maxrss`` is not used: after fork + exec it also holds the parent's peak.)
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024
    except (OSError, StopIteration):
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / MiB if sys.platform == "darwin" else kib / 1024  # bytes on macOS, KiB on Linux


def _trim() -> None:
    """Return free heap memory to the OS (glibc ``malloc_trim``), so RSS reflects live memory."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _inputs(cfg: BenchConfig, device: torch.device, batch: int | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b = cfg.batch if batch is None else batch
    x = torch.randn(b, cfg.in_channels, *cfg.video_shape, generator=g)
    y = torch.randint(cfg.num_classes, (b,), generator=g)
    return x.to(device), y.to(device)


def _models(entry: Entry, cfg: BenchConfig, device: torch.device, seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    model = entry.build(cfg).to(device)
    models = {"vtlib": model}
    if entry.reference is not None:
        models["ref"] = entry.reference(model).to(device)
    return models


def peak_memory(name: str, cfg: BenchConfig, impl: str = "vtlib", device: str = "cpu", threads: int = 1,
                seed: int = 0) -> dict[str, float]:
    """Peak memory (MiB) above the resting state for one inference pass and one training step.

    CPU: measured in a fresh child process (``python -c``), so one model's freed memory cannot
    hide another's; the child knows only the entries defined in this module.
    Returns {"infer_mib", "train_mib", "method"}.
    """
    check_choice("name", name, list(ENTRIES))
    check_choice("impl", impl, ["vtlib", "ref"])
    args = dict(name=name, cfg_dict=asdict(cfg), impl=impl, device=device, threads=threads, seed=seed)
    if torch.device(device).type != "cpu":
        return _peak_memory_here(**args)
    code = ("import json, sys; from vtlib.bench import _peak_memory_here; "
            "print(json.dumps(_peak_memory_here(**json.loads(sys.argv[1]))))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # so the child imports this vtlib
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peak_memory child process failed for {name}/{impl}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_memory_here(name: str, cfg_dict: dict, impl: str, device: str, threads: int, seed: int) -> dict:
    torch.set_num_threads(threads)
    cfg, dev = BenchConfig(**cfg_dict), torch.device(device)
    model = _models(ENTRIES[name], cfg, dev, seed)[impl]
    x, y = _inputs(cfg, dev)
    out = {}
    for phase in ("infer", "train"):
        step = make_step(model, x, y, train=phase == "train")  # sets the mode
        step()                     # warm-up: lazy init, kernel workspaces, AdamW state (kept: "resting")
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            step()
            torch.cuda.synchronize(dev)
            out[f"{phase}_mib"] = (torch.cuda.max_memory_allocated(dev) - base) / MiB
            out["method"] = "torch.cuda.max_memory_allocated"
        else:
            _trim()                # hand freed heap pages back, or the next step reuses them unseen
            if _reset_peak_rss():  # Linux: peak := current, then peak - current after the step
                base = _rss_mib("VmRSS")
                step()
                out[f"{phase}_mib"] = max(0.0, _rss_mib("VmHWM") - base)
                out["method"] = "peak RSS growth (VmHWM, reset via /proc/self/clear_refs)"
            else:                  # elsewhere the peak cannot be reset: growth of ru_maxrss
                base = _rss_mib("VmHWM")
                step()
                out[f"{phase}_mib"] = max(0.0, _rss_mib("VmHWM") - base)
                out["method"] = "ru_maxrss growth (a lower bound)"
    return out


# ----------------------------------------------------------------------------------- the run
def bench(names: Sequence[str] = ("vivit",), cfg: BenchConfig = BenchConfig(), device: str = "cpu",
          threads: int = 1, warmup: int = 2, repeats: int = 5, iters: int = 3, memory: bool = True,
          seed: int = 0, config_name: str = "custom", amp: bool = False, compile: bool = False,
          profile: bool = False) -> list[dict]:
    """Benchmark each named entry at ``cfg``; one row per entry with vtlib, reference and ratio columns.

    ``amp``: time both in bf16 autocast; ``compile``: time both through ``torch.compile`` (the
    warm-up steps compile; parameters, FLOPs, logits and memory are measured on the eager modules).
    ``profile``: add ``profile_<group>_ms_<impl>`` columns from :func:`profile_step` (CPU only).
    """
    if isinstance(names, str):
        names = [names]
    for n in names:
        check_choice("names", n, list(ENTRIES))
    if not isinstance(cfg, BenchConfig):
        raise bad_arg("cfg", "a vtlib.bench.BenchConfig", type(cfg).__name__, "pass BenchConfig(...) or PRESETS[name]")
    check_positive_int("threads", threads)
    dev = torch.device(device)
    torch.set_num_threads(threads)
    rows = []
    for name in names:
        entry = ENTRIES[name]
        models = _models(entry, cfg, dev, seed)
        x, y = _inputs(cfg, dev)
        x1, y1 = x[:1], y[:1]
        row = {"model": name, "config": config_name, "video": "x".join(map(str, cfg.video_shape)),
               "tubelet": "x".join(map(str, cfg.tubelet)), "tokens": cfg.tokens, "dim": cfg.dim,
               "depth": cfg.depth, "heads": cfg.heads, "batch": cfg.batch, "device": str(dev),
               "threads": threads, "warmup": warmup, "repeats": repeats, "iters": iters, "amp": amp,
               "compile": compile, "reference": entry.reference_name}
        with torch.no_grad():
            logits = {k: m.eval()(x) for k, m in models.items()}
        if "ref" in models:
            row["logits_max_abs_diff"] = float((logits["vtlib"] - logits["ref"]).abs().max())
        for k, m in models.items():
            row[f"params_{k}"] = count_parameters(m)
            row[f"gflops_fwd_per_clip_{k}"] = round(measure_flops(m.eval(), x1) / 1e9, 6)
            row[f"gflops_train_per_clip_{k}"] = round(train_flops(m, x1, y1) / 1e9, 6)
        run = {k: torch.compile(m) if compile else m for k, m in models.items()}
        for phase, train in (("infer", False), ("train", True)):
            steps = {k: make_step(run[k], x, y, train, amp, module=m) for k, m in models.items()}
            speeds = time_steps(steps, cfg.batch, dev, warmup, repeats, iters)
            for k, s in speeds.items():
                row[f"{phase}_clips_s_{k}"] = round(statistics.median(s), 2)
            if "ref" in speeds:    # paired repeats: robust to load that drifts during the run
                wins = sum(a > b for a, b in zip(speeds["vtlib"], speeds["ref"]))
                row[f"{phase}_vtlib_faster_share"] = round(wins / repeats, 3)
        if profile:
            for k, m in models.items():
                for g, ms in profile_step(m, x, y, amp=amp).items():
                    row[f"profile_{g.replace(' ', '_')}_ms_{k}"] = round(ms, 2)
        if memory:
            for k in models:
                mem = peak_memory(name, cfg, k, device, threads, seed)
                row[f"peak_infer_mib_{k}"] = round(mem["infer_mib"], 1)
                row[f"peak_train_mib_{k}"] = round(mem["train_mib"], 1)
                row["memory_method"] = mem["method"]
        if "ref" in models:
            for metric in ("params", "gflops_fwd_per_clip", "gflops_train_per_clip", "infer_clips_s",
                           "train_clips_s", "peak_infer_mib", "peak_train_mib"):
                a, b = row.get(f"{metric}_vtlib"), row.get(f"{metric}_ref")
                if a is not None and b:
                    row[f"{metric}_ratio"] = round(a / b, 3)
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    """Side-by-side text table per row: metric, vtlib, reference, vtlib / reference."""
    lines = []
    labels = [("params", "parameters"), ("gflops_fwd_per_clip", "GFLOPs forward / clip"),
              ("gflops_train_per_clip", "GFLOPs fwd+bwd / clip"), ("infer_clips_s", "inference clips/s"),
              ("train_clips_s", "training clips/s"), ("peak_infer_mib", "peak inference MiB"),
              ("peak_train_mib", "peak training MiB")]
    for r in rows:
        lines.append(f"{r['model']} [{r['config']}]: video {r['video']}, tubelet {r['tubelet']} "
                     f"({r['tokens']} tokens), "
                     f"dim {r['dim']}, depth {r['depth']}, heads {r['heads']}, batch {r['batch']}")
        mode = ", bf16 autocast" * bool(r.get("amp")) + ", torch.compile" * bool(r.get("compile"))
        lines.append(f"  {r['device']}{mode}, {r['threads']} thread(s), {r['warmup']} warm-up steps, median of "
                     f"{r['repeats']} repeats x {r['iters']} steps; reference: {r['reference'] or 'none'}")
        lines.append(f"  {'metric':<24}{'vtlib':>12}{'reference':>12}{'vtlib/ref':>11}")
        for key, label in labels:
            if f"{key}_vtlib" not in r:
                continue
            ref, ratio = r.get(f"{key}_ref", ""), r.get(f"{key}_ratio", "")
            lines.append(f"  {label:<24}{r[f'{key}_vtlib']:>12}{ref:>12}{ratio:>11}")
        if "train_vtlib_faster_share" in r:
            lines.append(f"  vtlib faster in {r['infer_vtlib_faster_share']:.0%} (inference) and "
                         f"{r['train_vtlib_faster_share']:.0%} (training) of the paired repeats")
        if "logits_max_abs_diff" in r:
            lines.append(f"  logits max |vtlib - reference| = {r['logits_max_abs_diff']:.2e}")
        if "memory_method" in r:
            lines.append(f"  memory: {r['memory_method']}")
        impls = [k for k in ("vtlib", "ref") if f"profile_other_ms_{k}" in r]
        if impls:
            lines.append(format_profile({k: {g: r[f"profile_{g.replace(' ', '_')}_ms_{k}"] for g in PROFILE_GROUPS}
                                         for k in impls}))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m vtlib.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", default=["vivit"], help=f"entries: {sorted(ENTRIES)} or 'all'")
    p.add_argument("--preset", nargs="+", default=["course"], help=f"configs: {sorted(PRESETS)}")
    p.add_argument("--video", nargs=3, type=int, metavar=("T", "H", "W"))
    p.add_argument("--tubelet", nargs=3, type=int, metavar=("t", "p", "q"))
    for name in ("dim", "depth", "heads", "batch", "classes"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--mlp-ratio", type=float)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="one run per thread count, e.g. 1 2")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--amp", action="store_true", help="time both models in bf16 autocast (the GPU setting)")
    p.add_argument("--compile", action="store_true", help="time both models through torch.compile")
    p.add_argument("--profile", action="store_true", help="where a training step's time goes, by kind of op")
    p.add_argument("--out", help="write the rows to this CSV (e.g. results/bench_vivit.csv)")
    a = p.parse_args(argv)
    names = sorted(ENTRIES) if a.model == ["all"] else a.model
    for n in names:
        check_choice("--model", n, list(ENTRIES) + ["all"])
    overrides = {k: v for k, v in dict(video_shape=tuple(a.video) if a.video else None,
                                       tubelet=tuple(a.tubelet) if a.tubelet else None, dim=a.dim, depth=a.depth,
                                       heads=a.heads, batch=a.batch, num_classes=a.classes,
                                       mlp_ratio=a.mlp_ratio).items() if v is not None}
    for preset in a.preset:
        check_choice("--preset", preset, list(PRESETS))
    rows = []
    for threads in a.threads:
        for preset in a.preset:
            cfg = replace(PRESETS[preset], **overrides)
            label = preset if not overrides else preset + "+" + ",".join(f"{k}={v}" for k, v in overrides.items())
            new = bench(names, cfg, a.device, threads, a.warmup, a.repeats, a.iters, not a.no_memory, a.seed, label,
                        amp=a.amp, compile=a.compile, profile=a.profile)
            print(format_rows(new), flush=True)
            rows += new
    if a.out:
        import transformers

        from vtlib.records import provenance, write_csv

        prov = provenance()
        extra = {"torch": prov["torch"], "transformers": transformers.__version__, "platform": prov["platform"],
                 "cpu": prov["cpu"],
                 "command": "python -m vtlib.bench " + " ".join(sys.argv[1:] if argv is None else argv)}
        path = write_csv([{**r, **extra} for r in rows], a.out)
        print(f"wrote {os.path.relpath(path)}")
    return rows


if __name__ == "__main__":
    main()
