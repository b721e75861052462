"""The linter configured in pyproject.toml (ruff: pycodestyle, pyflakes, import order) is clean on the repo."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                             str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert "No module named ruff" not in result.stderr, "install the test extras: pip install -e '.[test]'"
    assert result.returncode == 0, f"ruff found problems (fix them, or run ruff check --fix):\n{result.stdout}"
