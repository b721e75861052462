"""Launched by tests/test_train.py on 2 CPU processes: vtlib.train.fit through Hugging Face Accelerate.

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/accelerate_script.py OUT_DIR
Each process writes OUT_DIR/rank<i>.json with what it saw; the test compares them.
"""
import json
import os
import sys

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vtlib.train as train


def main(out_dir: str) -> None:
    accelerator = Accelerator(cpu=True)
    saves = []
    real_save = train.save_checkpoint
    train.save_checkpoint = lambda state, path: (saves.append(state["epoch"]), real_save(state, path))

    g = torch.Generator().manual_seed(0)  # the same data on every process
    y = torch.randint(2, (94,), generator=g)
    x = torch.randn(94, 1, 4, 8, 8, generator=g)
    x[:, :, :2] += (y - 0.5).view(-1, 1, 1, 1, 1)  # the label brightens or darkens the first 2 frames
    train_loader = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=8, shuffle=True,
                              generator=torch.Generator())
    val_loader = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=8)  # 30 samples: last batch padded
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    cfg = train.TrainConfig(epochs=2, lr=1e-2, warmup_epochs=0.5, progress=False,
                            checkpoint_path=os.path.join(out_dir, "ckpt.pt"))
    result = train.fit(model, train_loader, val_loader, cfg, accelerator=accelerator)
    report = {"rank": accelerator.process_index, "world_size": accelerator.num_processes,
              "distributed_type": str(accelerator.distributed_type), "best_val": result.best_val,
              "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result.history],
              "saves": saves, "n_val": len(train.evaluate(result.model, accelerator.prepare(val_loader),
                                                          cfg.task, accelerator=accelerator)["labels"]),
              "bias": result.model[1].bias.tolist()}
    with open(os.path.join(out_dir, f"rank{accelerator.process_index}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1])
