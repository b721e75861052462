"""vtlib's sliding-window attention and VTN on Hugging Face's ``LongformerSelfAttention``: same weights, same logits.

A reference implementation, not a weight port: Hugging Face has no VTN, so the VTN keeps its backbone,
positions, blocks and head, and only the attention inside each block runs Hugging Face's code
(``use_hf_attention``); ``python -m vtlib.bench --model vtn`` compares the two.

vtlib ``SlidingWindowAttention``          transformers ``LongformerSelfAttention`` (layer_id 0)
---------------------------------------   -------------------------------------------------------
query, key, value  Linear(D, D)           query, key, value (same names, same layout)
query_global, key_global, value_global    query_global, key_global, value_global (same)
window (even, full width)                 config.attention_window[0]
attn_drop                                 config.attention_probs_dropout_prob
proj, proj_drop                           (not in the layer: HF's LongformerSelfOutput adds a
                                          residual and a LayerNorm, so vtlib's projection is kept)
forward(x, keep, is_global)               forward(h, attention_mask, is_index_masked,
                                          is_index_global_attn, is_global_attn)

Things to know (``HFWindowAttention``):

* **Length.** Hugging Face needs the length to be a multiple of the window: the tokens are padded with
  zeros (mask -10000, its padding code) and the output is cut back to L.
* **Masks.** One float ``attention_mask`` holds all three kinds: -10000 padded (``keep`` False), 0 local,
  +10000 global (``is_global``).
* **Precision.** HF's softmax runs in float32 even for float64 inputs; in float32 a VTN's logits agree
  within 1e-5 (tests/test_hf_longformer.py; tests/test_window.py checks the layer itself in float64).

``transformers`` is imported only when a layer is built; nothing is downloaded (the config is local).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from vtlib.errors import bad_arg
from vtlib.hf.common import check_model, transformers_module
from vtlib.models.vtn import VTN
from vtlib.window import SlidingWindowAttention

NAMES = ("query", "key", "value", "query_global", "key_global", "value_global")


def hf_longformer_config(attn: SlidingWindowAttention):
    """A local ``LongformerConfig`` for one layer shaped like ``attn`` (hidden dropout 0)."""
    transformers = transformers_module()
    return transformers.LongformerConfig(hidden_size=attn.dim, num_attention_heads=attn.heads, num_hidden_layers=1,
                                         intermediate_size=4 * attn.dim, attention_window=[attn.window],
                                         attention_probs_dropout_prob=attn.attn_drop, hidden_dropout_prob=0.0)


class HFWindowAttention(nn.Module):
    """Hugging Face's ``LongformerSelfAttention`` holding the weights of a vtlib
    ``SlidingWindowAttention`` (copies, at build time), with its ``forward(x, keep, is_global)`` and its
    output projection: x (B, L, D), keep / is_global (B, L) bool or None -> (B, L, D).

    The HF layer is ``.hf``; see the module docstring for the padding and the mask codes.
    """

    def __init__(self, attn: SlidingWindowAttention) -> None:
        super().__init__()
        if not isinstance(attn, SlidingWindowAttention):
            raise bad_arg("attn", "a vtlib.window.SlidingWindowAttention", type(attn).__name__,
                          "pass a window layer, e.g. model.blocks[0].attn of a VTN built with attention='window'")
        transformers_module()
        from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

        self.window = attn.window
        self.hf = LongformerSelfAttention(hf_longformer_config(attn), layer_id=0)
        with torch.no_grad():
            for name in NAMES:
                getattr(self.hf, name).load_state_dict(getattr(attn, name).state_dict())
        self.hf.to(attn.query.weight.device, attn.query.weight.dtype)
        self.proj, self.proj_drop = copy.deepcopy(attn.proj), copy.deepcopy(attn.proj_drop)

    def forward(self, x: Tensor, keep: Tensor | None = None, is_global: Tensor | None = None) -> Tensor:
        B, L, D = x.shape
        keep = torch.ones(B, L, dtype=torch.bool, device=x.device) if keep is None else keep
        is_global = torch.zeros_like(keep) if is_global is None else is_global
        pad = -L % self.window
        mask = torch.full((B, L + pad), -1e4, dtype=x.dtype, device=x.device)
        mask[:, :L] = torch.where(keep, torch.where(is_global, 1e4, 0.0), -1e4).to(x.dtype)
        h = torch.cat([x, x.new_zeros(B, pad, D)], dim=1)
        out = self.hf(h, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=mask > 0,
                      is_global_attn=bool((mask > 0).any()))[0][:, :L]
        return self.proj_drop(self.proj(out))


def use_hf_attention(model: VTN) -> VTN:
    """A copy of a window ``VTN`` whose attention layers are Hugging Face's (same weights, same
    logits): the reference of ``python -m vtlib.bench --model vtn``. ``model`` is left as it is."""
    check_model(model, VTN, "build it with vtlib.models.vtn.VTN(...)")
    if model.attention != "window":
        raise bad_arg("model.attention", "'window' (Hugging Face's Longformer has only window attention)",
                      repr(model.attention), "compare a VTN built with attention='window'")
    ref = copy.deepcopy(model)
    for b in ref.blocks:
        b.attn = HFWindowAttention(b.attn)
    return ref
