"""Every link and every "notebook NN" a learner reads points at something that is in the repository."""
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXISTING = {p.name[:2] for p in NOTEBOOKS}
MARKDOWN = [REPO / "README.md", REPO / "data" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# "notebook 05", "notebooks 02 and 07", "notebooks 01-09", "notebooks 05, 06 and 08"
REFERENCE = re.compile(r"\b[Nn]otebooks? (\d\d(?:(?:, | and | or |-|–)\d\d)*)")


def texts():
    """(where, text) for the README files and every markdown cell of every notebook."""
    for path in MARKDOWN:
        yield path.relative_to(REPO).as_posix(), path.read_text(), path.parent
    for path in NOTEBOOKS:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                yield f"{path.name} cell {i}", "".join(cell["source"]), path.parent


def referenced(match: str) -> list[str]:
    numbers = re.findall(r"\d\d", match)
    if re.search(r"\d\d[-–]\d\d", match) and len(numbers) == 2:
        return [f"{n:02d}" for n in range(int(numbers[0]), int(numbers[1]) + 1)]
    return numbers


def test_reference_parser():
    assert referenced("05") == ["05"]
    assert referenced("02 and 07") == ["02", "07"]
    assert referenced("01-03") == ["01", "02", "03"]
    assert [m.group(1) for m in REFERENCE.finditer("see notebook 10 and notebooks 02 and 07")] == ["10", "02 and 07"]


TEXTS = list(texts())


@pytest.mark.parametrize("where,text,folder", TEXTS, ids=[t[0] for t in TEXTS])
def test_links_and_notebook_references_exist(where, text, folder):
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor
        if not (folder / target.split("#")[0]).exists():
            missing.append(f"link {target}")
    for match in REFERENCE.finditer(text):
        numbers = referenced(match.group(1))
        if re.search(r"[-–]", match.group(1)):
            numbers = [numbers[0], numbers[-1]]   # a range ("notebooks 01-09") must start and end at one
        missing += [f"notebook {n}" for n in numbers if n not in EXISTING]
    assert not missing, f"{where} points at what the repository does not have: {missing}"
