"""VideoMAE: masked-autoencoder pre-training for video (Tong et al., NeurIPS 2022, arXiv 2203.12602).

Hide most tubelets of a clip, encode only the few that are left, and ask a small decoder to
paint the hidden ones back, pixel by pixel. No labels are needed; the encoder is then fine-tuned.

    x (B, C, T, H, W), mask (B, N) bool, True = masked (vtlib.masking)
      -> tokens (B, N, D)               tubelet embedding (Conv3d) + fixed sincos_1d positions
      -> visible (B, Nv, D)             the encoder sees ONLY the Nv = N - Nm visible tokens
      -> Transformer(depth)             cost ~ Nv instead of N: 4x fewer tokens at 75 % masking
      -> Linear(D, Dd, bias=False)      to the narrow decoder width Dd
      -> [visible + pos_d | mask_token + pos_d]   (B, N, Dd): the Nm mask tokens only know where they are
      -> Transformer(decoder_depth) -> LayerNorm -> Linear(Dd, C*t*p*p) on the last Nm tokens
      -> loss = MSE(prediction, target) on the masked tubelets only

The visible tokens are not put back into (t h w) order before the decoder: attention does not
care about order, the position codes travel with the tokens (the same shortcut as Hugging Face).

Target (``patch_targets``): each tubelet flattened as in ``vtlib.tokens.patchify`` (c t p1 p2);
with ``norm_pix_loss`` every tubelet is normalised per channel by its own mean and UNBIASED
standard deviation, (v - mean) / (std + 1e-6), exactly as HF and the official code do.

No CLS token (HF issue #21016). Fine-tuning (``VideoMAEClassifier``): all tokens through the
pre-trained encoder, mean pooling, ``fc_norm`` (LayerNorm), linear head. The pre-training loop
is ``vtlib.pretrain`` (the training layer).

Attention biases: HF and the official code give q and v a bias but not k. A bias on k adds
q . b_k to every score of a row, a constant that softmax removes, so it never changes the
output and its gradient is zero: vtlib's packed qkv bias (with a k part) is as expressive.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtlib.block import Transformer
from vtlib.errors import bad_arg, check_positive_int, check_rank
from vtlib.masking import check_mask, masked, visible
from vtlib.pooling import MeanPool
from vtlib.position import sincos_1d, trunc_normal_
from vtlib.shapes import check_clip_shape
from vtlib.tokens import TubeletEmbed, patchify, unpatchify

PIX_EPS = 1e-6  # added to the per-tubelet std (HF / official VideoMAE)


def _init_mae(module: nn.Module) -> None:
    """MAE-style init: xavier-uniform Linear weights, zero biases; LayerNorm 1 / 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def patch_targets(x: Tensor, tubelet, normalize: bool = True, eps: float = PIX_EPS) -> Tensor:
    """Reconstruction targets (B, C, T, H, W) -> (B, N, C*t*p*p), one row per tubelet, (c t p1 p2).

    ``normalize``: per tubelet and channel, (v - mean) / (std + eps) with the unbiased std over its
    t*p*p voxels (a constant tubelet, e.g. empty background, becomes all zeros).
    """
    check_rank("x", x, 5, "B C T H W")
    c = x.shape[1]
    patches = patchify(x, tubelet)                                        # (B, N, C*t*p*p)
    if not normalize:
        return patches
    v = patches.unflatten(-1, (c, -1))                                    # (B, N, C, t*p*p)
    if v.shape[-1] < 2:
        raise bad_arg("tubelet", "at least 2 voxels per tubelet for a per-patch std", tubelet,
                      "use a larger tubelet or normalize=False")
    v = (v - v.mean(-1, keepdim=True)) / (v.var(-1, unbiased=True, keepdim=True).sqrt() + eps)
    return v.flatten(-2)


