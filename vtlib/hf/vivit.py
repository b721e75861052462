"""ViViT Model 1 <-> Hugging Face ``VivitForVideoClassification``: same weights, same clip -> same logits.

vtlib ``ViViT``                          transformers (5.23)
-------------------------------------    ---------------------------------------------------
input (B, C, T, H, W)                    pixel_values (B, T, C, H, W)   (``to_hf_video``)
embed.proj  Conv3d (D, C, t, p, p)       vivit.embeddings.patch_embeddings.projection (same)
pool.token  (1, 1, D), no position       vivit.embeddings.cls_token (1, 1, D)
pos.pos     (1, N, D), patches only      vivit.embeddings.position_embeddings (1, 1 + N, D)
encoder.blocks[i].norm1 / norm2          vivit.layers[i].layernorm_before / layernorm_after
encoder.blocks[i].attn.qkv Linear(D, 3D) vivit.layers[i].attention.q_proj, k_proj, v_proj
encoder.blocks[i].attn.proj              vivit.layers[i].attention.o_proj
encoder.blocks[i].mlp.fc1 / fc2          vivit.layers[i].mlp.fc1 / fc2, ``hidden_act``
norm, head                               vivit.layernorm, classifier

Three differences need care (``vivit_table``):

* **The CLS position** (``cls_position_fold``). HF adds a position vector to the CLS token too; vtlib's
  CLS has none (``ClsToken`` is prepended *after* the position code). The two constants fold into one:
  ``our_cls = hf_cls + hf_pos[:, 0]``, and back ``hf_cls = our_cls``, ``hf_pos[:, 0] = 0``.
* **The packed projection** (``qkv_split``). ``qkv.weight`` is exactly ``cat([q.weight, k.weight, v.weight])``.
* **The GELU.** HF ViViT defaults to ``hidden_act="gelu_fast"`` (the tanh approximation); vtlib's MLP
  uses the exact ``nn.GELU()``. The configs built here set ``hidden_act="gelu"``; ``vivit_from_hf``
  also accepts the tanh variants and then switches the ported GELUs to ``nn.GELU(approximate="tanh")``.

``layer_norm_eps`` is copied from the model (vtlib's default 1e-6 is also HF's). Nothing is
downloaded: configs are built locally from the vtlib model.
"""
from __future__ import annotations

from torch import nn

from vtlib.errors import bad_arg
from vtlib.hf.common import (
    Pair,
    build_hf,
    check_hf,
    check_hidden_act,
    check_model,
    cls_position_fold,
    copy_from_hf,
    copy_to_hf,
    hidden_act,
    mlp_ratio,
    placed_like,
    qkv_split,
    same,
    transformers_module,
)
from vtlib.models.vivit import ViViT
from vtlib.pooling import ClsToken
from vtlib.position import LearnedPosition
from vtlib.tokens import TubeletEmbed

# Names of transformers' activations that are the tanh approximation of GELU (equal up to rounding).
TANH_GELUS = ("gelu_fast", "gelu_new", "gelu_pytorch_tanh")


def _check_portable(model: ViViT) -> str:
    """Raise unless ``model`` has the parts HF ViViT has; return the matching ``hidden_act``."""
    check_model(model, ViViT, "build it with ViViT(...) (Model 1)")
    parts = (("embed", TubeletEmbed, 'embed="tubelet"'), ("pos", LearnedPosition, 'position="learned"'),
             ("pool", ClsToken, 'pool="cls"'))
    for name, cls, fix in parts:
        module = getattr(model, name)
        if type(module) is not cls:
            raise bad_arg(f"model.{name}", f"a {cls.__name__} (HF ViViT has exactly this part)",
                          type(module).__name__, f"build the ViViT with {fix} to port it")
    return hidden_act(model.encoder.blocks, name="model.encoder.blocks", allow_tanh=True)


