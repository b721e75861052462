"""Which tokens to hide: tube, random and frame masking for masked video modelling (notebook 08).

A mask is a bool tensor (B, N) over the N = nt * nh * nw tokens of a clip, in (t h w) order,
with **True = masked** (hidden from the encoder), the convention of Hugging Face's
``bool_masked_pos``. Every sample of a batch masks the same number of tokens, so the visible
tokens of a batch stack into one (B, N_visible, D) tensor (see ``visible``).

    tube     one random spatial mask of int(ratio * nh*nw) positions, repeated over all nt
             token-frames (VideoMAE's default): a masked patch stays masked for the whole
             clip, so the model cannot copy it from the previous frame.
    random   int(ratio * N) tokens drawn uniformly from the whole clip.
    frame    int(ratio * nt) whole token-frames hidden, the others fully visible.

Counts use the floor rule of the official VideoMAE code: ``int(ratio * n)``. The actual ratio is
therefore at most the requested one, e.g. 7 x 7 patches per frame at 0.9 -> 44 of 49 (89.8 %).

All draws come from a ``torch.Generator`` (CPU), so a seed gives the same masks on every device;
the result is moved to ``device`` afterwards. No loops over tokens or frames.
"""
from __future__ import annotations

import math

import torch
from einops import repeat

from vtlib.errors import bad_arg, check_choice, check_positive_int, check_rank
from vtlib.shapes import Triple, triple

MASK_KINDS = ("tube", "random", "frame")


def _check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio < 1.0:
        raise bad_arg("ratio", "a masking ratio in [0, 1)", repr(ratio),
                      "pass e.g. ratio=0.75 (VideoMAE's small-data default) or 0.9")
    return float(ratio)


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise bad_arg("generator", "a torch.Generator or None", type(generator).__name__,
                      "pass torch.Generator().manual_seed(seed)")


def _units(kind: str, grid: Triple) -> tuple[int, int]:
    """(units drawn from, tokens per unit): spatial positions, tokens, or token-frames."""
    nt, nh, nw = grid
    return {"tube": (nh * nw, nt), "random": (nt * nh * nw, 1), "frame": (nt, nh * nw)}[kind]


def num_masked(kind: str, grid, ratio: float) -> int:
    """Tokens masked per clip by ``kind`` at ``ratio`` on a (nt, nh, nw) token grid (floor rule).

    tube: int(ratio * nh*nw) * nt;  random: int(ratio * N);  frame: int(ratio * nt) * nh*nw.
    """
    check_choice("kind", kind, MASK_KINDS)
    units, per_unit = _units(kind, triple("grid", grid))
    return int(_check_ratio(ratio) * units) * per_unit


def _choose(batch: int, units: int, k: int, generator, device) -> torch.Tensor:
    """(batch, units) bool with exactly k True per row, uniformly at random."""
    noise = torch.rand(batch, units, generator=generator)
    chosen = noise.argsort(dim=1)[:, :k]                                  # k distinct indices per row
    mask = torch.zeros(batch, units, dtype=torch.bool).scatter_(1, chosen, True)
    return mask.to(device)


def _prepare(batch: int, grid, ratio: float, generator, kind: str) -> tuple[Triple, int]:
    check_positive_int("batch", batch)
    grid = triple("grid", grid)
    ratio = _check_ratio(ratio)
    _check_generator(generator)
    units, per_unit = _units(kind, grid)
    k = int(ratio * units)
    if k == units:  # unreachable for ratio < 1, kept as a guard
        raise bad_arg("ratio", f"a ratio that leaves at least one of {units} units visible", ratio,
                      "use a smaller ratio")
    return grid, k


def tube_mask(batch: int, grid, ratio: float, generator: torch.Generator | None = None,
              device=None) -> torch.Tensor:
    """Tube masking: (B, N) bool, one spatial mask per clip repeated over all nt token-frames.

    Each clip masks int(ratio * nh*nw) positions per token-frame, the same ones in every frame.
    """
    (nt, nh, nw), k = _prepare(batch, grid, ratio, generator, "tube")
    spatial = _choose(batch, nh * nw, k, generator, device)               # (B, nh*nw)
    return repeat(spatial, "b s -> b (t s)", t=nt)                        # (B, nt*nh*nw), (t h w) order


def random_mask(batch: int, grid, ratio: float, generator: torch.Generator | None = None,
                device=None) -> torch.Tensor:
    """Random masking: (B, N) bool, int(ratio * N) tokens per clip drawn uniformly over space-time."""
    (nt, nh, nw), k = _prepare(batch, grid, ratio, generator, "random")
    return _choose(batch, nt * nh * nw, k, generator, device)


