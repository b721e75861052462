"""Checkpoints that know what wrote them: atomic writes, clear errors, and a model fingerprint.

A checkpoint written by ``vtlib.train.fit`` is a dict with the weights, the optimiser and the
scheduler, every RNG state (including the dataset's own augmentation generator) and a
**fingerprint** of the model: its class, the names and shapes of its parameters and buffers, and
the settings its modules hold (``heads``, ``p`` of a DropPath, ``window`` ...). Two models whose
tensors have the same shapes but differ in such a setting (other heads, other drop_path) have
different fingerprints, so a checkpoint of one is never loaded into the other without a word.

    fingerprint(model)                    -> dict, JSON-friendly
    check_fingerprint(saved, model, path) -> None, or an error naming the first differences
    save_checkpoint(state, path)          atomic: a temp file in the same folder, then os.replace
    load_checkpoint(path, expect=...)     an error naming the file and a fix for a truncated,
                                          foreign or plain state_dict file
    save_weights(model, path)             weights + fingerprint only (tensors and plain values, so
    load_weights(model, path)             they load with torch.load(weights_only=True))
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterable

import torch
from torch import nn

from vtlib.errors import VtlibError

SETTING_TYPES = (bool, int, float, str)


def _settings(module: nn.Module) -> dict[str, Any]:
    """The plain settings a module keeps as attributes (ints, floats, bools, strings, tuples of them)."""
    out = {}
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, SETTING_TYPES) or (
                isinstance(value, tuple) and all(isinstance(v, SETTING_TYPES) for v in value)):
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def fingerprint(model: nn.Module) -> dict:
    """What identifies a model's architecture: class, tensor names and shapes, module settings."""
    if not isinstance(model, nn.Module):
        raise VtlibError(f"model: expected a torch.nn.Module, got {type(model).__name__}. "
                         "Fix: pass the model the checkpoint belongs to")
    cls = type(model)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "parameters": {n: list(p.shape) for n, p in model.named_parameters()},
        "buffers": {n: list(b.shape) for n, b in model.named_buffers()},
        "settings": {f"{name}.{key}" if name else key: value for name, m in model.named_modules()
                     for key, value in _settings(m).items()},
    }


def _differences(saved: dict, now: dict) -> list[str]:
    diffs = []
    if saved.get("class") != now["class"]:
        diffs.append(f"class {saved.get('class')} vs {now['class']}")
    for part in ("parameters", "buffers", "settings"):
        a, b = saved.get(part, {}), now[part]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diffs.append(f"{part[:-1]} {key}: {a.get(key, 'absent')} vs {b.get(key, 'absent')}")
    return diffs


def check_fingerprint(saved: dict | None, model: nn.Module, path: str | os.PathLike,
                      name: str = "checkpoint_path") -> None:
    """Raise if the checkpoint at ``path`` (fingerprint ``saved``) was written by another model;
    ``name`` is the argument the error names."""
    if saved is None:
        raise VtlibError(f"{name}: expected a checkpoint with a model fingerprint, got {path}, "
                         "written without one (by an older vtlib?). Fix: delete it to start over, or "
                         "pass a new checkpoint_path")
    diffs = _differences(saved, fingerprint(model))
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise VtlibError(f"{name}: expected a checkpoint of this model, got {path}, written by a "
                         f"different one (saved vs now: {shown}). Fix: build the model with the same "
                         f"arguments{', or pass a new checkpoint_path' if name == 'checkpoint_path' else ''}")


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write atomically: a temp file in the same folder, then ``os.replace``. A failure midway
    leaves the previous checkpoint untouched and removes the temp file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ckpt-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, expect: Iterable[str] = (), *, weights_only: bool = False) -> dict:
    """Read a checkpoint; ``expect`` names keys it must hold (e.g. those ``fit`` writes).

    A truncated or foreign file, or a plain ``state_dict`` where a full checkpoint is expected, gets
    an error that names the file and says what to do, instead of an unpickling traceback.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise VtlibError(f"checkpoint: expected a file, got {path}, which does not exist. "
                         "Fix: check the path") from None
    except Exception as e:  # truncated zip, random bytes, a pickle of something else
        raise VtlibError(f"checkpoint: expected a file written by torch.save, got {path}, which cannot be read "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}). Fix: it is "
                         "truncated or not a checkpoint; delete it to start over, or pass another path") from None
    expect = list(expect)
    if expect:
        if not isinstance(state, dict):
            raise VtlibError(f"checkpoint: expected a dict with keys {expect}, got a {type(state).__name__} "
                             f"in {path}. Fix: pass a checkpoint written by vtlib.train.fit")
        missing = [k for k in expect if k not in state]
        if missing:
            plain = all(isinstance(v, torch.Tensor) for v in state.values())
            hint = (" It looks like a plain state_dict: load it with model.load_state_dict(torch.load(path)) "
                    "and give fit a new checkpoint_path." if plain and state else
                    " Fix: pass a checkpoint written by vtlib.train.fit, or a new checkpoint_path.")
            raise VtlibError(f"checkpoint: expected the keys {missing} that fit writes, got {path} with keys "
                             f"{sorted(state)[:6]}{' ...' if len(state) > 6 else ''}.{hint}")
    return state


def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save ``model``'s weights (on the CPU) with its fingerprint, atomically, readable by all (0644)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint({"model": state, "fingerprint": fingerprint(model)}, path)
    os.chmod(path, 0o644)                                   # temp files are created private (0600)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by :func:`save_weights` into ``model`` after checking the fingerprint."""
    state = load_checkpoint(path, expect=("model", "fingerprint"), weights_only=True)
    check_fingerprint(state["fingerprint"], model, path, name="path")
    model.load_state_dict(state["model"])
    return model