def hf_vivit_config(model: ViViT, attn_implementation: str = "sdpa", **overrides):
    """A ``transformers.VivitConfig`` describing the same network as ``model`` (built locally).

    Sets image_size = [H, W] and num_frames = T from ``model.video_shape`` (HF refuses other sizes),
    tubelet_size = (t, p, p), num_channels, hidden_size, depth, heads, intermediate_size = the MLP
    width, qkv_bias, layer_norm_eps, num_labels, and ``hidden_act="gelu"`` (exact GELU, as
    ``torch.nn.GELU``; HF's default ``gelu_fast`` is the tanh approximation). Dropouts are 0, as in
    vtlib's ViViT. ``overrides`` are passed on to ``VivitConfig``.
    """
    act = _check_portable(model)
    blk = model.encoder.blocks[0]
    T, H, W = model.video_shape
    kwargs = dict(
        image_size=[H, W], num_frames=T, tubelet_size=list(model.embed.tubelet),
        num_channels=model.embed.in_channels, hidden_size=model.embed.dim,
        num_hidden_layers=len(model.encoder.blocks), num_attention_heads=blk.attn.heads,
        intermediate_size=blk.mlp.fc1.out_features, hidden_act=act,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=model.norm.eps, qkv_bias=blk.attn.qkv.bias is not None,
        num_labels=model.head.out_features, attn_implementation=attn_implementation,
    )
    kwargs.update(overrides)
    return transformers_module().VivitConfig(**kwargs)


def vivit_table(config) -> list[Pair]:
    """The (vtlib, HF) parameter pairs of a ViViT / ``VivitForVideoClassification`` with ``config``."""
    e = "vivit.embeddings."
    table = [*same("embed.proj", e + "patch_embeddings.projection"),
             cls_position_fold("pool.token", "pos.pos", e + "cls_token", e + "position_embeddings")]
    for i in range(config.num_hidden_layers):
        o, t = f"encoder.blocks.{i}.", f"vivit.layers.{i}."
        a = t + "attention."
        table += [*qkv_split(o + "attn.qkv", a + "q_proj", a + "k_proj", a + "v_proj", bias=config.qkv_bias),
                  *same(o + "attn.proj", a + "o_proj"),
                  *same(o + "norm1", t + "layernorm_before"), *same(o + "norm2", t + "layernorm_after"),
                  *same(o + "mlp.fc1", t + "mlp.fc1"), *same(o + "mlp.fc2", t + "mlp.fc2")]
    return table + [*same("norm", "vivit.layernorm"), *same("head", "classifier")]


def vivit_to_hf(model: ViViT, attn_implementation: str = "sdpa"):
    """A new ``transformers.VivitForVideoClassification`` with ``model``'s weights.

    ``hf(pixel_values=to_hf_video(x)).logits`` equals ``model(x)`` in eval mode. HF gets
    ``cls_token = our CLS`` and ``position_embeddings[:, 0] = 0`` (module docstring). The HF model is
    on ``model``'s device and dtype, in eval mode (vtlib's stochastic depth, if any, has no HF
    counterpart: only inference is equal).
    """
    cfg = hf_vivit_config(model, attn_implementation)
    hf = build_hf("VivitForVideoClassification", cfg, like=model)
    copy_to_hf(model, hf, vivit_table(cfg))
    return hf


def vivit_from_hf(hf_model) -> ViViT:
    """A new vtlib ``ViViT`` (Model 1) with the weights of a ``VivitForVideoClassification``.

    ``model(x)`` equals ``hf_model(pixel_values=to_hf_video(x)).logits`` in eval mode; ``our_cls =
    hf_cls + hf_pos[:, 0]``. ``hidden_act`` must be "gelu" (exact) or a tanh GELU (``TANH_GELUS``;
    the ported model then uses ``nn.GELU(approximate="tanh")``, equal up to float rounding). HF's
    dropouts have no counterpart: only inference is ported. Returned in eval mode, on the HF model's
    device and dtype.
    """
    check_hf(hf_model, "VivitForVideoClassification")
    cfg = hf_model.config
    check_hidden_act(cfg, ("gelu",) + TANH_GELUS)
    size = cfg.image_size
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    model = ViViT(num_classes=cfg.num_labels, video_shape=(cfg.num_frames, H, W),
                  tubelet=tuple(cfg.tubelet_size), dim=cfg.hidden_size, depth=cfg.num_hidden_layers,
                  heads=cfg.num_attention_heads, mlp_ratio=mlp_ratio(cfg.hidden_size, cfg.intermediate_size),
                  in_channels=cfg.num_channels, qkv_bias=cfg.qkv_bias, eps=cfg.layer_norm_eps)
    if cfg.hidden_act in TANH_GELUS:
        for block in model.encoder.blocks:
            block.mlp.act = nn.GELU(approximate="tanh")
    model = placed_like(model, hf_model)
    copy_from_hf(hf_model, model, vivit_table(cfg))
    return model
