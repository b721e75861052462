"""VideoMAE pre-training: the loop that trains ``vtlib.models.videomae.VideoMAE`` without labels.

It lives in the training layer, next to ``vtlib.train.fit``, and shares fit's optimiser groups
(``param_groups``: no weight decay on norms, biases and the tokens and tables modules declare in
``no_weight_decay``, e.g. the decoder's ``mask_token``) and schedule (``warmup_cosine``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from vtlib.checkpoint import load_weights
from vtlib.errors import bad_arg, check_choice, check_positive_int
from vtlib.masking import MASK_KINDS, make_mask
from vtlib.models.videomae import VideoMAE
from vtlib.train import param_groups, warmup_cosine
from vtlib.utils import get_device, is_interactive, seed_everything


@dataclass
class PretrainConfig:
    """Masked-autoencoder pre-training recipe (VideoMAE Table 9 defaults, scaled down)."""
    epochs: int = 50
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_epochs: float = 5.0
    mask_kind: str = "tube"
    mask_ratio: float = 0.75
    seed: int = 0
    grad_clip: float | None = None
    device: str | None = None
    augment: object = None             # f(x, generator) -> x, e.g. vtlib.data.augment
    progress: bool | None = None

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        check_choice("mask_kind", self.mask_kind, MASK_KINDS)
        for name in ("lr", "weight_decay", "warmup_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (name == "lr" and v == 0):
                raise bad_arg(name, "a non-negative number (lr: positive)", repr(v), f"pass a valid {name}")
        if not isinstance(self.mask_ratio, (int, float)) or not 0 < self.mask_ratio < 1:
            raise bad_arg("mask_ratio", "a ratio in (0, 1)", repr(self.mask_ratio), "e.g. mask_ratio=0.75")
        if self.augment is not None and not callable(self.augment):
            raise bad_arg("augment", "a callable f(x, generator) -> x or None", type(self.augment).__name__,
                          "pass vtlib.data.augment or None")


def pretrain(model: VideoMAE, loader, cfg: PretrainConfig) -> list[dict]:
    """Pre-train ``model`` in place on the clips of ``loader`` (labels ignored).

    AdamW (betas 0.9 / 0.95), per-step warm-up + cosine, one fresh mask per clip and step drawn
    from a CPU generator seeded with ``cfg.seed`` (the same masks on every device). Returns the
    history: one dict per epoch with ``epoch``, ``loss`` (mean over clips), ``lr``, ``seconds``.
    """
    if not isinstance(model, VideoMAE):
        raise bad_arg("model", "a vtlib VideoMAE", type(model).__name__, "build VideoMAE(...) first")
    if not isinstance(cfg, PretrainConfig):
        raise bad_arg("cfg", "a PretrainConfig", type(cfg).__name__, "pass PretrainConfig(epochs=..., ...)")
    seed_everything(cfg.seed)
    device = torch.device(cfg.device) if cfg.device else get_device()
    model.to(device).train()
    steps = len(loader)
    if steps == 0:
        raise bad_arg("loader", "at least one batch", "an empty loader", "check the dataset split")
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    total = cfg.epochs * steps
    scheduler = warmup_cosine(optimizer, min(total, round(cfg.warmup_epochs * steps)), total)
    if isinstance(getattr(loader, "generator", None), torch.Generator):
        loader.generator.manual_seed(cfg.seed)                            # same shuffles for the same seed
    mask_gen, aug_gen = torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 1)
    show = is_interactive() if cfg.progress is None else cfg.progress
    history = []
    for epoch in range(cfg.epochs):
        t0, loss_sum, n = time.perf_counter(), torch.zeros((), device=device), 0
        for batch in loader:
            x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device)
            if cfg.augment is not None:
                x = cfg.augment(x, aug_gen)
            mask = make_mask(cfg.mask_kind, x.shape[0], model.grid, cfg.mask_ratio, mask_gen, device)
            loss, _ = model(x, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * x.shape[0]
            n += x.shape[0]
        history.append({"epoch": epoch + 1, "loss": (loss_sum / n).item(), "lr": lr,
                        "seconds": time.perf_counter() - t0})
        if show:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.4f}")
    model.eval()
    return history


def load_pretrained(path, **kwargs) -> VideoMAE:
    """A ``VideoMAE(**kwargs)`` holding the weights saved at ``path`` by ``vtlib.checkpoint.save_weights``.

    The file's fingerprint must match the model ``kwargs`` build: other ``heads`` or ``drop_path``
    (same tensor shapes) are refused with an error that names the difference.
    """
    return load_weights(VideoMAE(**kwargs), path).eval()

