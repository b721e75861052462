"""Structural checks of the committed notebooks (nbval itself re-runs them and compares outputs)."""
import json
import re

import pytest
from notebook_tools import NB_DIR, SRC_DIR, lint, parse_percent, source_cells

NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
README = (NB_DIR.parent / "README.md").read_text(encoding="utf-8")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_structure(path):
    assert lint(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_matches_its_source(path):
    """The .ipynb was built from notebooks/src/<name>.py and nobody edited one without the other."""
    src = SRC_DIR / (path.stem + ".py")
    assert src.exists(), f"missing source {src}"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert source_cells(nb) == parse_percent(src.read_text(encoding="utf-8")), (
        f"{path.name} differs from {src.name}: rebuild with python tools/notebook_tools.py build {src}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_listed_in_readme_course_map(path):
    assert f"notebooks/{path.name}" in README


def test_readme_lists_no_missing_notebook():
    for name in re.findall(r"notebooks/(\d\d_\w+\.ipynb)", README):
        assert (NB_DIR / name).exists(), f"README links {name}, which does not exist"


def test_learner_files_do_not_cite_files_learners_do_not_have():
    library = sorted((NB_DIR.parent / "vtlib").rglob("*.py"))     # learners read the library too
    for path in [NB_DIR.parent / "README.md", *NOTEBOOKS, *sorted(SRC_DIR.glob("*.py")), *library]:
        text = path.read_text(encoding="utf-8")
        for needle in ("reference/papers.md", "reference/course-engineering.md", "../shared"):
            assert needle not in text, f"{path.name} cites {needle}, which is not in the repository"


def test_time_phrases():
    from notebook_tools import time_phrase

    assert [time_phrase(s) for s in (8.6, 44.9, 45, 89.9, 90, 149, 151, 239)] == [
        "under a minute", "under a minute", "about a minute", "about a minute", "about 2 minutes",
        "about 2 minutes", "about 3 minutes", "about 4 minutes"]


@pytest.mark.parametrize("path", sorted(SRC_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_time_header_says_what_was_measured(path):
    """Each "Time:" header is the nbval run time in results/notebook_times.csv, rounded as time_phrase says."""
    from notebook_tools import TIME_LINE, TIMES_CSV, read_times, time_phrase

    seconds = read_times().get(path.stem)
    assert seconds is not None, f"{path.stem}: no measured time in {TIMES_CSV.name}; run tools/notebook_tools.py times"
    m = TIME_LINE.search(path.read_text())
    assert m, f"{path.name} has no '**Time:** about ...' line"
    assert m.group("phrase") == time_phrase(seconds), (
        f"{path.name} says '{m.group('phrase')}', nbval measured {seconds:.0f} s ({time_phrase(seconds)}): "
        "run tools/notebook_tools.py headers")


def test_readme_course_time_is_the_measured_total():
    from notebook_tools import COURSE_BUDGET_S, NOTEBOOK_BUDGET_S, budget_report, read_times

    seconds = read_times()
    m = re.search(r"the whole course in about (\d+) minutes", README)
    assert m, "README should say how long the whole course takes"
    assert int(m.group(1)) == round(sum(seconds.values()) / 60), (
        f"README says {m.group(1)} minutes, results/notebook_times.csv sums to {sum(seconds.values()):.0f} s")
    assert set(seconds) == {p.stem for p in NOTEBOOKS}, "time every notebook: tools/notebook_tools.py times"
    within = max(seconds.values()) <= NOTEBOOK_BUDGET_S and sum(seconds.values()) <= COURSE_BUDGET_S
    assert within, budget_report(seconds)


def test_cell_tags_come_from_the_source_and_harness_words_are_refused(tmp_path):
    cells = parse_percent('# %% [markdown]\n# Intro\n\n# %% tags=["nbval-ignore-output"]\nprint(1)\n\n# %%\nx = 2\n')
    assert cells == [("markdown", "Intro", ()), ("code", "print(1)", ("nbval-ignore-output",)), ("code", "x = 2", ())]
    with pytest.raises(ValueError, match="nbval-skip"):
        parse_percent('# %% tags=["nbval-skipp"]\nx = 1\n')
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "Outputs are checked by nbval."},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
                     "source": "# NBVAL_IGNORE_OUTPUT\nprint(1)"}],
          "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps(nb))
    problems = lint(path)
    assert any("test-harness words" in p for p in problems) and any("use a cell tag" in p for p in problems)


def test_budget_report_names_the_notebooks_over_budget():
    from notebook_tools import budget_report

    ok = budget_report({"00_a": 30.0, "01_b": 200.0})
    assert ok[0].startswith("longest notebook: 01_b at 200 s") and ok[0].endswith("met")
    assert ok[1] == "course: 230 s (3.8 min); budget 900 s: met"
    over = budget_report({"00_a": 250.0, "01_b": 700.0})
    assert over[0].endswith("over in 00_a, 01_b") and over[1].endswith("over")