def frame_mask(batch: int, grid, ratio: float, generator: torch.Generator | None = None,
               device=None) -> torch.Tensor:
    """Frame masking: (B, N) bool, int(ratio * nt) whole token-frames hidden per clip."""
    (nt, nh, nw), k = _prepare(batch, grid, ratio, generator, "frame")
    frames = _choose(batch, nt, k, generator, device)                     # (B, nt)
    return repeat(frames, "b t -> b (t s)", s=nh * nw)


def make_mask(kind: str, batch: int, grid, ratio: float, generator: torch.Generator | None = None,
              device=None) -> torch.Tensor:
    """``tube_mask``, ``random_mask`` or ``frame_mask`` by name: (B, N) bool, True = masked."""
    check_choice("kind", kind, MASK_KINDS)
    fn = {"tube": tube_mask, "random": random_mask, "frame": frame_mask}[kind]
    return fn(batch, grid, ratio, generator, device)


def mask_table(tokens_per_frame=(49, 16), ratios=(0.75, 0.9, 0.95)) -> list[dict]:
    """The floor rule per token-frame: one row per (tokens per frame, ratio) with masked, visible
    and the actual ratio. 49 = 7 x 7 patches (4 x 4 pixel patches on 28^2), 16 = 4 x 4 (7 x 7 patches)."""
    rows = []
    for n in tokens_per_frame:
        check_positive_int("tokens_per_frame", n)
        for r in ratios:
            m = int(_check_ratio(r) * n)
            rows.append(dict(tokens=n, ratio=r, masked=m, visible=n - m, actual=m / n))
    return rows


def check_mask(mask: torch.Tensor, batch: int | None = None, num_tokens: int | None = None) -> int:
    """Validate a (B, N) bool mask with the same count in every row; return that count.

    Unequal counts cannot be stacked into (B, N_visible, D) (the pitfall of transformers issue
    #21484, whose docs example ``torch.randint(0, 2, (1, N))`` only works for one clip).
    """
    check_rank("mask", mask, 2, "B N")
    if mask.dtype != torch.bool:
        raise bad_arg("mask", "a bool tensor (True = masked)", f"dtype {mask.dtype}",
                      "use mask.bool(), or build one with vtlib.masking.make_mask")
    if batch is not None and mask.shape[0] != batch:
        raise bad_arg("mask", f"{batch} rows, one per clip", f"shape {tuple(mask.shape)}",
                      "draw one mask per clip of the batch")
    if num_tokens is not None and mask.shape[1] != num_tokens:
        raise bad_arg("mask", f"{num_tokens} columns, one per token", f"shape {tuple(mask.shape)}",
                      "draw the mask on the model's token grid")
    counts = mask.sum(dim=1)
    if mask.shape[0] and not bool((counts == counts[0]).all()):
        raise bad_arg("mask", "the same number of masked tokens in every clip",
                      f"counts {sorted(set(counts.tolist()))}",
                      "use tube_mask / random_mask / frame_mask, which mask equal counts")
    return int(counts[0]) if mask.shape[0] else 0


def visible(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the unmasked tokens, in their (t h w) order: (B, N, D), (B, N) -> (B, N_visible, D)."""
    check_rank("tokens", tokens, 3, "B N D")
    n_masked = check_mask(mask, tokens.shape[0], tokens.shape[1])
    if n_masked == tokens.shape[1]:
        raise bad_arg("mask", "at least one visible token per clip", "every token masked",
                      "use a masking ratio below 1")
    return tokens[~mask].reshape(tokens.shape[0], -1, tokens.shape[2])


def masked(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the masked tokens, in their (t h w) order: (B, N, D), (B, N) -> (B, N_masked, D)."""
    check_rank("tokens", tokens, 3, "B N D")
    check_mask(mask, tokens.shape[0], tokens.shape[1])
    return tokens[mask].reshape(tokens.shape[0], -1, tokens.shape[2])


def mask_to_video(mask: torch.Tensor, grid, tubelet) -> torch.Tensor:
    """(B, N) token mask -> (B, 1, T, H, W) float voxel mask (1 = masked), for pictures."""
    check_rank("mask", mask, 2, "B N")
    nt, nh, nw = triple("grid", grid)
    t, p1, p2 = triple("tubelet", tubelet)
    if mask.shape[1] != nt * nh * nw:
        raise bad_arg("mask", f"{nt * nh * nw} columns for grid {(nt, nh, nw)}", f"shape {tuple(mask.shape)}",
                      "pass the grid the mask was drawn on")
    m = mask.float().reshape(mask.shape[0], 1, nt, nh, nw)
    return m.repeat_interleave(t, 2).repeat_interleave(p1, 3).repeat_interleave(p2, 4)


def actual_ratio(kind: str, grid, ratio: float) -> float:
    """Share of tokens really masked after the floor rule."""
    return num_masked(kind, grid, ratio) / math.prod(triple("grid", grid))
