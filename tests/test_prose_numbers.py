"""Numbers in the notebooks' prose agree with their sources (tools/prose_numbers.py), and the timings a
learner sees in stored outputs are possible on the machine that measured the notebook."""
import json
import re

import pytest
from notebook_tools import NB_DIR, read_times
from prose_numbers import claims_in, implausible_timings, notebook_texts, unsourced

NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_prose_number_has_a_source(path):
    problems = unsourced(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_timings_fit_in_the_measured_run(path):
    """A cell cannot have spent longer than its whole notebook took (stored on an overloaded machine)."""
    total = read_times()[path.stem]
    assert implausible_timings(path, total) == [], f"{path.stem} prints durations longer than its {total:.0f} s run"


def test_timings_from_an_overloaded_machine_are_caught(tmp_path):
    path = _notebook(tmp_path, "", "seed 0: 267.3 s\nseed 1: 580.1 s\nepoch 2.1 s")
    assert implausible_timings(path, 30.0) == [267.3, 580.1]


def _notebook(tmp_path, markdown: str, output: str, code: str = "x = 1"):
    """A one-notebook folder with a markdown cell and a code cell whose stored output is ``output``."""
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": markdown},
                    {"cell_type": "code", "metadata": {}, "source": code, "execution_count": 1,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": output}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_example.ipynb"
    path.write_text(json.dumps(nb))
    return path


# The drifts a learner found, each against the output its notebook really printed: all must be caught.
DRIFTS = [
    ("There is no reliable ranking on a 199-clip test set.", "test clips: 298"),
    ("In our runs fused SDPA was 1.2× to 2.6× faster than the explicit version.", "fused / explicit: 6.2×"),
    ("8 epochs of about 15 s each on one thread.", "epoch 1 6.1 s\nepoch 2 8.7 s"),
    ("The visible-only encoder needs about 4x fewer FLOPs at 75 %.", "ratio 0.75: 5.06× fewer FLOPs"),
    ("Model 2 reaches test AUC 0.815 ± 0.017.", "model2  0.803 ± 0.017"),
]


@pytest.mark.parametrize("markdown, output", DRIFTS)
def test_drifted_numbers_are_caught(tmp_path, markdown, output):
    assert unsourced(_notebook(tmp_path, markdown, output))


@pytest.mark.parametrize("markdown, output", [
    ("There is no reliable ranking on a 298-clip test set.", "test clips: 298"),
    ("Fused SDPA was about 6× faster.", "fused / explicit: 6.2×"),
    ("Epochs took 6-9 s each.", "epoch 1 6.1 s\nepoch 2 8.7 s"),
    ("Model 2 reaches test AUC 0.80 ± 0.02 (0.803).", "model2  0.803 ± 0.017"),
    ("About 23 % of the volumes are positive.", "positives: 0.2318"),
    ("A 4×7×7 tubelet on 28³ clips, see Table 1 and arXiv 2103.15691, with `dim=64`.", ""),
])
def test_true_numbers_and_non_claims_pass(tmp_path, markdown, output):
    assert unsourced(_notebook(tmp_path, markdown, output)) == []


def test_declarations_are_checked(tmp_path):
    ok = "ViViT reports 79.2 for the central-frame init. <!-- from: paper: ViViT (Arnab et al. 2021), Table 1 -->"
    assert unsourced(_notebook(tmp_path, ok, "")) == []
    assert unsourced(_notebook(tmp_path, "It scored 0.123. <!-- from: a friend -->", ""))   # no such source
    assert unsourced(_notebook(tmp_path, "It scored 0.123. <!-- from: results/no_such_file.csv -->", ""))
    nb13 = next(NB_DIR.glob("13_*.ipynb"))
    printed = next(v for v in re.findall(r"0\.\d{3}", notebook_texts(nb13)[1]))
    assert unsourced(_notebook(tmp_path, f"The interval was {printed}. <!-- from: notebook 13 -->", "")) == []


def test_what_counts_as_a_claim():
    texts = [c.text for c in claims_in("AUC 0.767 ± 0.026, 3 seeds, 12× more tokens, 4×7×7 tubelets, 28³, "
                                       "a 298-clip set, 1,188 volumes, 16 384 tokens, torch 2.13, `0.5`, 95 %")]
    assert texts == ["0.767", "0.026", "12×", "298-clip", "1,188 volumes", "16 384 tokens", "95 %"]
    assert claims_in("**Time:** about 2 minutes on a 2-core CPU") == []
    assert claims_in("**References**\n- Arnab et al. 2021, 0.5 and 12.5 %") == []