class VideoMAEEncoder(nn.Module):
    """Tubelet embedding + fixed 1D sin-cos positions + Transformer; no CLS token.

    forward(x (B, C, T, H, W), mask (B, N) bool or None) -> (B, Nv, D): the encoded VISIBLE tokens
    in (t h w) order (all N tokens when ``mask`` is None). ``final_norm`` adds a LayerNorm at the
    end (HF ``use_mean_pooling=False``); the default has none, like HF's default and the fine-tuning
    model of the official code, where ``fc_norm`` after pooling takes its place.
    """

    def __init__(self, *, video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim: int = 64, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 4.0, in_channels: int = 1, qkv_bias: bool = True,
                 drop_path: float = 0.0, eps: float = 1e-6, final_norm: bool = False):
        super().__init__()
        self.embed = TubeletEmbed(dim=dim, tubelet=tubelet, in_channels=in_channels)
        self.video_shape = tuple(video_shape)
        self.grid = self.embed.grid(self.video_shape)
        self.num_tokens = math.prod(self.grid)
        self.register_buffer("pos", sincos_1d(self.num_tokens, dim)[None], persistent=False)  # (1, N, D)
        self.transformer = Transformer(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                                       drop_path_rate=drop_path, eps=eps)
        self.norm = nn.LayerNorm(dim, eps=eps) if final_norm else nn.Identity()
        self.dim, self.tubelet, self.in_channels = dim, self.embed.tubelet, in_channels
        self.hparams = dict(video_shape=self.video_shape, tubelet=self.tubelet, dim=dim, depth=depth, heads=heads,
                            mlp_ratio=mlp_ratio, in_channels=in_channels, qkv_bias=qkv_bias, eps=eps,
                            final_norm=final_norm)
        _init_mae(self)

    def check_input(self, x: Tensor) -> None:
        check_clip_shape(x, self.video_shape)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        self.check_input(x)
        tokens = self.embed(x) + self.pos                                 # (B, N, D)
        if mask is not None:
            tokens = visible(tokens, mask)                                # (B, Nv, D)
        return self.norm(self.transformer(tokens))


class VideoMAEDecoder(nn.Module):
    """Narrow decoder: encoded visible tokens + mask tokens -> pixels of the masked tubelets.

    forward(latent (B, Nv, D_enc), mask (B, N)) -> (B, Nm, out_dim), rows in the (t h w) order of
    the masked tokens. Positions: a fixed sincos_1d table at the decoder width, added to both the
    visible tokens and the shared learned ``mask_token``.
    """

    no_weight_decay = ("mask_token",)                            # see vtlib.train.param_groups

    def __init__(self, *, num_tokens: int, encoder_dim: int, out_dim: int, dim: int = 32, depth: int = 1,
                 heads: int = 4, mlp_ratio: float = 4.0, qkv_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        for name, v in (("num_tokens", num_tokens), ("encoder_dim", encoder_dim), ("out_dim", out_dim)):
            check_positive_int(name, v)
        self.num_tokens, self.encoder_dim, self.dim = num_tokens, encoder_dim, dim
        self.proj = nn.Linear(encoder_dim, dim, bias=False)              # HF: encoder_to_decoder
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos", sincos_1d(num_tokens, dim)[None], persistent=False)  # (1, N, Dd)
        self.transformer = Transformer(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                                       eps=eps)
        self.norm = nn.LayerNorm(dim)                                     # eps 1e-5, as HF's decoder norm
        self.head = nn.Linear(dim, out_dim)
        _init_mae(self)
        trunc_normal_(self.mask_token, std=0.02)

    def forward(self, latent: Tensor, mask: Tensor) -> Tensor:
        check_rank("latent", latent, 3, "B Nv D")
        n_masked = check_mask(mask, latent.shape[0], self.num_tokens)
        if latent.shape[1:] != (self.num_tokens - n_masked, self.encoder_dim):
            raise bad_arg("latent", f"(B, {self.num_tokens - n_masked}, {self.encoder_dim}): the encoded "
                          "visible tokens", f"shape {tuple(latent.shape)}",
                          "pass encoder(x, mask) with the same mask")
        if n_masked == 0:
            raise bad_arg("mask", "at least one masked token to reconstruct", "no masked token",
                          "use a masking ratio > 0")
        pos = self.pos.expand(latent.shape[0], -1, -1)                    # (B, N, Dd)
        x = torch.cat([self.proj(latent) + visible(pos, mask),            # (B, Nv, Dd)
                       self.mask_token + masked(pos, mask)], dim=1)       # (B, Nm, Dd) -> (B, N, Dd)
        x = self.transformer(x)
        return self.head(self.norm(x[:, -n_masked:]))                     # (B, Nm, out_dim)


class VideoMAE(nn.Module):
    """The asymmetric masked autoencoder for pre-training.

    forward(x (B, C, T, H, W), mask (B, N) bool) -> (loss, pred): ``loss`` is the MSE between
    ``pred`` (B, Nm, C*t*p*p) and the (normalised) pixels of the masked tubelets only.
    """

    def __init__(self, *, video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim: int = 64, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 4.0, in_channels: int = 1, decoder_dim: int = 32,
                 decoder_depth: int = 1, decoder_heads: int = 4, decoder_mlp_ratio: float = 4.0,
                 norm_pix_loss: bool = True, qkv_bias: bool = True, drop_path: float = 0.0,
                 eps: float = 1e-6, final_norm: bool = False):
        super().__init__()
        self.encoder = VideoMAEEncoder(video_shape=video_shape, tubelet=tubelet, dim=dim, depth=depth, heads=heads,
                                       mlp_ratio=mlp_ratio, in_channels=in_channels, qkv_bias=qkv_bias,
                                       drop_path=drop_path, eps=eps, final_norm=final_norm)
        t, p1, p2 = self.encoder.tubelet
        self.decoder = VideoMAEDecoder(num_tokens=self.encoder.num_tokens, encoder_dim=dim,
                                       out_dim=in_channels * t * p1 * p2, dim=decoder_dim, depth=decoder_depth,
                                       heads=decoder_heads, mlp_ratio=decoder_mlp_ratio, qkv_bias=qkv_bias, eps=eps)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.grid, self.tubelet, self.video_shape = self.encoder.grid, self.encoder.tubelet, self.encoder.video_shape

    @property
    def num_tokens(self) -> int:
        return self.encoder.num_tokens

    def targets(self, x: Tensor) -> Tensor:
        """All N targets (B, N, C*t*p*p): normalised per tubelet if ``norm_pix_loss``."""
        return patch_targets(x, self.tubelet, self.norm_pix_loss)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        latent = self.encoder(x, mask)                                    # (B, Nv, D)
        pred = self.decoder(latent, mask)                                 # (B, Nm, C*t*p*p)
        with torch.no_grad():
            target = masked(self.targets(x), mask)                        # (B, Nm, C*t*p*p)
        return F.mse_loss(pred, target), pred

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mask: Tensor) -> Tensor:
        """A clip (B, C, T, H, W): visible tubelets as given, masked ones predicted.

        With ``norm_pix_loss`` the prediction is in normalised units; it is mapped back with the
        true mean and std of each hidden tubelet (the usual way MAE pictures are drawn), so the
        picture shows the predicted *shape* inside each tubelet, not its brightness.
        """
        _, pred = self(x, mask)
        patches = patchify(x, self.tubelet)                               # (B, N, C*t*p*p)
        if self.norm_pix_loss:
            c = x.shape[1]
            v = patches.unflatten(-1, (c, -1))
            mean, std = v.mean(-1, keepdim=True), v.var(-1, unbiased=True, keepdim=True).sqrt() + PIX_EPS
            pred_v = pred.unflatten(-1, (c, -1))
            pred = (pred_v * masked(std.flatten(-2), mask)[..., None] + masked(mean.flatten(-2), mask)[..., None])
            pred = pred.flatten(-2)
        out = patches.clone()
        out[mask] = pred.reshape(-1, pred.shape[-1]).to(out.dtype)
        return unpatchify(out, x.shape[1:], self.tubelet)


