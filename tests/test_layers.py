"""Imports in vtlib flow one way: core < models < train / Hugging Face ports < commands. No cycles."""
import ast
from pathlib import Path

import pytest

VTLIB = Path(__file__).resolve().parents[1] / "vtlib"
COMMANDS = ("bench", "fit_bench", "experiments", "lab", "exercises", "course")
TRAINING = ("train", "checkpoint", "pretrain", "hf", "features", "transfer")


def layer(module: str) -> int:
    """0 core, 1 models, 2 training and ports, 3 commands (bench, experiments, lab, exercises, course)."""
    top = module.split(".")[1] if module.count(".") else ""
    if top in COMMANDS:
        return 3
    if top in TRAINING:
        return 2
    if top == "models":
        return 1
    return 0


def modules() -> dict[str, Path]:
    out = {}
    for path in VTLIB.rglob("*.py"):
        parts = path.relative_to(VTLIB.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, name: str) -> set[str]:
    """Every vtlib module ``path`` imports, at the top or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vtlib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("vtlib"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    known = modules()
    return {m for m in found if m in known and m != name}


MODULES = modules()
GRAPH = {name: imports(path, name) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_upward_import(name):
    up = sorted(m for m in GRAPH[name] if layer(m) > layer(name))
    assert not up, f"{name} (layer {layer(name)}) imports {up} from a higher layer"


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_the_checker_sees_imports_inside_functions():
    assert "vtlib.hf" in GRAPH["vtlib.bench"]
    assert layer("vtlib.hf.common") == layer("vtlib.hf.videomae") == layer("vtlib.train") == 2
    assert layer("vtlib.stats") == 0 and layer("vtlib.models.vivit") == 1 and layer("vtlib.lab") == 3


def test_the_benchmark_does_not_depend_on_the_experiments():
    """vtlib.bench (a command, like the experiments) imports nothing from vtlib.experiments, directly or
    through the modules it imports, at the top or inside a function."""
    seen, todo = set(), ["vtlib.bench"]
    while todo:
        for m in GRAPH[todo.pop()] - seen:
            seen.add(m)
            todo.append(m)
    bad = sorted(m for m in seen if m == "vtlib.experiments" or m.startswith("vtlib.experiments."))
    assert not bad, f"vtlib.bench depends on {bad}"
    assert {"vtlib.models.vtn", "vtlib.hf.longformer", "vtlib.records"} <= GRAPH["vtlib.bench"]
