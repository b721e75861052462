"""Reference solutions for notebook 11's exercises (CNN baselines)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import DataLoader, TensorDataset


# exercise 1
def acs_conv3d(x, weight, split, stride=1):
    """x (B, C_in, D, H, W), weight (C_out, C_in, k, k), split (a, c, s) -> (B, C_out, D', H', W')."""
    p = weight.shape[-1] // 2
    w_a, w_c, w_s = weight.split(list(split), dim=0)
    parts = [(w_a.unsqueeze(2), (0, p, p)),      # axial (a, C_in, 1, k, k): within a frame
             (w_c.unsqueeze(3), (p, 0, p)),      # coronal (c, C_in, k, 1, k): time x width
             (w_s.unsqueeze(4), (p, p, 0))]      # sagittal (s, C_in, k, k, 1): time x height
    return torch.cat([F.conv3d(x, w, stride=stride, padding=pad) for w, pad in parts if w.shape[0] > 0], dim=1)


# exercise 2
def to_frames(x):
    """(B, T, H, W, C) -> (B*T, C, H, W), clip 0's frames first."""
    return rearrange(x, "b t h w c -> (b t) c h w")


def from_frames(f, b):
    """(B*T, C, H, W) -> (B, T, H, W, C)."""
    return rearrange(f, "(b t) c h w -> b t h w c", b=b)


# exercise 3
def scrambled_test_auc(fusion, order, *, size=28, n_train=1024, epochs=3, width=8, seed=0):
    """Train FusionCNN(fusion) on direction clips with frames x[:, :, order] (every split); return test AUC."""
    from vtlib.experiments.common import loaders
    from vtlib.models.fusion import FusionCNN
    from vtlib.train import TrainConfig, fit

    data = loaders("direction", n_train=n_train, size=size, frames=len(order), seed=seed)
    scrambled = {split: DataLoader(TensorDataset(loader.dataset.tensors[0][:, :, list(order)],
                                                 loader.dataset.tensors[1]),
                                   batch_size=32, shuffle=split == "train",
                                   generator=torch.Generator().manual_seed(seed))
                 for split, loader in data.items()}
    torch.manual_seed(seed)
    model = FusionCNN(fusion=fusion, frames=len(order), width=width)
    cfg = TrainConfig(epochs=epochs, lr=3e-3, seed=seed, progress=False)
    return fit(model, scrambled["train"], scrambled["val"], cfg, test_loader=scrambled["test"]).test["auc"]


ANSWERS = {"early": True, "slow": True}   # a fixed order, the same in every clip, keeps the motion readable
