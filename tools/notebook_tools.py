"""Build, execute and lint the course notebooks.

Each notebook's source of truth is a percent-format script in ``notebooks/src/NN_name.py``
(``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell whose lines start with ``# ``;
``# %% tags=["nbval-ignore-output"]`` marks a code cell whose output nbval does not compare).
``build`` turns it into ``notebooks/NN_name.ipynb`` and executes it top to bottom on a fresh
kernel in the CPU environment CI uses, so the stored outputs are the ones nbval compares.

    python tools/notebook_tools.py build notebooks/src/00_video_as_data.py
    python tools/notebook_tools.py prose notebooks/src/00_video_as_data.py   # markdown edits only
    python tools/notebook_tools.py check            # structural lint of notebooks/*.ipynb
    python tools/notebook_tools.py times            # run nbval over the course, write results/notebook_times.csv,
                                                    # print each notebook's time, the total and the budget verdict
    python tools/notebook_tools.py times notebooks/10_vtn.ipynb   # re-time one notebook, keep the other rows
    python tools/notebook_tools.py headers          # set each notebook's "Time:" line from that file

``tests/test_notebooks.py`` runs the lint, checks that every .ipynb matches its source and that
each "Time:" header says what ``results/notebook_times.csv`` measured. Run ``times`` on a quiet
machine: the stored times are what a learner is told to expect.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
SRC_DIR = NB_DIR / "src"
TAGS = {"nbval-ignore-output", "nbval-skip", "nbval-check-output", "raises-exception"}   # read by nbval
MAX_BYTES = 3_000_000
TIMES_CSV = REPO / "results" / "notebook_times.csv"
NOTEBOOK_BUDGET_S, COURSE_BUDGET_S = 240, 900       # 4 minutes a notebook, 15 for the course, on 2 CPU cores
TIME_LINE = re.compile(r"\*\*Time:\*\* (?P<phrase>under a minute|about a minute|about [\d.]+ minutes?)")


def time_phrase(seconds: float) -> str:
    """What a header says for a measured run time: under a minute, about a minute, about N minutes."""
    if seconds < 45:
        return "under a minute"
    if seconds < 90:
        return "about a minute"
    return f"about {int(seconds / 60 + 0.5)} minutes"


def budget_report(seconds: dict[str, float]) -> list[str]:
    """Lines saying whether each notebook and the whole course are within the course's time budgets."""
    longest = max(seconds, key=seconds.get)
    over = [s for s, t in seconds.items() if t > NOTEBOOK_BUDGET_S]
    total = sum(seconds.values())
    return [f"longest notebook: {longest} at {seconds[longest]:.0f} s; budget {NOTEBOOK_BUDGET_S} s each: "
            + ("met" if not over else "over in " + ", ".join(over)),
            f"course: {total:.0f} s ({total / 60:.1f} min); budget {COURSE_BUDGET_S} s: "
            + ("met" if total <= COURSE_BUDGET_S else "over")]


def read_times(path: Path = TIMES_CSV) -> dict[str, float]:
    """{notebook stem: seconds} from results/notebook_times.csv."""
    import csv

    with open(path, newline="") as f:
        return {row["notebook"]: float(row["seconds"]) for row in csv.DictReader(f)}


def measure_times(junit: Path | None = None, notebooks: list[str] | None = None) -> dict[str, float]:
    """Seconds per notebook under nbval (the course's test command), summed over its cells.

    ``notebooks``: paths of the notebooks to run (default: the whole course).
    """
    import subprocess
    import tempfile
    import xml.etree.ElementTree as ET

    if junit is None:
        junit = Path(tempfile.mkdtemp()) / "nbval.xml"
        env = dict(os.environ, VTLIB_NO_PROGRESS="1", PYTHONHASHSEED="0",
                   MPLBACKEND="module://matplotlib_inline.backend_inline")
        subprocess.run([sys.executable, "-m", "pytest", *(notebooks or ["notebooks"]), "--nbval", "--nbval-current-env",
                        "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-p", "no:cacheprovider", "-q",
                        f"--junitxml={junit}"], cwd=REPO, env=env, check=False)
    stems = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
    seconds: dict[str, float] = {}
    for case in ET.parse(junit).iter("testcase"):    # classname "notebooks.NN_name.ipynb", name "Cell k"
        where = f"{case.get('classname', '')} {case.get('file', '')}"
        stem = next((s for s in stems if f"{s}.ipynb" in where or f"{s}/ipynb" in where), None)
        if stem is not None:
            seconds[stem] = seconds.get(stem, 0.0) + float(case.get("time", 0))
    return dict(sorted(seconds.items()))


