"""The one mechanism behind every port: a table of (vtlib parameter, HF parameter) pairs, walked both ways.

A port is a list of ``Pair``. Most pairs are plain copies between tensors of the same shape;
``same("encoder.blocks.0.norm1", "vivit.layers.0.layernorm_before")`` pairs the weight and bias of
two modules with one layout (Linear, LayerNorm, Conv). Where the layouts differ, a named special
case returns a ``Pair`` that knows the conversion in both directions:

=====================  =====================================  =========================================
special case           vtlib                                  transformers
=====================  =====================================  =========================================
``qkv_split``          qkv Linear(D, 3D), rows [q; k; v]      q, k, v: three Linear(D, D)
``qv_bias_split``      qkv bias (3D,), [b_q; b_k; b_v]        q and v biases (D,): no k bias (VideoMAE)
``cls_position_fold``  CLS (1, 1, D), no position;            CLS (1, 1, D) + positions (1, 1 + N, D)
                       positions (1, N, D), patches only
``channel_rows``       rows flattened (c k)                   rows flattened (k c) (VideoMAE pixel head)
=====================  =====================================  =========================================

``copy_to_hf(model, hf_model, table)`` and ``copy_from_hf(hf_model, model, table)`` walk the same
table. Before copying anything they check that the table names every parameter of both models exactly
once and nothing else (``check_table``): a partial copy cannot pass silently, the error names the
parameter. Also here: the one ``to_hf_video`` and the ``HFVideoClassifier`` wrapper base.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from einops import rearrange
from torch import Tensor, nn

from vtlib.block import mlp_hidden_dim
from vtlib.errors import bad_arg, check_float, check_rank

Convert = Callable[..., tuple[Tensor, ...]]
PINNED = "transformers==5.23.0"


def _copy(*tensors: Tensor) -> tuple[Tensor, ...]:
    return tensors


@dataclass(frozen=True)
class Pair:
    """vtlib parameters ``ours`` <-> HF parameters ``theirs`` (full names as in ``named_parameters``).

    ``to_hf(*ours) -> theirs`` and ``from_hf(*theirs) -> ours`` convert the tensors; the default
    ``rule="copy"`` copies one tensor to one tensor of the same shape.
    """
    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    rule: str = "copy"
    to_hf: Convert = _copy
    from_hf: Convert = _copy


def pair(ours: str, theirs: str) -> Pair:
    """A plain copy of one parameter, e.g. ``pair("cls_token", "timesformer.embeddings.cls_token")``."""
    return Pair((ours,), (theirs,))


def same(ours: str, theirs: str, *, bias: bool = True) -> list[Pair]:
    """Weight (and bias) of a vtlib module <-> the HF module with the same layout (module prefixes)."""
    return [pair(f"{ours}.{n}", f"{theirs}.{n}") for n in (("weight", "bias") if bias else ("weight",))]


# ----------------------------------------------------------------------------- named special cases
def qkv_split(ours: str, q: str, k: str, v: str, *, bias: bool = True) -> list[Pair]:
    """vtlib's fused ``qkv`` Linear(D, 3D) <-> HF's separate q, k, v Linear(D, D) (module prefixes).

    vtlib stacks the rows [q; k; v], each split into heads of D / heads contiguous features, as HF
    does per projection: weight (3D, D) = cat of three (D, D), bias (3D,) = cat of three (D,).
    """
    def to_hf(qkv: Tensor) -> tuple[Tensor, ...]:
        return qkv.chunk(3)

    def from_hf(*qkv: Tensor) -> tuple[Tensor, ...]:
        return (torch.cat(qkv),)

    return [Pair((f"{ours}.{n}",), (f"{q}.{n}", f"{k}.{n}", f"{v}.{n}"), "qkv_split", to_hf, from_hf)
            for n in (("weight", "bias") if bias else ("weight",))]


def qv_bias_split(ours: str, q: str, v: str) -> Pair:
    """vtlib's fused qkv bias (3D,) <-> HF's q and v biases (D,) (module prefixes; VideoMAE has no k bias).

    A k bias adds the same number q . b_k to every score of a query's row, which softmax removes, so
    it never changes the output: to HF it is dropped (the only lossy rule), from HF it is zero.
    """
    def to_hf(qkv: Tensor) -> tuple[Tensor, ...]:
        bq, _, bv = qkv.chunk(3)
        return bq, bv

    def from_hf(bq: Tensor, bv: Tensor) -> tuple[Tensor, ...]:
        return (torch.cat([bq, torch.zeros_like(bq), bv]),)

    return Pair((f"{ours}.bias",), (f"{q}.bias", f"{v}.bias"), "qv_bias_split", to_hf, from_hf)


def cls_position_fold(cls: str, pos: str, hf_cls: str, hf_pos: str) -> Pair:
    """vtlib CLS (1, 1, D) + patch positions (1, N, D) <-> HF CLS (1, 1, D) + positions (1, 1 + N, D).

    HF's first token is ``hf_cls + hf_pos[:, 0]``; vtlib's CLS gets no position, its first token is
    ``cls``. Both are constants, so: ``cls = hf_cls + hf_pos[:, :1]``, and back ``hf_cls = cls``,
    ``hf_pos[:, 0] = 0``. The network sees the same first token either way.
    """
    def to_hf(token: Tensor, table: Tensor) -> tuple[Tensor, ...]:
        return token, torch.cat([torch.zeros_like(token), table], dim=1)

    def from_hf(token: Tensor, table: Tensor) -> tuple[Tensor, ...]:
        return token + table[:, :1], table[:, 1:]

    return Pair((cls, pos), (hf_cls, hf_pos), "cls_position_fold", to_hf, from_hf)


def channel_rows(ours: str, theirs: str, channels: int) -> list[Pair]:
    """Output rows flattened channel-major (c k) in vtlib <-> channel-last (k c) in HF (module prefixes).

    VideoMAE's pixel head predicts a tubelet as (c t p1 p2) in vtlib (``patchify``), (t p1 p2 c) in
    HF: the rows of weight (C k, D) and bias (C k,) are permuted. For C = 1 it is a plain copy.
    """
    def to_hf(rows: Tensor) -> tuple[Tensor, ...]:
        return (rearrange(rows, "(c k) ... -> (k c) ...", c=channels),)

    def from_hf(rows: Tensor) -> tuple[Tensor, ...]:
        return (rearrange(rows, "(k c) ... -> (c k) ...", c=channels),)

    return [Pair((f"{ours}.{n}",), (f"{theirs}.{n}",), "channel_rows", to_hf, from_hf) for n in ("weight", "bias")]


# ----------------------------------------------------------------------------- the walk
def _names(found: list[str], limit: int = 6) -> str:
    return ", ".join(found[:limit]) + (f" and {len(found) - limit} more" if len(found) > limit else "")


def check_table(table: Iterable[Pair], ours: Iterable[str], theirs: Iterable[str]) -> None:
    """Raise unless ``table`` names each vtlib parameter in ``ours`` and each HF one in ``theirs`` exactly once."""
    table = list(table)
    sides = (("vtlib", [n for p in table for n in p.ours], set(ours),
              "the vtlib model has other names (state_dict keys): fix the pair in the table"),
             ("HF", [n for p in table for n in p.theirs], set(theirs),
              f"fix the pair in the table; if HF renamed its layers, install the pinned {PINNED}"))
    for side, named, have, fix in sides:
        twice = sorted(n for n, k in Counter(named).items() if k > 1)
        if twice:
            raise bad_arg("table", f"each {side} parameter in one pair", f"{_names(twice)} in several",
                          "remove the duplicate pairs")
        unknown = sorted(set(named) - have)
        if unknown:
            raise bad_arg("table", f"only parameters of the {side} model", f"{_names(unknown)} (no such parameter)",
                          fix)
        missing = sorted(have - set(named))
        if missing:
            raise bad_arg("table", f"a pair for every {side} parameter (no partial copies)",
                          f"no pair for {_names(missing)}",
                          "add a pair for it (a named special case if the layouts differ)")


@torch.no_grad()
def _walk(table: list[Pair], model: nn.Module, hf_model: nn.Module, to_hf: bool) -> None:
    """Check the table and every converted shape, then copy (so a refused table copies nothing)."""
    ours, theirs = dict(model.named_parameters()), dict(hf_model.named_parameters())
    check_table(table, ours, theirs)
    src, dst = (ours, theirs) if to_hf else (theirs, ours)
    writes = []
    for p in table:
        src_names, dst_names, convert = (p.ours, p.theirs, p.to_hf) if to_hf else (p.theirs, p.ours, p.from_hf)
        for name, value in zip(dst_names, convert(*(src[n] for n in src_names)), strict=True):
            if dst[name].shape != value.shape:
                raise bad_arg(f"table ({p.rule} pair)", f"{name} shaped {tuple(dst[name].shape)}",
                              f"{tuple(value.shape)} from {', '.join(src_names)}",
                              "build both models from one config (hf_*_config / *_from_hf)")
            writes.append((dst[name], value))
    for target, value in writes:
        target.copy_(value)


def copy_to_hf(model: nn.Module, hf_model: nn.Module, table: list[Pair]) -> None:
    """Copy every parameter of vtlib ``model`` into ``hf_model`` along ``table`` (checked first)."""
    _walk(table, model, hf_model, to_hf=True)


def copy_from_hf(hf_model: nn.Module, model: nn.Module, table: list[Pair]) -> None:
    """Copy every parameter of ``hf_model`` into vtlib ``model`` along ``table`` (checked first)."""
    _walk(table, model, hf_model, to_hf=False)


# ----------------------------------------------------------------------------- shared checks and builders
def transformers_module():
    """The ``transformers`` package, or a clear error (it is a test dependency, imported only when used)."""
    try:
        import transformers
    except ImportError:  # pragma: no cover - transformers is a test dependency
        raise bad_arg("transformers", f"the transformers package (pinned {PINNED})", "not installed",
                      f"pip install '{PINNED}' (or pip install -e '.[test]')") from None
    return transformers


def check_model(model: nn.Module, cls: type, fix: str) -> None:
    """Raise unless ``model`` is a vtlib ``cls``."""
    if not isinstance(model, cls):
        raise bad_arg("model", f"a {cls.__module__}.{cls.__name__}", type(model).__name__, fix)


def check_hf(hf_model: nn.Module, cls_name: str) -> None:
    """Raise unless ``hf_model`` is a ``transformers.<cls_name>``."""
    if not isinstance(hf_model, getattr(transformers_module(), cls_name)):
        raise bad_arg("hf_model", f"a transformers.{cls_name}", type(hf_model).__name__,
                      f"build one with transformers.{cls_name}(config) or the matching *_to_hf(model)")


def build_hf(cls_name: str, config, *, like: nn.Module) -> nn.Module:
    """A new ``transformers.<cls_name>(config)`` on ``like``'s device and dtype, in eval mode."""
    return placed_like(getattr(transformers_module(), cls_name)(config), like)


