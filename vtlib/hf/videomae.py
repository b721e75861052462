"""vtlib's VideoMAE <-> Hugging Face ``transformers`` VideoMAE (notebook 08).

With the same weights, clip and mask, ``VideoMAE(x, mask)`` and ``VideoMAEForPreTraining(pixel_values,
bool_masked_pos)`` give the same loss and predictions, and the encoders the same visible-token outputs
(tests/test_hf_videomae.py). Three pairs of classes, one table (``videomae_table``, ``kind``):
``VideoMAEEncoder`` <-> ``VideoMAEModel`` ("encoder"), ``VideoMAE`` <-> ``VideoMAEForPreTraining``
("pretraining"), ``VideoMAEClassifier`` <-> ``VideoMAEForVideoClassification`` ("classifier").

vtlib                                   transformers (5.23)
-------------------------------------   ------------------------------------------------------
x (B, C, T, H, W)                       pixel_values (B, T, C, H, W)       (``to_hf_video``)
mask (B, N) bool, True = masked         bool_masked_pos (B, N), same convention
encoder.embed.proj  Conv3d              videomae.embeddings.patch_embeddings.projection
encoder.pos  sincos_1d(N, D) buffer     videomae.embeddings.position_embeddings (fixed, not copied)
encoder.transformer.blocks[i]           videomae.encoder.layer[i]
  norm1 / norm2                           layernorm_before / layernorm_after
  attn.qkv  Linear(D, 3D), [q; k; v]      attention.attention.query / key / value (key: no bias)
  attn.proj                               attention.output.dense
  mlp.fc1 / fc2 (exact nn.GELU)           intermediate.dense / output.dense (hidden_act="gelu")
encoder.norm (``final_norm=True``)      videomae.layernorm (``use_mean_pooling=False``)
decoder.proj  Linear, no bias           encoder_to_decoder
decoder.mask_token                      mask_token
decoder.pos  sincos_1d(N, Dd) buffer    position_embeddings (fixed, not copied)
decoder.transformer.blocks[i]           decoder.decoder_layers[i]
decoder.norm / decoder.head             decoder.norm / decoder.head  (rows reordered when C > 1)
VideoMAEClassifier.fc_norm / head       VideoMAEForVideoClassification.fc_norm / classifier

Three details:

* **The k bias** (``qv_bias_split``). HF has q and v biases only; softmax cancels a k bias. To HF
  vtlib's k bias is dropped (the outputs still agree); from HF it is zero.
* **Prediction layout** (``channel_rows``). vtlib flattens a tubelet channel-major, (c t p1 p2), as
  ``patchify``; HF flattens (t p1 p2 c). For C = 1 they coincide; otherwise the head's rows are permuted.
* **Targets.** Both normalise each tubelet per channel with its mean and unbiased std (+ 1e-6).
  HF refuses ``norm_pix_loss=False`` for C != 3, and for C = 3 it first undoes the ImageNet
  normalisation (an affine map per channel, which per-tubelet normalisation cancels up to the eps),
  so the losses agree for C = 1 exactly and for C = 3 to about 1e-5.

Nothing is downloaded: configs are built locally from the vtlib model.
"""
from __future__ import annotations

from vtlib.block import mlp_hidden_dim
from vtlib.errors import bad_arg, check_choice
from vtlib.hf.common import (
    HFVideoClassifier,
    Pair,
    build_hf,
    channel_rows,
    check_hf,
    check_hidden_act,
    check_model,
    copy_from_hf,
    copy_to_hf,
    hidden_act,
    mlp_ratio,
    pair,
    placed_like,
    qkv_split,
    qv_bias_split,
    same,
    transformers_module,
)
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier, VideoMAEEncoder

KINDS = ("encoder", "pretraining", "classifier")


def _encoder_of(model) -> VideoMAEEncoder:
    if isinstance(model, (VideoMAE, VideoMAEClassifier)):
        return model.encoder
    if isinstance(model, VideoMAEEncoder):
        return model
    raise bad_arg("model", "a vtlib VideoMAE, VideoMAEEncoder or VideoMAEClassifier", type(model).__name__,
                  "build one from vtlib.models.videomae")


