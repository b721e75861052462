"""Weight porting between vtlib's TimeSformer and Hugging Face ``TimesformerForVideoClassification``.

Same weights, same clip -> same logits, in both directions (tested over several configs). HF's
TimeSformer is a port of the official code, so this also checks vtlib against the reference.
Hugging Face has three of the five schemes: attention "divided" <-> attention_type
"divided_space_time", "joint" <-> "joint_space_time", "space" <-> "space_only".

vtlib ``TimeSformer``                         transformers (``timesformer.`` prefix omitted)
------------------------------------------    -----------------------------------------------------
input (B, C, T, H, W)                         pixel_values (B, T, C, H, W)   (``vtlib.hf.to_hf_video``)
embed.proj  Conv2d (D, C, p, p)               embeddings.patch_embeddings.projection (same)
cls_token, space_pos (1, N+1, D)              embeddings.cls_token, embeddings.position_embeddings
time_pos (1, T, D)                            embeddings.time_embeddings (not in "space_only")
blocks[i].mixers["time"].norm / attn.qkv      encoder.layer[i].temporal_layernorm /
  / attn.proj / fc                              temporal_attention.attention.qkv / .output.dense /
                                                temporal_dense
blocks[i].norm1 / attn.qkv / attn.proj        encoder.layer[i].layernorm_before / attention.attention.qkv
  (spatial in "divided")                        / attention.output.dense  (qkv packed [q; k; v] like ours)
blocks[i].norm2, mlp.fc1, mlp.fc2             encoder.layer[i].layernorm_after, intermediate.dense,
                                                output.dense
norm, head                                    layernorm, classifier

Things to know:

* **Token order.** HF lays the patches out (h w t) (the reference's layout); vtlib keeps the course's
  (t h w). Attention does not care about the order of its keys, so the logits agree; only the
  ``last_hidden_state`` rows are permuted.
* **Space only.** HF's ``space_only`` model runs every frame as its own image and returns one row
  of logits **per frame**, (B*T, K), without averaging. ``HFTimesformerClassifier`` averages them
  over frames, which equals vtlib's average of the per-frame CLS features (the head is linear).
  (The official code averages over frames *before* its final LayerNorm; vtlib and this wrapper
  average after it.)
* **Init.** HF draws ``temporal_dense`` from a truncated normal; the official code (and vtlib)
  zero it. Porting copies whatever the weights are, so a ported model computes the same either way.
* **GELU and eps.** The config built here uses ``hidden_act="gelu"`` (exact, = ``torch.nn.GELU``)
  and the model's LayerNorm eps. HF needs square frames (``image_size`` is one int in its layers)
  and exactly ``num_frames`` frames. Nothing is downloaded: configs are built locally.
* **Dropout / drop path.** vtlib's TimeSformer has no dropout; HF's stochastic depth also drops per
  grouped sequence. Only inference is ported (the models are returned in eval mode).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from vtlib.errors import bad_arg, check_float
from vtlib.hf import HFVideoClassifier, _mlp_ratio, _transformers, to_hf_video
from vtlib.models.timesformer import TimeSformer

HF_ATTENTION = {"divided": "divided_space_time", "joint": "joint_space_time", "space": "space_only"}
VTLIB_ATTENTION = {v: k for k, v in HF_ATTENTION.items()}


def _check_portable(model: TimeSformer) -> None:
    if not isinstance(model, TimeSformer):
        raise bad_arg("model", "a vtlib.models.timesformer.TimeSformer", type(model).__name__,
                      "build it with TimeSformer(...)")
    if model.attention not in HF_ATTENTION:
        raise bad_arg("model.attention", f"one of {list(HF_ATTENTION)} (the schemes Hugging Face implements)",
                      repr(model.attention), "local_global and axial exist only in vtlib; compare them "
                      "against masked joint attention instead (vtlib.models.timesformer.attention_masks)")
    if model.cls_in_time:
        raise bad_arg("model.cls_in_time", "False (HF follows the reference code: no CLS in temporal attention)",
                      True, "build the model with cls_in_time=False to port it")
    T, H, W = model.video_shape
    if H != W:
        raise bad_arg("model.video_shape", "square frames (HF TimeSformer takes one int image_size)",
                      model.video_shape, "resize the clips to H == W")
    if H % model.embed.patch:
        raise bad_arg("model.video_shape", f"H divisible by patch={model.embed.patch}", H, "change patch")
    for i, block in enumerate(model.blocks):
        act = block.mlp.act
        if type(act) is not nn.GELU or act.approximate != "none":
            raise bad_arg(f"model.blocks[{i}].mlp.act", "nn.GELU() (exact)", repr(act),
                          "only the exact GELU is ported")


def hf_timesformer_config(model: TimeSformer, **overrides):
    """A ``transformers.TimesformerConfig`` describing the same network as ``model`` (built locally)."""
    _check_portable(model)
    T, H, _ = model.video_shape
    blk = model.blocks[0]
    kwargs = dict(image_size=H, patch_size=model.embed.patch, num_channels=model.embed.in_channels,
                  num_frames=T, hidden_size=model.dim, num_hidden_layers=len(model.blocks),
                  num_attention_heads=model.heads, intermediate_size=blk.mlp.fc1.out_features,
                  hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  layer_norm_eps=model.norm.eps, qkv_bias=blk.attn.qkv.bias is not None,
                  attention_type=HF_ATTENTION[model.attention], num_labels=model.head.out_features)
    kwargs.update(overrides)
    return _transformers().TimesformerConfig(**kwargs)


def _hf_parts(hf_model):
    tf = _transformers()
    if not isinstance(hf_model, tf.TimesformerForVideoClassification):
        raise bad_arg("hf_model", "a transformers.TimesformerForVideoClassification", type(hf_model).__name__,
                      "build one with TimesformerForVideoClassification(config) or timesformer_to_hf(model)")
    core = hf_model.timesformer
    if not hasattr(core.encoder, "layer") or not hasattr(core.encoder.layer[0], "layernorm_before"):
        raise bad_arg("hf_model", "the module layout of transformers 5.23 (timesformer.encoder.layer[i])",
                      f"transformers {tf.__version__}", "install the pinned version: pip install 'transformers==5.23.0'")
    if not isinstance(hf_model.classifier, nn.Linear):
        raise bad_arg("hf_model.classifier", "a Linear head (config.num_labels >= 1)",
                      type(hf_model.classifier).__name__, "build the config with num_labels >= 1")
    return core.embeddings, core.encoder.layer, core.layernorm, hf_model.classifier


@torch.no_grad()
def _copy(dst: nn.Module, src: nn.Module) -> None:
    """Copy weight and bias of a Linear, Conv2d or LayerNorm."""
    dst.weight.copy_(src.weight)
    if dst.bias is not None:
        dst.bias.copy_(src.bias)


def _pairs(model: TimeSformer, hf_model) -> list[tuple[nn.Module, nn.Module]]:
    """(vtlib module, HF module) pairs with identical weight layouts, in a fixed order."""
    emb, layers, norm, classifier = _hf_parts(hf_model)
    pairs = [(model.embed.proj, emb.patch_embeddings.projection)]
    for ours, theirs in zip(model.blocks, layers):
        if model.attention == "divided":
            t = ours.mixers["time"]
            pairs += [(t.norm, theirs.temporal_layernorm), (t.attn.qkv, theirs.temporal_attention.attention.qkv),
                      (t.attn.proj, theirs.temporal_attention.output.dense), (t.fc, theirs.temporal_dense)]
        pairs += [(ours.norm1, theirs.layernorm_before), (ours.attn.qkv, theirs.attention.attention.qkv),
                  (ours.attn.proj, theirs.attention.output.dense), (ours.norm2, theirs.layernorm_after),
                  (ours.mlp.fc1, theirs.intermediate.dense), (ours.mlp.fc2, theirs.output.dense)]
    return pairs + [(model.norm, norm), (model.head, classifier)]


def _embedding_pairs(model: TimeSformer, hf) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(vtlib tensor, HF tensor) for the CLS token, the spatial and (if any) the time embedding."""
    emb = hf.timesformer.embeddings
    pairs = [(model.cls_token, emb.cls_token), (model.space_pos, emb.position_embeddings)]
    if model.time_pos is not None:
        pairs.append((model.time_pos, emb.time_embeddings))
    return pairs


