"""Weight porting between vtlib's VideoMAE and Hugging Face ``transformers`` (notebook 08).

A port is believable only if both sides then compute the same function: with the same weights,
clip and mask, ``VideoMAE(x, mask)`` and ``VideoMAEForPreTraining(pixel_values, bool_masked_pos)``
give the same loss and predictions, and the encoders give the same visible-token outputs
(tests/test_hf_videomae.py).

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

* **The k bias.** HF has q and v biases only. A k bias adds the same number q . b_k to every score
  of a query's row, which softmax removes, so it never changes the output. To HF: vtlib's k bias is
  dropped (the outputs still agree). From HF: the k part of vtlib's packed bias is set to zero.
* **Prediction layout.** vtlib flattens a tubelet channel-major, (c t p1 p2), as ``patchify``; HF
  flattens (t p1 p2 c). For C = 1 they coincide; otherwise the head's output rows are permuted.
* **Targets.** Both normalise each tubelet per channel with its mean and unbiased std (+ 1e-6).
  HF refuses ``norm_pix_loss=False`` for C != 3, and for C = 3 it first undoes the ImageNet
  normalisation (an affine map per channel, which per-tubelet normalisation cancels up to the eps),
  so the losses agree for C = 1 exactly and for C = 3 to about 1e-5.

Nothing is downloaded: configs are built locally from the vtlib model.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from vtlib.block import Block, mlp_hidden_dim
from vtlib.errors import bad_arg
from vtlib.hf import _transformers
from vtlib.hf import to_hf_video as _to_hf_view
from vtlib.models.videomae import VideoMAE, VideoMAEClassifier, VideoMAEEncoder


def to_hf_video(x: Tensor) -> Tensor:
    """vtlib clips (B, C, T, H, W) -> HF ``pixel_values`` (B, T, C, H, W), contiguous (a copy)."""
    return _to_hf_view(x).contiguous()


# ----------------------------------------------------------------------------- configs
def _encoder_of(model) -> VideoMAEEncoder:
    if isinstance(model, (VideoMAE, VideoMAEClassifier)):
        return model.encoder
    if isinstance(model, VideoMAEEncoder):
        return model
    raise bad_arg("model", "a vtlib VideoMAE, VideoMAEEncoder or VideoMAEClassifier", type(model).__name__,
                  "build one from vtlib.models.videomae")


def _check_gelu(blocks) -> None:
    for b in blocks:
        if type(b.mlp.act) is not nn.GELU or b.mlp.act.approximate != "none":
            raise bad_arg("model", "blocks with the exact nn.GELU() (HF hidden_act='gelu')",
                          repr(b.mlp.act), "keep vtlib's default MLP activation")


def videomae_config(model, **overrides):
    """A ``VideoMAEConfig`` describing ``model`` (a VideoMAE, its encoder, or a VideoMAEClassifier)."""
    enc = _encoder_of(model)
    h = enc.hparams
    t, p1, p2 = h["tubelet"]
    T, H, W = h["video_shape"]
    if p1 != p2:
        raise bad_arg("model", "square patches, tubelet (t, p, p) (HF has one patch_size)", h["tubelet"],
                      "build the model with tubelet=(t, p, p)")
    blocks = list(enc.transformer.blocks)
    _check_gelu(blocks)
    kw = dict(image_size=H if H == W else (H, W), patch_size=p1, num_channels=h["in_channels"], num_frames=T,
              tubelet_size=t, hidden_size=h["dim"], num_hidden_layers=h["depth"], num_attention_heads=h["heads"],
              intermediate_size=mlp_hidden_dim(h["dim"], h["mlp_ratio"]), hidden_act="gelu",
              layer_norm_eps=h["eps"], qv_bias=h["qkv_bias"], use_mean_pooling=not h["final_norm"],
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if isinstance(model, VideoMAE):
        dec = model.decoder
        dblocks = list(dec.transformer.blocks)
        _check_gelu(dblocks)
        if dblocks[0].norm1.eps != h["eps"]:
            raise bad_arg("model", "the same LayerNorm eps in encoder and decoder blocks (HF shares one)",
                          f"{h['eps']} and {dblocks[0].norm1.eps}", "build VideoMAE with one eps")
        kw.update(decoder_hidden_size=dec.dim, decoder_num_hidden_layers=len(dblocks),
                  decoder_num_attention_heads=dblocks[0].attn.heads,
                  decoder_intermediate_size=dblocks[0].mlp.fc1.out_features, norm_pix_loss=model.norm_pix_loss)
    if isinstance(model, VideoMAEClassifier):
        kw.update(num_labels=model.head.out_features)
    kw.update(overrides)
    return _transformers().VideoMAEConfig(**kw)


# ----------------------------------------------------------------------------- blocks
def _copy(dst: nn.Module, src: nn.Module) -> None:
    dst.weight.copy_(src.weight)
    if getattr(dst, "bias", None) is not None:
        dst.bias.copy_(src.bias)


def _check_layer(layer) -> None:
    sa = getattr(getattr(layer, "attention", None), "attention", None)
    if sa is None or not all(hasattr(sa, n) for n in ("query", "key", "value")):
        raise bad_arg("transformers", "5.23 VideoMAE layer names (attention.attention.query/key/value)",
                      type(layer).__name__, "install transformers==5.23.0 (the pinned version)")


def _block_to_hf(b: Block, layer) -> None:
    _check_layer(layer)
    sa = layer.attention.attention
    q, k, v = b.attn.qkv.weight.chunk(3)
    sa.query.weight.copy_(q), sa.key.weight.copy_(k), sa.value.weight.copy_(v)
    if b.attn.qkv.bias is not None:
        qb, _, vb = b.attn.qkv.bias.chunk(3)          # the k bias is dropped: softmax cancels it
        sa.query.bias.copy_(qb), sa.value.bias.copy_(vb)
    _copy(layer.attention.output.dense, b.attn.proj)
    _copy(layer.layernorm_before, b.norm1), _copy(layer.layernorm_after, b.norm2)
    _copy(layer.intermediate.dense, b.mlp.fc1), _copy(layer.output.dense, b.mlp.fc2)


def _block_from_hf(layer, b: Block) -> None:
    _check_layer(layer)
    sa = layer.attention.attention
    b.attn.qkv.weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
    if b.attn.qkv.bias is not None:
        b.attn.qkv.bias.copy_(torch.cat([sa.query.bias, torch.zeros_like(sa.query.bias), sa.value.bias]))
    _copy(b.attn.proj, layer.attention.output.dense)
    _copy(b.norm1, layer.layernorm_before), _copy(b.norm2, layer.layernorm_after)
    _copy(b.mlp.fc1, layer.intermediate.dense), _copy(b.mlp.fc2, layer.output.dense)


def _encoder_to_hf(enc: VideoMAEEncoder, hf_model) -> None:
    _copy(hf_model.embeddings.patch_embeddings.projection, enc.embed.proj)
    for b, layer in zip(enc.transformer.blocks, hf_model.encoder.layer):
        _block_to_hf(b, layer)
    if hf_model.layernorm is not None:
        _copy(hf_model.layernorm, enc.norm)


def _encoder_from_hf(hf_model, enc: VideoMAEEncoder) -> None:
    _copy(enc.embed.proj, hf_model.embeddings.patch_embeddings.projection)
    for b, layer in zip(enc.transformer.blocks, hf_model.encoder.layer):
        _block_from_hf(layer, b)
    if hf_model.layernorm is not None:
        _copy(enc.norm, hf_model.layernorm)


def _encoder_kwargs(config) -> dict:
    size = config.image_size
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    p = config.patch_size
    if not isinstance(p, int):
        raise bad_arg("hf_model", "a config with one int patch_size", repr(p), "use a square int patch_size")
    if config.hidden_act != "gelu":
        raise bad_arg("hf_model", "hidden_act='gelu' (the exact GELU of vtlib's MLP)", repr(config.hidden_act),
                      "port a model built with hidden_act='gelu'")
    return dict(video_shape=(config.num_frames, H, W), tubelet=(config.tubelet_size, p, p),
                dim=config.hidden_size, depth=config.num_hidden_layers, heads=config.num_attention_heads,
                mlp_ratio=config.intermediate_size / config.hidden_size, in_channels=config.num_channels,
                qkv_bias=config.qv_bias, eps=config.layer_norm_eps, final_norm=not config.use_mean_pooling)


def _check_hf(obj, cls_name: str):
    cls = getattr(_transformers(), cls_name)
    if not isinstance(obj, cls):
        raise bad_arg("hf_model", f"a transformers {cls_name}", type(obj).__name__,
                      f"build one with transformers.{cls_name}(config)")
    return cls


def _check_ratio_exact(config) -> None:
    if mlp_hidden_dim(config.hidden_size, config.intermediate_size / config.hidden_size) != config.intermediate_size:
        raise bad_arg("hf_model", "intermediate_size that vtlib can express as int(dim * mlp_ratio)",
                      config.intermediate_size, "use an intermediate_size that is a multiple of hidden_size")


# ----------------------------------------------------------------------------- public ports
@torch.no_grad()
def encoder_to_hf(encoder: VideoMAEEncoder):
    """A ``transformers.VideoMAEModel`` with the weights of a vtlib ``VideoMAEEncoder`` (eval mode)."""
    enc = _encoder_of(encoder)
    hf = _transformers().VideoMAEModel(videomae_config(enc)).eval()
    _encoder_to_hf(enc, hf)
    return hf.to(next(enc.parameters()).device)


@torch.no_grad()
def encoder_from_hf(hf_model) -> VideoMAEEncoder:
    """A vtlib ``VideoMAEEncoder`` with the weights of a ``transformers.VideoMAEModel``."""
    _check_hf(hf_model, "VideoMAEModel")
    _check_ratio_exact(hf_model.config)
    enc = VideoMAEEncoder(**_encoder_kwargs(hf_model.config))
    _encoder_from_hf(hf_model, enc)
    return enc.eval()


@torch.no_grad()
def videomae_to_hf(model: VideoMAE):
    """A ``transformers.VideoMAEForPreTraining`` computing the same loss as ``model`` (eval mode)."""
    if not isinstance(model, VideoMAE):
        raise bad_arg("model", "a vtlib VideoMAE", type(model).__name__, "build VideoMAE(...)")
    hf = _transformers().VideoMAEForPreTraining(videomae_config(model)).eval()
    _encoder_to_hf(model.encoder, hf.videomae)
    dec, c = model.decoder, model.encoder.in_channels
    hf.encoder_to_decoder.weight.copy_(dec.proj.weight)
    hf.mask_token.copy_(dec.mask_token)
    for b, layer in zip(dec.transformer.blocks, hf.decoder.decoder_layers):
        _block_to_hf(b, layer)
    _copy(hf.decoder.norm, dec.norm)
    hf.decoder.head.weight.copy_(rearrange(dec.head.weight, "(c k) d -> (k c) d", c=c))
    hf.decoder.head.bias.copy_(rearrange(dec.head.bias, "(c k) -> (k c)", c=c))
    return hf.to(next(model.parameters()).device)


@torch.no_grad()
def videomae_from_hf(hf_model) -> VideoMAE:
    """A vtlib ``VideoMAE`` with the weights of a ``transformers.VideoMAEForPreTraining``."""
    _check_hf(hf_model, "VideoMAEForPreTraining")
    cfg = hf_model.config
    _check_ratio_exact(cfg)
    model = VideoMAE(**_encoder_kwargs(cfg), decoder_dim=cfg.decoder_hidden_size,
                     decoder_depth=cfg.decoder_num_hidden_layers, decoder_heads=cfg.decoder_num_attention_heads,
                     decoder_mlp_ratio=cfg.decoder_intermediate_size / cfg.decoder_hidden_size,
                     norm_pix_loss=cfg.norm_pix_loss)
    _encoder_from_hf(hf_model.videomae, model.encoder)
    dec, c = model.decoder, cfg.num_channels
    dec.proj.weight.copy_(hf_model.encoder_to_decoder.weight)
    dec.mask_token.copy_(hf_model.mask_token)
    for b, layer in zip(dec.transformer.blocks, hf_model.decoder.decoder_layers):
        _block_from_hf(layer, b)
    _copy(dec.norm, hf_model.decoder.norm)
    dec.head.weight.copy_(rearrange(hf_model.decoder.head.weight, "(k c) d -> (c k) d", c=c))
    dec.head.bias.copy_(rearrange(hf_model.decoder.head.bias, "(k c) -> (c k)", c=c))
    return model.eval()


@torch.no_grad()
def classifier_to_hf(model: VideoMAEClassifier, attn_implementation: str = "sdpa"):
    """A ``transformers.VideoMAEForVideoClassification`` (mean pooling + fc_norm) equal to ``model``."""
    if not isinstance(model, VideoMAEClassifier):
        raise bad_arg("model", "a vtlib VideoMAEClassifier", type(model).__name__, "build VideoMAEClassifier(...)")
    if model.encoder.hparams["final_norm"]:
        raise bad_arg("model", "an encoder without final_norm (HF mean pooling has fc_norm only)",
                      "final_norm=True", "build the classifier with final_norm=False")
    cfg = videomae_config(model, attn_implementation=attn_implementation)
    hf = _transformers().VideoMAEForVideoClassification(cfg).eval()
    _encoder_to_hf(model.encoder, hf.videomae)
    _copy(hf.fc_norm, model.fc_norm), _copy(hf.classifier, model.head)
    return hf.to(next(model.parameters()).device)


@torch.no_grad()
def classifier_from_hf(hf_model) -> VideoMAEClassifier:
    """A vtlib ``VideoMAEClassifier`` from a ``VideoMAEForVideoClassification`` with mean pooling."""
    _check_hf(hf_model, "VideoMAEForVideoClassification")
    cfg = hf_model.config
    if not cfg.use_mean_pooling:
        raise bad_arg("hf_model", "use_mean_pooling=True (vtlib's classifier mean-pools)", "False",
                      "HF then reads token 0, a patch token (no CLS in VideoMAE): not portable")
    _check_ratio_exact(cfg)
    model = VideoMAEClassifier(num_classes=cfg.num_labels, **_encoder_kwargs(cfg))
    _encoder_from_hf(hf_model.videomae, model.encoder)
    _copy(model.fc_norm, hf_model.fc_norm), _copy(model.head, hf_model.classifier)
    return model.eval()
