"""environment.yml pins the same versions as pyproject.toml, so conda and pip users match."""
import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | {p for extra in project["optional-dependencies"].values() for p in extra}
    env = set(re.findall(r"^\s+- ([\w-]+==[\w.]+)\s*$", (REPO / "environment.yml").read_text(), re.M))
    assert pins == env


def test_every_dependency_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        assert "==" in dep, dep
