"""Result files: what produced them (``provenance``) and CSV rows written atomically and read back.

Shared by the experiment commands (``vtlib.experiments``), the benchmark (``vtlib.bench``) and the lab;
``vtlib.experiments.common`` re-exports all three. Values are read back as strings.
"""
from __future__ import annotations

import csv
import os
import platform
import sys
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``), or "unknown".

    Speed results depend on it: the same kernel can cost a different share of a step on another CPU.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance() -> dict:
    """What produced a results file: command, torch version, platform, CPU, threads."""
    main = sys.modules.get("__main__")
    module = getattr(getattr(main, "__spec__", None), "name", None) or Path(sys.argv[0]).stem
    return {"command": f"python -m {module}",
            "argv": " ".join(sys.argv[1:]), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": cpu_name(), "threads": torch.get_num_threads()}


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write rows atomically (temp file + rename); columns are the union of the rows' keys."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def read_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV file as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