class VideoMAEClassifier(nn.Module):
    """Fine-tuning model: encoder over all tokens -> mean pooling -> fc_norm -> Linear head.

    Build it from scratch with the encoder's arguments, or from a pre-trained ``VideoMAE`` with
    :meth:`from_pretrained` (same architecture, so a fair "from scratch" baseline is one call away).
    """

    def __init__(self, *, num_classes: int = 2, video_shape=(28, 28, 28), tubelet=(4, 7, 7), dim: int = 64,
                 depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0, in_channels: int = 1,
                 qkv_bias: bool = True, drop_path: float = 0.0, eps: float = 1e-6, final_norm: bool = False):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        self.encoder = VideoMAEEncoder(video_shape=video_shape, tubelet=tubelet, dim=dim, depth=depth, heads=heads,
                                       mlp_ratio=mlp_ratio, in_channels=in_channels, qkv_bias=qkv_bias,
                                       drop_path=drop_path, eps=eps, final_norm=final_norm)
        self.pool = MeanPool(dim=dim)
        self.fc_norm = nn.LayerNorm(dim)                                  # eps 1e-5, as HF
        self.head = nn.Linear(dim, num_classes)
        trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_pretrained(cls, mae: "VideoMAE | VideoMAEEncoder", num_classes: int = 2,
                        drop_path: float = 0.0) -> "VideoMAEClassifier":
        """A classifier whose encoder is a copy of ``mae``'s (the decoder is dropped)."""
        encoder = mae.encoder if isinstance(mae, VideoMAE) else mae
        if not isinstance(encoder, VideoMAEEncoder):
            raise bad_arg("mae", "a VideoMAE or a VideoMAEEncoder", type(mae).__name__,
                          "pre-train a vtlib.models.videomae.VideoMAE first")
        model = cls(num_classes=num_classes, drop_path=drop_path, **encoder.hparams)
        model.encoder.load_state_dict(encoder.state_dict())
        return model.to(next(encoder.parameters()).device)

    def features(self, x: Tensor) -> Tensor:
        """Pooled clip features (B, D)."""
        return self.fc_norm(self.pool(self.encoder(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
