"""vtlib's TimeSformer <-> Hugging Face ``TimesformerForVideoClassification``: same weights, same logits.

HF's TimeSformer is a port of the official code, so this also checks vtlib against the reference.
Hugging Face has three of the five schemes: attention "divided" <-> attention_type
"divided_space_time", "joint" <-> "joint_space_time", "space" <-> "space_only".

vtlib ``TimeSformer``                         transformers (``timesformer.`` prefix omitted)
------------------------------------------    -----------------------------------------------------
input (B, C, T, H, W)                         pixel_values (B, T, C, H, W)   (``to_hf_video``)
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

Every pair is a plain copy (``timesformer_table``). Things to know:

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

from torch import Tensor

from vtlib.errors import bad_arg
from vtlib.hf.common import (
    HFVideoClassifier,
    Pair,
    build_hf,
    check_hf,
    check_hidden_act,
    check_model,
    copy_from_hf,
    copy_to_hf,
    hidden_act,
    mlp_ratio,
    pair,
    placed_like,
    same,
    transformers_module,
)
from vtlib.models.timesformer import TimeSformer

HF_ATTENTION = {"divided": "divided_space_time", "joint": "joint_space_time", "space": "space_only"}
VTLIB_ATTENTION = {v: k for k, v in HF_ATTENTION.items()}


def _check_portable(model: TimeSformer) -> None:
    check_model(model, TimeSformer, "build it with TimeSformer(...)")
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
    hidden_act(model.blocks, name="model.blocks")


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
    return transformers_module().TimesformerConfig(**kwargs)


def timesformer_table(config) -> list[Pair]:
    """The (vtlib, HF) parameter pairs of a TimeSformer / ``TimesformerForVideoClassification`` with ``config``."""
    e, bias = "timesformer.embeddings.", config.qkv_bias
    table = [*same("embed.proj", e + "patch_embeddings.projection"),
             pair("cls_token", e + "cls_token"), pair("space_pos", e + "position_embeddings")]
    if config.attention_type != "space_only":
        table.append(pair("time_pos", e + "time_embeddings"))
    for i in range(config.num_hidden_layers):
        o, t = f"blocks.{i}.", f"timesformer.encoder.layer.{i}."
        if config.attention_type == "divided_space_time":
            m, a = o + "mixers.time.", t + "temporal_attention."
            table += [*same(m + "norm", t + "temporal_layernorm"),
                      *same(m + "attn.qkv", a + "attention.qkv", bias=bias),
                      *same(m + "attn.proj", a + "output.dense"),
                      *same(m + "fc", t + "temporal_dense")]
        table += [*same(o + "norm1", t + "layernorm_before"),
                  *same(o + "attn.qkv", t + "attention.attention.qkv", bias=bias),
                  *same(o + "attn.proj", t + "attention.output.dense"),
                  *same(o + "norm2", t + "layernorm_after"),
                  *same(o + "mlp.fc1", t + "intermediate.dense"), *same(o + "mlp.fc2", t + "output.dense")]
    return table + [*same("norm", "timesformer.layernorm"), *same("head", "classifier")]


def timesformer_to_hf(model: TimeSformer):
    """A new ``TimesformerForVideoClassification`` with ``model``'s weights, on its device, in eval mode.

    ``HFTimesformerClassifier(hf)(x)`` equals ``model(x)`` (eval mode) for "divided", "joint" and "space".
    """
    cfg = hf_timesformer_config(model)
    hf = build_hf("TimesformerForVideoClassification", cfg, like=model)
    copy_to_hf(model, hf, timesformer_table(cfg))
    return hf


def timesformer_from_hf(hf_model) -> TimeSformer:
    """A new vtlib ``TimeSformer`` with the weights of a ``TimesformerForVideoClassification``.

    ``model(x)`` equals ``HFTimesformerClassifier(hf_model)(x)`` in eval mode. ``hidden_act`` must be
    "gelu" (exact). Returned in eval mode, on the HF model's device and dtype.
    """
    check_hf(hf_model, "TimesformerForVideoClassification")
    cfg = hf_model.config
    check_hidden_act(cfg)
    if cfg.attention_type not in VTLIB_ATTENTION:
        raise bad_arg("hf_model.config.attention_type", f"one of {list(VTLIB_ATTENTION)}", repr(cfg.attention_type),
                      "use a supported attention type")
    for name in ("image_size", "patch_size"):
        if not isinstance(getattr(cfg, name), int):
            raise bad_arg(f"hf_model.config.{name}", "one int (square frames and patches)",
                          repr(getattr(cfg, name)), f"set {name} to an int")
    model = TimeSformer(num_classes=cfg.num_labels, video_shape=(cfg.num_frames, cfg.image_size, cfg.image_size),
                        patch=cfg.patch_size, dim=cfg.hidden_size, depth=cfg.num_hidden_layers,
                        heads=cfg.num_attention_heads, mlp_ratio=mlp_ratio(cfg.hidden_size, cfg.intermediate_size),
                        in_channels=cfg.num_channels, attention=VTLIB_ATTENTION[cfg.attention_type],
                        qkv_bias=cfg.qkv_bias, eps=cfg.layer_norm_eps)
    model = placed_like(model, hf_model)
    copy_from_hf(hf_model, model, timesformer_table(cfg))
    return model


class HFTimesformerClassifier(HFVideoClassifier):
    """An HF ``TimesformerForVideoClassification`` taking vtlib clips: (B, C, T, H, W) -> logits (B, K).

    For ``attention_type="space_only"`` HF returns (B*T, K), one row per frame; they are averaged.
    """
    hf_class = "TimesformerForVideoClassification"

    def pool_logits(self, logits: Tensor, *, batch: int) -> Tensor:
        """(B, K) as is; space_only's (B*T, K) -> mean over the T frames -> (B, K)."""
        if logits.shape[0] != batch:
            logits = logits.reshape(batch, -1, logits.shape[-1]).mean(dim=1)
        return logits
