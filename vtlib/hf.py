"""Weight porting between vtlib models and Hugging Face ``transformers`` (ViViT Model 1 so far).

A port is only believable if the two models then compute the same function, so every pair of
functions here is tested both ways: same weights, same clip -> same logits (``assert_close``).

vtlib ``ViViT``                          transformers ``VivitForVideoClassification``
-------------------------------------    ---------------------------------------------------
input (B, C, T, H, W)                    pixel_values (B, T, C, H, W)   (``to_hf_video``)
embed.proj  Conv3d (D, C, t, p, p)       vivit.embeddings.patch_embeddings.projection (same)
pool.token  (1, 1, D), no position       vivit.embeddings.cls_token (1, 1, D)
pos.pos     (1, N, D), patches only      vivit.embeddings.position_embeddings (1, 1 + N, D)
blocks[i].norm1 / norm2                  vivit.layers[i].layernorm_before / layernorm_after
blocks[i].attn.qkv  Linear(D, 3D)        vivit.layers[i].attention.q_proj, k_proj, v_proj
blocks[i].attn.proj                      vivit.layers[i].attention.o_proj
blocks[i].mlp.fc1 / fc2, nn.GELU()       vivit.layers[i].mlp.fc1 / fc2, ``hidden_act``
norm, head                               vivit.layernorm, classifier

Three differences need care:

* **The CLS position.** HF adds a position vector to the CLS token too: its first token is
  ``cls + pos[0]``. vtlib's CLS has no position (``ClsToken`` is prepended *after* the position
  code), so its first token is just ``cls``. Both are constants, so we fold HF's pair into one
  vector: ``our_cls = hf_cls + hf_pos[:, 0]``, and back: ``hf_cls = our_cls``, ``hf_pos[:, 0] = 0``.
  The network sees the same first token either way; only the bookkeeping differs.
* **The GELU.** HF ViViT defaults to ``hidden_act="gelu_fast"`` (the tanh approximation); vtlib's
  MLP uses the exact ``nn.GELU()``. The configs built here set ``hidden_act="gelu"`` (exact GELU,
  the same function as ``torch.nn.GELU``). ``vivit_from_hf`` also accepts the tanh variants and
  then switches the ported model's GELUs to ``nn.GELU(approximate="tanh")``.
* **The packed projection.** vtlib computes q, k and v with one Linear(D, 3D), rows stacked
  [q; k; v], each split into heads of D / heads contiguous features; HF uses three Linear(D, D)
  with the same head split. So ``qkv.weight`` is exactly ``cat([q.weight, k.weight, v.weight])``.

``layer_norm_eps`` is copied from the model (vtlib's default 1e-6 is also HF's). Written against
transformers 5.23 (the version pinned in pyproject.toml); older versions name the layers
differently (``encoder.layer[i].attention.attention.query``...) and are refused with a message.
Nothing is downloaded: configs are built locally from the vtlib model.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from vtlib.errors import bad_arg, check_float, check_rank
from vtlib.models.vivit import ViViT
from vtlib.pooling import ClsToken
from vtlib.position import LearnedPosition
from vtlib.tokens import TubeletEmbed

# Names of transformers' activations that are the tanh approximation of GELU (equal up to rounding).
TANH_GELUS = ("gelu_fast", "gelu_new", "gelu_pytorch_tanh")


def _transformers():
    try:
        import transformers
    except ImportError:  # pragma: no cover - transformers is a test dependency
        raise bad_arg("transformers", "the transformers package (pinned 5.23.0)", "not installed",
                      "pip install 'transformers==5.23.0' (or pip install -e '.[test]')") from None
    return transformers


def to_hf_video(x: Tensor) -> Tensor:
    """vtlib clips (B, C, T, H, W) -> HF ``pixel_values`` (B, T, C, H, W) (a view, no copy)."""
    check_rank("x", x, 5, "B C T H W")
    return x.transpose(1, 2)


def _check_portable(model: ViViT) -> str:
    """Raise unless ``model`` has the parts HF ViViT has; return the matching ``hidden_act``."""
    if not isinstance(model, ViViT):
        raise bad_arg("model", "a vtlib.models.vivit.ViViT", type(model).__name__,
                      "build it with ViViT(...) (Model 1)")
    parts = (("embed", TubeletEmbed, 'embed="tubelet"'), ("pos", LearnedPosition, 'position="learned"'),
             ("pool", ClsToken, 'pool="cls"'))
    for name, cls, fix in parts:
        module = getattr(model, name)
        if type(module) is not cls:
            raise bad_arg(f"model.{name}", f"a {cls.__name__} (HF ViViT has exactly this part)",
                          type(module).__name__, f"build the ViViT with {fix} to port it")
    acts = {getattr(b.mlp.act, "approximate", None) if type(b.mlp.act) is nn.GELU else type(b.mlp.act).__name__
            for b in model.encoder.blocks}
    if acts == {"none"}:
        return "gelu"
    if acts == {"tanh"}:
        return "gelu_pytorch_tanh"
    raise bad_arg("model.encoder.blocks[i].mlp.act", "nn.GELU() in every block (or the tanh GELU in all)",
                  sorted(map(str, acts)), "use one GELU variant in every block")


def hf_vivit_config(model: ViViT, attn_implementation: str = "sdpa", **overrides):
    """A ``transformers.VivitConfig`` describing the same network as ``model`` (built locally).

    Sets image_size = [H, W] and num_frames = T from ``model.video_shape`` (HF refuses other sizes),
    tubelet_size = (t, p, p), num_channels, hidden_size, depth, heads, intermediate_size = the MLP
    width, qkv_bias, layer_norm_eps, num_labels, and ``hidden_act="gelu"`` (exact GELU, as
    ``torch.nn.GELU``; HF's default ``gelu_fast`` is the tanh approximation). Dropouts are 0, as in
    vtlib's ViViT. ``overrides`` are passed on to ``VivitConfig``.
    """
    hidden_act = _check_portable(model)
    blk = model.encoder.blocks[0]
    T, H, W = model.video_shape
    kwargs = dict(
        image_size=[H, W], num_frames=T, tubelet_size=list(model.embed.tubelet),
        num_channels=model.embed.in_channels, hidden_size=model.embed.dim,
        num_hidden_layers=len(model.encoder.blocks), num_attention_heads=blk.attn.heads,
        intermediate_size=blk.mlp.fc1.out_features, hidden_act=hidden_act,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=model.norm.eps, qkv_bias=blk.attn.qkv.bias is not None,
        num_labels=model.head.out_features, attn_implementation=attn_implementation,
    )
    kwargs.update(overrides)
    return _transformers().VivitConfig(**kwargs)


def _hf_parts(hf_model):
    """(embeddings, layers, final norm, classifier) of a VivitForVideoClassification, checked."""
    tf = _transformers()
    if not isinstance(hf_model, tf.VivitForVideoClassification):
        raise bad_arg("hf_model", "a transformers.VivitForVideoClassification", type(hf_model).__name__,
                      "build one with VivitForVideoClassification(config) or vivit_to_hf(model)")
    core = hf_model.vivit
    if not hasattr(core, "layers") or not hasattr(core.layers[0].attention, "q_proj"):
        raise bad_arg("hf_model", "the module layout of transformers 5.23 (vivit.layers[i].attention.q_proj)",
                      f"transformers {tf.__version__}", "install the pinned version: pip install 'transformers==5.23.0'")
    if not isinstance(hf_model.classifier, nn.Linear):
        raise bad_arg("hf_model.classifier", "a Linear head (config.num_labels >= 1)",
                      type(hf_model.classifier).__name__, "build the config with num_labels >= 1")
    return core.embeddings, core.layers, core.layernorm, hf_model.classifier


@torch.no_grad()
def _copy_params(dst: nn.Module, src: nn.Module) -> None:
    """Copy weight and bias of a Linear or LayerNorm."""
    dst.weight.copy_(src.weight)
    if dst.bias is not None:
        dst.bias.copy_(src.bias)


@torch.no_grad()
def vivit_to_hf(model: ViViT, attn_implementation: str = "sdpa"):
    """A new ``transformers.VivitForVideoClassification`` with ``model``'s weights.

    ``hf(pixel_values=to_hf_video(x)).logits`` equals ``model(x)`` in eval mode. The CLS
    position is folded as explained in the module docstring: HF gets ``cls_token = our CLS`` and
    ``position_embeddings[:, 0] = 0``. The HF model is on ``model``'s device and dtype, in eval mode
    (vtlib's stochastic depth, if any, has no HF counterpart: only inference is equal).
    """
    cfg = hf_vivit_config(model, attn_implementation)
    ref = model.head.weight
    hf = _transformers().VivitForVideoClassification(cfg).to(device=ref.device, dtype=ref.dtype).eval()
    emb, layers, norm, classifier = _hf_parts(hf)
    emb.patch_embeddings.projection.weight.copy_(model.embed.proj.weight)
    emb.patch_embeddings.projection.bias.copy_(model.embed.proj.bias)
    emb.cls_token.copy_(model.pool.token)
    emb.position_embeddings[:, 0].zero_()                  # the CLS position lives in cls_token
    emb.position_embeddings[:, 1:].copy_(model.pos.pos)
    for ours, theirs in zip(model.encoder.blocks, layers):
        q, k, v = ours.attn.qkv.weight.chunk(3, dim=0)     # rows [q; k; v], each (D, D)
        biases = ours.attn.qkv.bias.chunk(3) if ours.attn.qkv.bias is not None else (None,) * 3
        for proj, w, b in zip((theirs.attention.q_proj, theirs.attention.k_proj, theirs.attention.v_proj),
                              (q, k, v), biases):
            proj.weight.copy_(w)
            if b is not None:
                proj.bias.copy_(b)
        _copy_params(theirs.attention.o_proj, ours.attn.proj)
        _copy_params(theirs.layernorm_before, ours.norm1)
        _copy_params(theirs.layernorm_after, ours.norm2)
        _copy_params(theirs.mlp.fc1, ours.mlp.fc1)
        _copy_params(theirs.mlp.fc2, ours.mlp.fc2)
    _copy_params(norm, model.norm)
    _copy_params(classifier, model.head)
    return hf


def _mlp_ratio(dim: int, hidden: int) -> float:
    """An mlp_ratio with int(dim * ratio) == hidden exactly (float rounding can land just below)."""
    ratio = hidden / dim
    return ratio if int(dim * ratio) == hidden else (hidden + 0.5) / dim


@torch.no_grad()
def vivit_from_hf(hf_model) -> ViViT:
    """A new vtlib ``ViViT`` (Model 1) with the weights of a ``VivitForVideoClassification``.

    ``model(x)`` equals ``hf_model(pixel_values=to_hf_video(x)).logits`` in eval mode. HF's CLS and
    its position are folded into one vector: ``our_cls = hf_cls + hf_pos[:, 0]`` (module
    docstring). ``hidden_act`` must be "gelu" (exact) or a tanh GELU (``TANH_GELUS``; the ported
    model then uses ``nn.GELU(approximate="tanh")``, equal up to float rounding). HF's dropouts
    have no vtlib counterpart here: only inference is ported. Returned in eval mode, on the HF
    model's device and dtype.
    """
    emb, layers, norm, classifier = _hf_parts(hf_model)
    cfg = hf_model.config
    if cfg.hidden_act not in ("gelu",) + TANH_GELUS:
        raise bad_arg("hf_model.config.hidden_act", f"'gelu' or one of {list(TANH_GELUS)}",
                      repr(cfg.hidden_act), "vtlib's MLP uses GELU; port a GELU model")
    size = cfg.image_size
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    dim = cfg.hidden_size
    model = ViViT(num_classes=cfg.num_labels, video_shape=(cfg.num_frames, H, W),
                  tubelet=tuple(cfg.tubelet_size), dim=dim, depth=cfg.num_hidden_layers,
                  heads=cfg.num_attention_heads, mlp_ratio=_mlp_ratio(dim, cfg.intermediate_size),
                  in_channels=cfg.num_channels, qkv_bias=cfg.qkv_bias, eps=cfg.layer_norm_eps)
    ref = classifier.weight
    model = model.to(device=ref.device, dtype=ref.dtype).eval()
    model.embed.proj.weight.copy_(emb.patch_embeddings.projection.weight)
    model.embed.proj.bias.copy_(emb.patch_embeddings.projection.bias)
    # Fold HF's CLS position into our CLS token: HF's first token is cls + pos[0], ours is cls.
    model.pool.token.copy_(emb.cls_token + emb.position_embeddings[:, :1])
    model.pos.pos.copy_(emb.position_embeddings[:, 1:])
    for ours, theirs in zip(model.encoder.blocks, layers):
        a = theirs.attention
        ours.attn.qkv.weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        if ours.attn.qkv.bias is not None:
            ours.attn.qkv.bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        _copy_params(ours.attn.proj, a.o_proj)
        _copy_params(ours.norm1, theirs.layernorm_before)
        _copy_params(ours.norm2, theirs.layernorm_after)
        _copy_params(ours.mlp.fc1, theirs.mlp.fc1)
        _copy_params(ours.mlp.fc2, theirs.mlp.fc2)
        if cfg.hidden_act in TANH_GELUS:
            ours.mlp.act = nn.GELU(approximate="tanh")
    _copy_params(model.norm, norm)
    _copy_params(model.head, classifier)
    return model


class HFVideoClassifier(nn.Module):
    """Wrap an HF video classifier so it takes vtlib clips: (B, C, T, H, W) -> logits (B, K).

    Lets the same training loop (``vtlib.train.fit``), FLOP meter and benchmark drive both
    implementations. The wrapped model is ``.hf``.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        if not isinstance(hf_model, nn.Module):
            raise bad_arg("hf_model", "a transformers model (nn.Module)", type(hf_model).__name__,
                          "pass e.g. vivit_to_hf(model)")
        self.hf = hf_model

    def forward(self, x: Tensor) -> Tensor:
        pixel_values = to_hf_video(x)                      # checks the rank too
        check_float("x", x)
        return self.hf(pixel_values=pixel_values).logits
