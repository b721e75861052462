"""Numbers in the notebooks' prose must agree with what the notebooks compute.

A *claim* is a number in a markdown cell that states a measurement: a decimal (0.767, 6.2×), a number
with a unit (15 s, 4×, 23 %, 490 kB), or a count of clips/volumes/tokens/parameters/FLOPs ("a 298-clip
test set"). Shapes (4×7×7), exponents (28³), code spans, links, the "Time:" header (kept true by
``notebook_tools headers``) and the References section are not claims.

A claim is *sourced* when its value, rounded as the prose rounds it, appears

- in the notebook's stored outputs (printed by a cell; the usual case), or
- in the notebook's code (a configuration value: "8 epochs", "75 %" for ``ratio=0.75``), or
- in what a ``<!-- from: SOURCE -->`` comment declares for the claims before it on the same line, where
  SOURCE is ``results/NAME.csv`` (checked: the value must be in that file), ``notebook NN`` (checked: in
  that notebook's outputs), or ``paper: ...``, ``published: ...``, ``config: ...``, ``definition: ...``
  for a fixed fact that is not recomputed (the comment keeps its source next to it). Comments render
  invisibly in Jupyter and on GitHub.

A whole number with a unit ("12×", "15 s", "23 %") is backed only by a number written with the same
unit (a percent also by the fraction, 0.23): a bare 12 or 15 somewhere in the outputs is no evidence.

``python tools/prose_numbers.py`` lists every claim without a source; ``tests/test_prose_numbers.py``
fails on any.
"""
from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # notebook_tools, next to this file
REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"

