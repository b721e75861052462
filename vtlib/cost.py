"""What attention costs: FLOP formulas for one sample, score-matrix memory, a FLOP meter and a memory probe.

Convention: one multiply-add = 2 FLOPs, as ``torch.utils.flop_counter.FlopCounterMode`` counts
matrix products (a (n, k) @ (k, m) product costs 2·n·k·m). Biases, softmax, LayerNorm, GELU,
dropout and residual additions are not counted (they are linear in N·D and small).

For N tokens of width D (any number of heads: the heads split D, they do not add work):

    QKV projection      2 · N · D · 3D   = 6·N·D²
    scores  q k^T       2 · N · N · D    = 2·N²·D   <- quadratic in N
    weighted sum  a v   2 · N · N · D    = 2·N²·D   <- quadratic in N
    output projection   2 · N · D · D    = 2·N·D²
    MLP (hidden H)      2 · 2 · N · D · H = 4·N·D·H  (= 16·N·D² for mlp_ratio 4)

FlopCounterMode and SDPA on CPU: in torch 2.13, ``F.scaled_dot_product_attention`` on CPU runs
the fused kernel ``aten._scaled_dot_product_flash_attention_for_cpu``, which the counter does
not know, so it counts **0** FLOPs for the attention core (the 4·N²·D terms).
:func:`measure_flops` therefore runs the model under the MATH SDPA backend by default, where
SDPA is computed with ordinary matrix products that the counter sees; the count is then the
same on every device.

Memory: :class:`PeakTensorMemory` (and :func:`peak_tensor_memory`) add up the bytes of the tensors
that torch ops create and that are alive at once, so the peak depends only on the ops and shapes.
"""
from __future__ import annotations

import statistics
import time
import weakref

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from vtlib.block import mlp_hidden_dim
from vtlib.errors import bad_arg, check_positive_int


def attention_core_flops(tokens: int, dim: int) -> int:
    """Scores q k^T plus weighted sum a v for one sample: 4·N²·D."""
    check_positive_int("tokens", tokens)
    check_positive_int("dim", dim)
    return 4 * tokens * tokens * dim


def attention_flops(tokens: int, dim: int) -> int:
    """One MultiHeadAttention on one sample: QKV + scores + weighted sum + output projection.

    = 6·N·D² + 2·N²·D + 2·N²·D + 2·N·D² = 8·N·D² + 4·N²·D.
    """
    check_positive_int("tokens", tokens)
    check_positive_int("dim", dim)
    projections = 2 * tokens * dim * (3 * dim) + 2 * tokens * dim * dim
    return projections + attention_core_flops(tokens, dim)


def mlp_flops(tokens: int, dim: int, hidden_dim: int) -> int:
    """MLP fc1 (D -> H) and fc2 (H -> D) on one sample: 4·N·D·H."""
    for name, value in (("tokens", tokens), ("dim", dim), ("hidden_dim", hidden_dim)):
        check_positive_int(name, value)
    return 2 * (2 * tokens * dim * hidden_dim)


def block_flops(tokens: int, dim: int, mlp_ratio: float = 4.0) -> int:
    """One pre-norm Block on one sample: attention_flops + mlp_flops with H = int(D·mlp_ratio)."""
    return attention_flops(tokens, dim) + mlp_flops(tokens, dim, mlp_hidden_dim(dim, mlp_ratio))


def transformer_flops(tokens: int, dim: int, depth: int, mlp_ratio: float = 4.0) -> int:
    """A Transformer stack of ``depth`` blocks on one sample."""
    check_positive_int("depth", depth)
    return depth * block_flops(tokens, dim, mlp_ratio)


def attention_memory_bytes(tokens: int, heads: int, batch: int = 1, bytes_per_el: int = 4) -> int:
    """Bytes of the (B, heads, N, N) score matrix that the explicit attention materialises.

    float32: bytes_per_el=4; float16/bfloat16: 2. Fused SDPA kernels avoid storing it.
    """
    for name, value in (("tokens", tokens), ("heads", heads), ("batch", batch),
                        ("bytes_per_el", bytes_per_el)):
        check_positive_int(name, value)
    return batch * heads * tokens * tokens * bytes_per_el


def measure_flops(model: nn.Module, *inputs, math_sdpa: bool = True, **forward_kwargs) -> int:
    """FLOPs that ``FlopCounterMode`` counts for ``model(*inputs, **forward_kwargs)``, no grad.

    Counts the whole batch (divide by B for one sample). ``math_sdpa=True`` (default) runs SDPA
    through its MATH backend so the attention core is counted on CPU too (see module docstring);
    ``math_sdpa=False`` shows the raw count, which on CPU misses the 4·N²·D attention terms.
    The model's train/eval mode is left as it is.
    """
    if not isinstance(model, nn.Module):
        raise bad_arg("model", "a torch.nn.Module", type(model).__name__,
                      "pass the module itself, e.g. measure_flops(block, x)")
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        if math_sdpa:
            with sdpa_kernel(SDPBackend.MATH), counter:
                model(*inputs, **forward_kwargs)
        else:
            with counter:
                model(*inputs, **forward_kwargs)
    return int(counter.get_total_flops())


@torch.no_grad()
def cpu_ms_per_clip(model: nn.Module, x: torch.Tensor, repeats: int = 3) -> float:
    """Median CPU milliseconds per clip of ``model(x)`` in eval mode (after one warm-up call).

    Uses ``time.process_time`` (CPU seconds of this process, so other jobs on a shared machine barely
    change it): run with ``torch.set_num_threads(1)`` so that it measures one core.
    """
    check_positive_int("repeats", repeats)
    model.eval()
    model(x)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        model(x)
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times) / x.shape[0]


class PeakTensorMemory(TorchDispatchMode):
    """Inside ``with PeakTensorMemory() as m:``, the bytes of the tensors created by torch ops that are
    alive at the same time: ``m.peak`` (their largest sum) and ``m.largest`` (the largest one).

    Tensors that existed before the block (weights, the input) are not counted; a view or an in-place
    result shares its input's storage and is not counted again. The numbers depend only on the ops
    and the shapes, so they are the same on every machine (unlike the process's resident memory,
    which adds the allocator's own reserve). Use it for inference (``torch.no_grad()``): tensors that
    autograd keeps for the backward pass are not seen once Python drops them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.now = self.peak = self.largest = 0

    def _release(self, ptr: int) -> None:
        self.refs[ptr] -= 1
        if self.refs[ptr] == 0:
            del self.refs[ptr]
            self.now -= self.sizes.pop(ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0] if isinstance(a, Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, Tensor):
                continue
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr == 0 or (ptr in inputs and ptr not in self.refs):    # empty, or a view of an older tensor
                continue
            if ptr not in self.refs:
                self.refs[ptr], self.sizes[ptr] = 0, storage.nbytes()
                self.now += storage.nbytes()
                self.peak, self.largest = max(self.peak, self.now), max(self.largest, storage.nbytes())
            self.refs[ptr] += 1
            weakref.finalize(t, self._release, ptr)
        return out


def peak_tensor_memory(fn, *args, **kwargs) -> dict[str, int]:
    """Run ``fn(*args, **kwargs)`` without autograd; {"peak_bytes", "largest_bytes"} (see PeakTensorMemory)."""
    with torch.no_grad(), PeakTensorMemory() as probe:
        out = fn(*args, **kwargs)
        del out
    return {"peak_bytes": probe.peak, "largest_bytes": probe.largest}