def videomae_config(model, **overrides):
    """A ``VideoMAEConfig`` describing ``model`` (a VideoMAE, its encoder, or a VideoMAEClassifier)."""
    enc = _encoder_of(model)
    h = enc.hparams
    t, p1, p2 = h["tubelet"]
    T, H, W = h["video_shape"]
    if p1 != p2:
        raise bad_arg("model", "square patches, tubelet (t, p, p) (HF has one patch_size)", h["tubelet"],
                      "build the model with tubelet=(t, p, p)")
    hidden_act(enc.transformer.blocks, name="model.encoder.transformer.blocks")
    kw = dict(image_size=H if H == W else (H, W), patch_size=p1, num_channels=h["in_channels"], num_frames=T,
              tubelet_size=t, hidden_size=h["dim"], num_hidden_layers=h["depth"], num_attention_heads=h["heads"],
              intermediate_size=mlp_hidden_dim(h["dim"], h["mlp_ratio"]), hidden_act="gelu",
              layer_norm_eps=h["eps"], qv_bias=h["qkv_bias"], use_mean_pooling=not h["final_norm"],
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if isinstance(model, VideoMAE):
        dec = model.decoder
        dblocks = list(dec.transformer.blocks)
        hidden_act(dblocks, name="model.decoder.transformer.blocks")
        if dblocks[0].norm1.eps != h["eps"]:
            raise bad_arg("model", "the same LayerNorm eps in encoder and decoder blocks (HF shares one)",
                          f"{h['eps']} and {dblocks[0].norm1.eps}", "build VideoMAE with one eps")
        kw.update(decoder_hidden_size=dec.dim, decoder_num_hidden_layers=len(dblocks),
                  decoder_num_attention_heads=dblocks[0].attn.heads,
                  decoder_intermediate_size=dblocks[0].mlp.fc1.out_features, norm_pix_loss=model.norm_pix_loss)
    if isinstance(model, VideoMAEClassifier):
        kw.update(num_labels=model.head.out_features)
    kw.update(overrides)
    return transformers_module().VideoMAEConfig(**kw)


# ----------------------------------------------------------------------------- the table
def _block_pairs(ours: str, theirs: str, bias: bool) -> list[Pair]:
    """A vtlib ``Block`` <-> an HF ``VideoMAELayer`` (module prefixes ending in '.')."""
    o, t, a = ours, theirs, theirs + "attention.attention."
    table = qkv_split(o + "attn.qkv", a + "query", a + "key", a + "value", bias=False)
    if bias:
        table.append(qv_bias_split(o + "attn.qkv", a + "query", a + "value"))
    return table + [*same(o + "attn.proj", t + "attention.output.dense"),
                    *same(o + "norm1", t + "layernorm_before"), *same(o + "norm2", t + "layernorm_after"),
                    *same(o + "mlp.fc1", t + "intermediate.dense"), *same(o + "mlp.fc2", t + "output.dense")]


def videomae_table(config, *, kind: str) -> list[Pair]:
    """The (vtlib, HF) parameter pairs for ``config``; ``kind`` is one of ``KINDS`` (module docstring)."""
    check_choice("kind", kind, KINDS)
    o, t = ("", "") if kind == "encoder" else ("encoder.", "videomae.")
    table = same(o + "embed.proj", t + "embeddings.patch_embeddings.projection")
    for i in range(config.num_hidden_layers):
        table += _block_pairs(f"{o}transformer.blocks.{i}.", f"{t}encoder.layer.{i}.", config.qv_bias)
    if not config.use_mean_pooling:
        table += same(o + "norm", t + "layernorm")
    if kind == "pretraining":
        table += [pair("decoder.mask_token", "mask_token"), *same("decoder.proj", "encoder_to_decoder", bias=False)]
        for i in range(config.decoder_num_hidden_layers):
            table += _block_pairs(f"decoder.transformer.blocks.{i}.", f"decoder.decoder_layers.{i}.", config.qv_bias)
        table += [*same("decoder.norm", "decoder.norm"),
                  *channel_rows("decoder.head", "decoder.head", config.num_channels)]
    if kind == "classifier":
        table += [*same("fc_norm", "fc_norm"), *same("head", "classifier")]
    return table


def _encoder_kwargs(config) -> dict:
    size = config.image_size
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    p = config.patch_size
    if not isinstance(p, int):
        raise bad_arg("hf_model", "a config with one int patch_size", repr(p), "use a square int patch_size")
    check_hidden_act(config)
    return dict(video_shape=(config.num_frames, H, W), tubelet=(config.tubelet_size, p, p),
                dim=config.hidden_size, depth=config.num_hidden_layers, heads=config.num_attention_heads,
                mlp_ratio=mlp_ratio(config.hidden_size, config.intermediate_size), in_channels=config.num_channels,
                qkv_bias=config.qv_bias, eps=config.layer_norm_eps, final_norm=not config.use_mean_pooling)


# ----------------------------------------------------------------------------- public ports
def encoder_to_hf(encoder: VideoMAEEncoder):
    """A ``transformers.VideoMAEModel`` with the weights of a vtlib ``VideoMAEEncoder`` (eval mode)."""
    enc = _encoder_of(encoder)
    cfg = videomae_config(enc)
    hf = build_hf("VideoMAEModel", cfg, like=enc)
    copy_to_hf(enc, hf, videomae_table(cfg, kind="encoder"))
    return hf


def encoder_from_hf(hf_model) -> VideoMAEEncoder:
    """A vtlib ``VideoMAEEncoder`` with the weights of a ``transformers.VideoMAEModel`` (eval mode)."""
    check_hf(hf_model, "VideoMAEModel")
    enc = placed_like(VideoMAEEncoder(**_encoder_kwargs(hf_model.config)), hf_model)
    copy_from_hf(hf_model, enc, videomae_table(hf_model.config, kind="encoder"))
    return enc


def videomae_to_hf(model: VideoMAE):
    """A ``transformers.VideoMAEForPreTraining`` computing the same loss as ``model`` (eval mode)."""
    check_model(model, VideoMAE, "build VideoMAE(...)")
    cfg = videomae_config(model)
    hf = build_hf("VideoMAEForPreTraining", cfg, like=model)
    copy_to_hf(model, hf, videomae_table(cfg, kind="pretraining"))
    return hf


def videomae_from_hf(hf_model) -> VideoMAE:
    """A vtlib ``VideoMAE`` with the weights of a ``transformers.VideoMAEForPreTraining`` (eval mode)."""
    check_hf(hf_model, "VideoMAEForPreTraining")
    cfg = hf_model.config
    model = VideoMAE(**_encoder_kwargs(cfg), decoder_dim=cfg.decoder_hidden_size,
                     decoder_depth=cfg.decoder_num_hidden_layers, decoder_heads=cfg.decoder_num_attention_heads,
                     decoder_mlp_ratio=mlp_ratio(cfg.decoder_hidden_size, cfg.decoder_intermediate_size),
                     norm_pix_loss=cfg.norm_pix_loss)
    model = placed_like(model, hf_model)
    copy_from_hf(hf_model, model, videomae_table(cfg, kind="pretraining"))
    return model


def classifier_to_hf(model: VideoMAEClassifier, attn_implementation: str = "sdpa"):
    """A ``transformers.VideoMAEForVideoClassification`` (mean pooling + fc_norm) equal to ``model``."""
    check_model(model, VideoMAEClassifier, "build VideoMAEClassifier(...)")
    if model.encoder.hparams["final_norm"]:
        raise bad_arg("model", "an encoder without final_norm (HF mean pooling has fc_norm only)",
                      "final_norm=True", "build the classifier with final_norm=False")
    cfg = videomae_config(model, attn_implementation=attn_implementation)
    hf = build_hf("VideoMAEForVideoClassification", cfg, like=model)
    copy_to_hf(model, hf, videomae_table(cfg, kind="classifier"))
    return hf


def classifier_from_hf(hf_model) -> VideoMAEClassifier:
    """A vtlib ``VideoMAEClassifier`` from a ``VideoMAEForVideoClassification`` with mean pooling."""
    check_hf(hf_model, "VideoMAEForVideoClassification")
    cfg = hf_model.config
    if not cfg.use_mean_pooling:
        raise bad_arg("hf_model", "use_mean_pooling=True (vtlib's classifier mean-pools)", "False",
                      "HF then reads token 0, a patch token (no CLS in VideoMAE): not portable")
    model = placed_like(VideoMAEClassifier(num_classes=cfg.num_labels, **_encoder_kwargs(cfg)), hf_model)
    copy_from_hf(hf_model, model, videomae_table(cfg, kind="classifier"))
    return model


class HFVideoMAEClassifier(HFVideoClassifier):
    """An HF ``VideoMAEForVideoClassification`` taking vtlib clips: (B, C, T, H, W) -> logits (B, K)."""
    hf_class = "VideoMAEForVideoClassification"