NUMBER = r"\d{1,3}(?:[, \u2009\u202f]\d{3})+(?:\.\d+)?(?![\d.])|\d+(?:\.\d+)?"   # 1,188 and 16 384 too
UNIT = (r"(?:\s?(?:×|x)(?!\s?\d)|\s?%|\s(?:ms|s|min|minutes?|seconds?|hours?|h)\b|\s?(?:kB|MB|GB|KiB|MiB|GiB)\b)")
COUNT = r"(?:[-\s](?:clips?|volumes?|tokens?|parameters?|params|FLOPs|GFLOPs|MFLOPs|scores?|entries|keys|voxels))\b"
CLAIM = re.compile(rf"(?<![\w.³²/^×·])(?<![A-Za-z]-)(?P<num>{NUMBER})(?P<unit>{UNIT}|{COUNT})?(?![\w³²])")
FROM = re.compile(r"<!--\s*from:\s*(?P<source>.*?)\s*-->")
SKIP_SPANS = re.compile(r"`[^`]*`|\[[^\]]*\]\([^)]*\)|<https?://[^>]*>|https?://\S+|\$[^$]*\$|<!--.*?-->")
CITATION = re.compile(r"(?:arXiv:?\s?|#|v|torch|Python|transformers|Table|Tables|Fig\.?|Figure|section|Sec\.|"
                      r"issue|PR|ICCV|ICML|CVPR|NeurIPS|ICLR|ICCVW|ACL|ECCV|Data|version)\s?$", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    line: str
    text: str         # the number as written, with its unit
    value: float
    decimals: int
    source: str | None   # from a <!-- from: ... --> comment later on the line


def _decimals(num: str) -> int:
    return len(num.split(".")[1]) if "." in num else 0


def claims_in(markdown: str) -> list[Claim]:
    """The measurement claims of one markdown cell (see the module docstring for what counts)."""
    out: list[Claim] = []
    markdown = re.sub(r"^\s*```.*?^\s*```", "", markdown, flags=re.MULTILINE | re.DOTALL)   # code blocks
    for raw in markdown.splitlines():
        if re.match(r"\s*(#+\s*)?\**References", raw):
            break
        if "**Time:**" in raw or re.match(r"\s*#+\s", raw):
            continue                                     # the time header (tested apart) and headings
        sources = [(m.start(), m.group("source")) for m in FROM.finditer(raw)]
        line = SKIP_SPANS.sub(lambda m: " " * len(m.group(0)), raw)
        for m in CLAIM.finditer(line):
            num, unit = m.group("num"), m.group("unit") or ""
            before = line[:m.start()]
            if not unit and "." not in num:
                continue                                 # a bare integer: 3 seeds, 28 frames, depth 4
            if CITATION.search(before) or re.search(r"\d\s?[×x]\s?$", before):
                continue                                 # "Table 1.2", "arXiv 2102.05095", the 7 of 4×7
            if re.match(r"\s?[×x]\s?\d", line[m.end("num"):]):
                continue                                 # a shape: 4×7×7, 2x8x8
            if re.search(r"\d{4}$", num.split(".")[0]) and not unit:
                continue                                 # a year or an id
            source = next((s for pos, s in sources if pos > m.start()), None)
            value = float(re.sub(r"[, \u2009\u202f]", "", num))
            out.append(Claim(raw.strip(), num + unit, value, _decimals(num), source))
    return out


UNITS = {"×": r"(?:×|x\b|times)", "%": r"%", "s": r"(?:s|seconds?)\b", "ms": r"ms\b", "min": r"(?:min|minutes?)\b"}


def numbers_in(text: str, unit: str = "") -> list[float]:
    """Every number written in ``text`` (outputs, code, CSV cells; 1,188, 16 384, x0.97 and 1e-3 included).

    With ``unit`` (a key of ``UNITS``), only the numbers written with that unit right after them.
    """
    after = rf"(?=\s?{UNITS[unit]})" if unit else ""
    values = []
    for m in re.finditer(rf"(?<![A-Za-wyz\d_.])-?(?:\d{{1,3}}(?:[, ]\d{{3}})+(?![\d.])|\d+)(?:\.\d+)?"
                         rf"(?:[eE][-+]?\d+)?{after}", text):
        values.append(float(re.sub(r"[, ]", "", m.group(0))))
        if " " in m.group(0):                    # "16 384" may also be two numbers
            values.extend(float(v) for v in m.group(0).split())
    return values


def _unit(claim: Claim) -> str:
    """The unit an output must show for a whole-number claim to count as backed ("" for any number)."""
    if claim.decimals:
        return ""
    for unit, pattern in (("×", r"\d\s?(?:×|x)$"), ("%", r"%$"), ("ms", r"\sms$"), ("s", r"\s(?:s|seconds?)$"),
                          ("min", r"\s(?:min|minutes?)$")):
        if re.search(pattern, claim.text):
            return unit
    return ""


def _matches(claim: Claim, values: list[float]) -> bool:
    """The claim's value is one of ``values`` rounded as the claim rounds it."""
    half = 0.5 * 10.0 ** -claim.decimals + 1e-9
    return any(abs(abs(v) - claim.value) <= half for v in values)


def _backing(claim: Claim, values: dict[str, list[float]]) -> list[float]:
    """The numbers that can back a claim: a whole-number "12×", "23 %" or "15 s" needs its unit in the
    source; a percent may also be written as a fraction (0.23, 0.857 for 85.7 %); a decimal or a count
    may be any number."""
    unit = _unit(claim)
    if "%" in claim.text:
        return values["%"] + [100 * v for v in values[""] if abs(v) <= 1] + ([] if unit else values[""])
    return values[unit]


def _by_unit(*texts: str) -> dict[str, list[float]]:
    return {u: [v for text in texts for v in numbers_in(text, u)] for u in ("", *UNITS)}


def notebook_texts(path: Path) -> tuple[list[str], str, str]:
    """(markdown cells, text of all stored outputs, text of all code cells) of an executed notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    markdown, outputs, code = [], [], []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            markdown.append(source)
            continue
        code.append(source)
        for out in cell.get("outputs", []):
            outputs.append("".join(out.get("text", "")))
            for kind in ("text/plain", "text/html", "text/markdown"):
                outputs.append("".join(out.get("data", {}).get(kind, "")))
    return markdown, "\n".join(outputs), "\n".join(code)


@lru_cache(maxsize=None)
def _csv_values(name: str) -> dict[str, list[float]]:
    """The numbers of one results CSV; a CSV column holds no units, so each counts for any unit but %."""
    path = REPO / name
    if not path.is_file():
        return {u: [] for u in ("", *UNITS)}
    with open(path, newline="") as f:
        values = _by_unit("\n".join(" , ".join(row) for row in csv.reader(f)))
    values.update({u: values[""] for u in UNITS if u != "%"})
    return values


@lru_cache(maxsize=None)
def _notebook_values(number: str) -> dict[str, list[float]] | None:
    """The numbers in the stored outputs of notebook ``number`` ("13"), or None if there is none."""
    other = next(NB_DIR.glob(f"{number}_*.ipynb"), None)
    return None if other is None else _by_unit(notebook_texts(other)[1])


def _declared(claim: Claim) -> str | None:
    """None if the claim's ``from:`` comment backs it, else the problem."""
    source = claim.source or ""
    if source.startswith("results/"):
        name = source.split()[0]
        return None if _matches(claim, _backing(claim, _csv_values(name))) else f"not in {name}"
    nb = re.match(r"notebook (\d\d)\b", source)
    if nb:
        values = _notebook_values(nb.group(1))
        if values is None:
            return f"no notebook {nb.group(1)}"
        return None if _matches(claim, _backing(claim, values)) else f"not in notebook {nb.group(1)}'s outputs"
    if re.match(r"(paper|published|config|definition)\b", source):
        return None
    return f"unknown source {source!r} (expected results/NAME.csv, notebook NN, or paper: ...)"


def unsourced(path: Path) -> list[str]:
    """Every claim of one notebook that neither its stored outputs, its code nor a declaration backs.

    The markdown is read from the notebook's source (``notebooks/src/NN_name.py``) when there is one,
    so a prose edit is checked before the notebook is rebuilt; outputs and code from the ``.ipynb``.
    A claim under a ``from:`` comment that its declared source does not hold still passes when this
    notebook's own outputs or code hold it (one comment covers every claim before it on the line).
    """
    markdown, outputs, code = notebook_texts(path)
    src = NB_DIR / "src" / (path.stem + ".py")
    if src.is_file():
        from notebook_tools import parse_percent

        markdown = [text for kind, text, _ in parse_percent(src.read_text(encoding="utf-8")) if kind == "markdown"]
    own = _by_unit(outputs, code)
    problems = []
    for cell in markdown:
        for claim in claims_in(cell):
            if _matches(claim, _backing(claim, own)):
                continue
            problem = _declared(claim) if claim.source is not None else "appears in no output or code cell"
            if problem:
                problems.append(f"{path.stem}: {claim.text!r} ({problem}) in: {claim.line[:140]}")
    return problems


def implausible_timings(path: Path, total_seconds: float) -> list[float]:
    """Durations in seconds printed in a notebook's stored outputs that exceed the whole notebook's
    measured run time: outputs stored on an overloaded machine, which a learner cannot believe."""
    _, outputs, _ = notebook_texts(path)
    seconds = [float(m.group(1)) for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s?s\b", outputs)]
    return [s for s in seconds if s > total_seconds]


def main() -> int:
    bad = [p for path in sorted(NB_DIR.glob("*.ipynb")) for p in unsourced(path)]
    print("\n".join(bad))
    print(f"{len(bad)} unsourced number(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