def placed_like(module: nn.Module, like: nn.Module) -> nn.Module:
    """``module`` moved to the device and dtype of ``like``'s parameters, in eval mode (only inference is ported)."""
    ref = next(like.parameters())
    return module.to(device=ref.device, dtype=ref.dtype).eval()


def mlp_ratio(dim: int, hidden: int) -> float:
    """An mlp_ratio with ``mlp_hidden_dim(dim, ratio) == hidden`` exactly (plain division can land just below)."""
    ratio = hidden / dim
    return ratio if mlp_hidden_dim(dim, ratio) == hidden else (hidden + 0.5) / dim


def hidden_act(blocks: Iterable[nn.Module], *, name: str, allow_tanh: bool = False) -> str:
    """HF's ``hidden_act`` for vtlib blocks: "gelu" if every ``mlp.act`` is the exact ``nn.GELU()``,
    "gelu_pytorch_tanh" if every one is the tanh GELU and ``allow_tanh``."""
    kinds = {b.mlp.act.approximate if type(b.mlp.act) is nn.GELU else type(b.mlp.act).__name__ for b in blocks}
    if kinds == {"none"}:
        return "gelu"
    if allow_tanh and kinds == {"tanh"}:
        return "gelu_pytorch_tanh"
    expected = "nn.GELU() in every block" + (" (or the tanh GELU in all)" if allow_tanh else "")
    raise bad_arg(f"{name}[i].mlp.act", expected, sorted(map(str, kinds)),
                  "keep vtlib's default MLP activation, the same in every block")


