"""Reference solutions for notebook 10's exercises (VTN)."""
from __future__ import annotations

import torch
from einops import rearrange


# exercise 1
def padded_mask(lengths, T, window):
    """(B, 1 + T, 1 + T) bool for [CLS] + T frames, lengths[b] of them real, the CLS global."""
    L, w = T + 1, window // 2
    i = torch.arange(L)
    band = (i[:, None] - i[None, :]).abs() <= w                          # (L, L): |i - j| <= w
    cls = i == 0
    pattern = band | cls[None, :] | cls[:, None]                         # + the CLS's row and column
    keep = i[None, :] < torch.as_tensor(lengths)[:, None] + 1            # (B, L): the CLS and real frames
    return pattern[None] & keep[:, :, None] & keep[:, None, :]          # no padding rows, no padding keys


# exercise 2
def score_counts(frames, window):
    """(window_scores, full_scores) of one head of one layer over [CLS] + frames frames, CLS global."""
    L, w = frames + 1, window // 2
    if w >= L - 1:                                                        # the band already holds everything
        return L * L, L * L
    band = L * (2 * w + 1) - w * (w + 1)                                 # w (w + 1) pairs fall off the two ends
    in_band = 2 * w + 1                                                  # the CLS's pairs inside the band
    return band + (2 * L - 1) - in_band, L * L


# exercise 3
def cache_features(model, clip, chunk):
    """(1, C, T, H, W) -> (1, T, F): model.backbone on chunk frames at a time, no autograd."""
    with torch.no_grad():
        frames = rearrange(clip, "b c t h w -> (b t) c h w")
        feats = torch.cat([model.backbone(part) for part in frames.split(chunk)])
    return rearrange(feats, "(b t) f -> b t f", b=clip.shape[0])


# exercise 4
def frames_seen(model, frames):
    """Frames whose features change the logits: replace one frame's features at a time."""
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, frames, model.feature_dim, generator=g)
    seen = []
    with torch.no_grad():
        base = model.classify_features(f)
        for t in range(frames):
            h = f.clone()
            h[:, t] = torch.randn(model.feature_dim, generator=g)       # new numbers, not a constant shift
            if (model.classify_features(h) - base).abs().max() > 1e-6:
                seen.append(t)
    return seen


def rule(depth, window):
    """A local CLS sees window // 2 more frames per layer."""
    return depth * (window // 2)


DEPTH_TO_SEE_FRAME_128 = 33          # window 8: 4 frames per layer; 32 layers reach frame 127