def write_times(seconds: dict[str, float], path: Path = TIMES_CSV) -> None:
    import csv
    import platform

    import torch

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["notebook", "seconds", "cpus", "torch_threads", "torch", "date", "command"])
        for stem, s in seconds.items():
            w.writerow([stem, f"{s:.1f}", os.cpu_count(), torch.get_num_threads(), torch.__version__,
                        time.strftime("%Y-%m-%d"), f"python tools/notebook_tools.py times ({platform.machine()})"])


def set_headers(seconds: dict[str, float]) -> list[str]:
    """Rewrite the "Time:" phrase of each source and notebook to match the measured seconds."""
    changed = []
    for stem, s in seconds.items():
        for path in (SRC_DIR / f"{stem}.py", NB_DIR / f"{stem}.ipynb"):
            text = path.read_text(encoding="utf-8")
            m = TIME_LINE.search(text)
            if m is None:
                raise SystemExit(f"{path}: no '**Time:** about ...' line to update")
            new = text[:m.start("phrase")] + time_phrase(s) + text[m.end("phrase"):]
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed.append(path.name)
    return changed


def parse_percent(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Split a percent-format script into (cell_type, source, tags) triples.

    ``# %% tags=["nbval-ignore-output"]`` puts tags in the cell's metadata, where nbval reads them;
    the learner's code stays free of test-harness comments.
    """
    cells: list[tuple[str, list[str], tuple[str, ...]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            match = re.search(r"tags=(\[.*\])", line)
            tags = tuple(json.loads(match.group(1))) if match else ()
            unknown = set(tags) - TAGS
            if unknown:
                raise ValueError(f"cell tags {sorted(unknown)} in {line!r}: expected some of {sorted(TAGS)}")
            cells.append((kind, [], tags))
            continue
        if not cells:
            continue  # module header before the first cell marker is ignored
        kind, lines, _ = cells[-1]
        if kind == "markdown":
            if line.startswith("# "):
                line = line[2:]
            elif line.strip() == "#":
                line = ""
        lines.append(line)
    out = []
    for kind, lines, tags in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        out.append((kind, "\n".join(lines), tags))
    return out


def source_cells(nb: dict) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c["cell_type"], "".join(c["source"]), tuple(c.get("metadata", {}).get("tags", ())))
            for c in nb["cells"]]


def to_notebook(src: Path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    for kind, source, tags in parse_percent(src.read_text(encoding="utf-8")):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def _normalise(nb) -> None:
    """Deterministic cell ids, no widget state, no per-cell execution metadata."""
    nb.metadata.pop("widgets", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)


def build(src: Path, timeout: int = 600) -> float:
    """Convert and execute one notebook; write it next to ``notebooks/``; return seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    nb = to_notebook(src)
    os.environ.setdefault("VTLIB_NO_PROGRESS", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(NB_DIR)}}).execute()
    seconds = time.perf_counter() - t0
    _normalise(nb)
    dest = NB_DIR / (src.stem + ".ipynb")
    tmp = dest.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(dest)
    return seconds


def prose(src: Path) -> int:
    """Copy the markdown cells of ``src`` into its executed notebook without re-running it.

    Refused (returns 1, writes nothing) unless the code cells and the cell order are unchanged:
    stored outputs must always come from executing exactly the code in the source.
    """
    import nbformat

    dest = NB_DIR / (src.stem + ".ipynb")
    nb = nbformat.read(str(dest), as_version=4)
    new = parse_percent(src.read_text(encoding="utf-8"))
    old = source_cells(nb)
    same_code = [c for c in new if c[0] == "code"] == [c for c in old if c[0] == "code"]
    if len(new) != len(old) or [c[0] for c in new] != [c[0] for c in old] or not same_code:
        print(f"{src.stem}: code cells or cell order changed; run `build` instead")
        return 1
    for cell, (kind, source, _) in zip(nb.cells, new):
        if kind == "markdown":
            cell["source"] = source
    tmp = dest.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(dest)
    print(f"{src.stem}: markdown updated")
    return 0