@torch.no_grad()
def timesformer_to_hf(model: TimeSformer):
    """A new ``TimesformerForVideoClassification`` with ``model``'s weights, on its device, in eval mode.

    ``HFTimesformerClassifier(hf)(x)`` equals ``model(x)`` (eval mode) for "divided", "joint" and "space".
    """
    cfg = hf_timesformer_config(model)
    ref = model.head.weight
    hf = _transformers().TimesformerForVideoClassification(cfg).to(device=ref.device, dtype=ref.dtype).eval()
    for ours, theirs in _embedding_pairs(model, hf):
        theirs.copy_(ours)
    for ours, theirs in _pairs(model, hf):
        _copy(theirs, ours)
    return hf


@torch.no_grad()
def timesformer_from_hf(hf_model) -> TimeSformer:
    """A new vtlib ``TimeSformer`` with the weights of a ``TimesformerForVideoClassification``.

    ``model(x)`` equals ``HFTimesformerClassifier(hf_model)(x)`` in eval mode. ``hidden_act`` must be
    "gelu" (exact). Returned in eval mode, on the HF model's device and dtype.
    """
    _hf_parts(hf_model)
    cfg = hf_model.config
    if cfg.hidden_act != "gelu":
        raise bad_arg("hf_model.config.hidden_act", "'gelu' (exact, = torch.nn.GELU)", repr(cfg.hidden_act),
                      "build the config with hidden_act='gelu'")
    if cfg.attention_type not in VTLIB_ATTENTION:
        raise bad_arg("hf_model.config.attention_type", f"one of {list(VTLIB_ATTENTION)}", repr(cfg.attention_type),
                      "use a supported attention type")
    for name in ("image_size", "patch_size"):
        if not isinstance(getattr(cfg, name), int):
            raise bad_arg(f"hf_model.config.{name}", "one int (square frames and patches)",
                          repr(getattr(cfg, name)), f"set {name} to an int")
    model = TimeSformer(num_classes=cfg.num_labels, video_shape=(cfg.num_frames, cfg.image_size, cfg.image_size),
                        patch=cfg.patch_size, dim=cfg.hidden_size, depth=cfg.num_hidden_layers,
                        heads=cfg.num_attention_heads, mlp_ratio=_mlp_ratio(cfg.hidden_size, cfg.intermediate_size),
                        in_channels=cfg.num_channels, attention=VTLIB_ATTENTION[cfg.attention_type],
                        qkv_bias=cfg.qkv_bias, eps=cfg.layer_norm_eps)
    ref = hf_model.classifier.weight
    model = model.to(device=ref.device, dtype=ref.dtype).eval()
    for ours, theirs in _embedding_pairs(model, hf_model):
        ours.copy_(theirs)
    for ours, theirs in _pairs(model, hf_model):
        _copy(ours, theirs)
    return model


class HFTimesformerClassifier(HFVideoClassifier):
    """An HF TimeSformer taking vtlib clips: (B, C, T, H, W) -> logits (B, K).

    For ``attention_type="space_only"`` HF returns (B*T, K), one row per frame; they are averaged.
    """

    def forward(self, x: Tensor) -> Tensor:
        pixel_values = to_hf_video(x)
        check_float("x", x)
        logits = self.hf(pixel_values=pixel_values).logits
        if logits.shape[0] != x.shape[0]:                  # space_only: (B*T, K) -> mean over frames
            logits = logits.reshape(x.shape[0], -1, logits.shape[-1]).mean(dim=1)
        return logits
