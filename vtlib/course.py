"""Set up the course and open it, or set it up and test it: ``python -m vtlib.course lab|test``.

Standard library only, so it runs before anything is installed. It
1. creates a virtual environment in ``.venv`` (or reuses it),
2. installs vtlib with pinned dependencies (``pyproject.toml``) and ``medmnist`` without its
   dependencies (the course never needs torchvision, and a torchvision wheel that does not match
   torch breaks ``import transformers``),
3. makes sure the AdrenalMNIST3D files the notebooks use are in the data root (downloading them
   if needed; ``VTLIB_DATA`` may point at a folder that already holds them),
4. opens JupyterLab on ``notebooks/`` (``lab``) or runs the unit tests and nbval over every
   notebook (``test``). Extra arguments after ``test`` are passed to pytest.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("VTLIB_VENV", REPO / ".venv"))
MEDMNIST = "medmnist==3.0.2"
PYTEST_ARGS = ["tests", "notebooks", "--nbval", "--nbval-current-env",
               "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-p", "no:cacheprovider"]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd: str | os.PathLike, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=REPO, **kw)


def install(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"vtlib needs Python >= 3.10; this is {sys.version.split()[0]}. "
                 "Install a newer Python (or use environment.yml with conda).")
    if not venv_python().exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    py = venv_python()
    stamp = VENV / f".vtlib-installed-{extras}"
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        print(f"dependencies up to date in {VENV}", flush=True)
    else:
        run(py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", f".[{extras}]")
        run(py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", MEDMNIST)
        stamp.write_text(digest)
    # A torchvision that cannot import (e.g. built for another torch) breaks `import transformers`.
    probe = subprocess.run([str(py), "-c", "import importlib.util as u, sys; "
                            "sys.exit(0 if u.find_spec('torchvision') is None else 1)"], cwd=REPO)
    if probe.returncode != 0:
        ok = subprocess.run([str(py), "-c", "import torchvision"], cwd=REPO, capture_output=True)
        if ok.returncode != 0:
            print("removing a torchvision that cannot import (the course does not use it)", flush=True)
            run(py, "-m", "pip", "uninstall", "-y", "-q", "torchvision")


def fetch_data() -> None:
    code = ("from vtlib.data import ensure_file, data_root\n"
            "for size in (28, 64):\n"
            "    print('data:', ensure_file('adrenal', size))\n")
    run(venv_python(), "-c", code)


def lab_command(is_root: bool | None = None) -> list[str]:
    """``jupyter lab notebooks``; as root (Docker, many cloud machines) JupyterLab refuses to start
    unless told ``--allow-root``, so the flag is added there, and said."""
    cmd = [str(venv_python()), "-m", "jupyter", "lab", "notebooks"]
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root:
        print("running as root: starting JupyterLab with --allow-root", flush=True)
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test"}:
        print(__doc__)
        return 2
    mode, extra = argv[0], argv[1:]
    install("test,lab")  # the tests include JupyterLab in a real browser (tests/test_browser.py)
    fetch_data()
    env = dict(os.environ, PYTHONHASHSEED="0")
    if mode == "lab":
        run(*lab_command(), env=env)
        return 0
    env.setdefault("VTLIB_NO_PROGRESS", "1")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    result = subprocess.run([str(venv_python()), "-m", "pytest", *PYTEST_ARGS, *extra], cwd=REPO, env=env)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