def marker_of(cell: dict) -> str | None:
    """The nbval tag of a code cell, or "COMMENT:<line>" for a harness comment left in the code."""
    for line in "".join(cell["source"]).splitlines():
        if line.strip().startswith("#") and "NBVAL" in line.upper():
            return "COMMENT:" + line.strip()
    tags = [t for t in cell.get("metadata", {}).get("tags", []) if t in TAGS]
    return tags[0] if tags else None


def lint(path: Path) -> list[str]:
    """Structural problems nbval would trip on (or that would make its check meaningless)."""
    problems = []
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"file is {path.stat().st_size / 1e6:.1f} MB (keep under {MAX_BYTES / 1e6:.0f} MB)")
    nb = json.loads(path.read_text(encoding="utf-8"))
    if "widgets" in nb.get("metadata", {}):
        problems.append("saved widget state in notebook metadata")
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append("kernelspec is not python3")
    expected = 1
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown" and re.search(r"nbval|pytest", "".join(cell["source"]), re.IGNORECASE):
            problems.append(f"cell {i}: test-harness words in the prose a learner reads (the README explains "
                            "the checks once)")
        if cell["cell_type"] != "code" or not "".join(cell["source"]).strip():
            continue
        src = "".join(cell["source"])
        n = cell.get("execution_count")
        if n != expected:
            problems.append(f"cell {i}: execution_count {n}, expected {expected}")
        expected = (n or expected) + 1
        m = marker_of(cell)
        if m and m.startswith("COMMENT:"):
            problems.append(f"cell {i}: test-harness comment in the learner's code ({m[8:]!r}); "
                            "use a cell tag: # %% tags=[\"nbval-ignore-output\"]")
        last = src.rstrip().splitlines()[-1].rstrip()
        if last.endswith(";") and m is None:
            problems.append(f"cell {i}: last line ends with ';' (nbval 0.11 bug; use plt.show())")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: stored error output ({out.get('ename')})")
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and m is None:
                problems.append(f"cell {i}: stderr output in a checked cell")
            data = out.get("data", {})
            if "image/svg+xml" in data:
                problems.append(f"cell {i}: SVG output (embeds a date; use PNG)")
            if "application/vnd.jupyter.widget-view+json" in data:
                problems.append(f"cell {i}: widget output stored")
            text = "".join(out.get("text", "")) + "".join(data.get("text/plain", ""))
            if re.search(r"\bat 0x[0-9a-fA-F]+", text) and m != "nbval-ignore-output":
                problems.append(f"cell {i}: output holds a memory address")
    return problems


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"build", "prose", "check", "times", "headers"}:
        print(__doc__)
        return 2
    if argv[0] == "build":
        srcs = [Path(a) for a in argv[1:]] or sorted(SRC_DIR.glob("*.py"))
        for src in srcs:
            seconds = build(src)
            print(f"{src.stem}: executed in {seconds:.1f} s")
        return 0
    if argv[0] == "times":
        some = [a for a in argv[1:] if a.endswith(".ipynb")]        # times notebooks/NN_x.ipynb: only those rows
        junit = next((Path(a) for a in argv[1:] if a.endswith(".xml")), None)
        seconds = measure_times(junit, some or None)
        if some:
            seconds = {**read_times(), **seconds}
        write_times(seconds)
        for stem, s in seconds.items():
            print(f"{stem}: {s:.1f} s ({time_phrase(s)})")
        print(*budget_report(seconds), sep="\n")
        print(f"written to {TIMES_CSV.relative_to(REPO)}")
        return 0
    if argv[0] == "headers":
        print("updated:", ", ".join(set_headers(read_times())) or "nothing")
        return 0
    if argv[0] == "prose":
        return max(prose(Path(a)) for a in argv[1:]) if argv[1:] else 2
    bad = 0
    for path in sorted(NB_DIR.glob("*.ipynb")):
        for problem in lint(path):
            print(f"{path.name}: {problem}")
            bad += 1
    print(f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