def check_hidden_act(config, allowed: tuple[str, ...] = ("gelu",)) -> None:
    """Raise unless ``config.hidden_act`` is one of ``allowed`` (vtlib's MLP uses GELU)."""
    if config.hidden_act not in allowed:
        raise bad_arg("hf_model.config.hidden_act", f"one of {list(allowed)} (vtlib's MLP uses GELU)",
                      repr(config.hidden_act), "port a model built with hidden_act='gelu'")


# ----------------------------------------------------------------------------- layout and wrapper
def to_hf_video(x: Tensor) -> Tensor:
    """vtlib clips (B, C, T, H, W) -> HF ``pixel_values`` (B, T, C, H, W), contiguous (a copy).

    Contiguous because HF VideoMAE's pre-training loss ``.view``s the pixels; ViViT and TimeSformer
    take either.
    """
    check_rank("x", x, 5, "B C T H W")
    return x.transpose(1, 2).contiguous()


class HFVideoClassifier(nn.Module):
    """An HF video classifier taking vtlib clips: (B, C, T, H, W) float -> logits (B, K).

    Lets the same training loop (``vtlib.train.fit``), FLOP meter and benchmark drive both
    implementations. The wrapped model is ``.hf``. The base class takes any HF model whose output has
    ``.logits`` (B, K), e.g. ``VivitForVideoClassification``; subclasses name the ``hf_class`` they
    accept and override ``pool_logits`` where HF returns another shape.
    """
    hf_class: str | None = None

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        if not isinstance(hf_model, nn.Module):
            raise bad_arg("hf_model", "a transformers model (nn.Module)", type(hf_model).__name__,
                          "pass e.g. vivit_to_hf(model)")
        if self.hf_class is not None:
            check_hf(hf_model, self.hf_class)
        self.hf = hf_model

    def forward(self, x: Tensor) -> Tensor:
        pixel_values = to_hf_video(x)                      # checks the rank too
        check_float("x", x)
        return self.pool_logits(self.hf(pixel_values=pixel_values).logits, batch=x.shape[0])

    def pool_logits(self, logits: Tensor, *, batch: int) -> Tensor:
        """HF's logits -> (B, K); here they already are."""
        return logits
