"""The helpers every exercise check shares: one verdict line, safe calls, comparisons."""
import pytest
import torch

from vtlib.exercises.common import STUB, call, close, compare_count, compare_tensor, expect, first, verdict


def test_verdict_prints_one_line_with_or_without_a_hint(capsys):
    assert verdict("check_a", None, "a hint") is True
    assert verdict("check_b", "wrong", "a hint") is False
    assert verdict("check_c", "wrong: do this instead") is False
    assert capsys.readouterr().out.splitlines() == [
        "check_a: correct", "check_b: not yet - wrong; hint: a hint", "check_c: not yet - wrong: do this instead"]


def test_call_reports_stubs_crashes_and_non_functions():
    def stub():
        raise NotImplementedError

    assert call(lambda a, b: a + b, (1, 2), "fn(1, 2)") == (3, None)
    assert call(stub, (), "fn()") == (None, STUB)
    assert call(lambda: 1 / 0, (), "fn()") == (None, "fn() raised ZeroDivisionError: division by zero")
    assert call(None, (), "fn()") == (None, "expected a function, got NoneType")


def test_first_stops_at_the_first_problem():
    seen = []

    def case(i, problem):
        seen.append(i)
        return problem

    assert first(case(i, p) for i, p in enumerate([None, "b", "c"])) == "b" and seen == [0, 1]
    assert first([None, None]) is None


def test_tensor_comparisons():
    want = torch.arange(6.0).view(2, 3)
    assert compare_tensor(want + 1e-7, want, "f") is None and close(want + 1e-7, want)
    assert compare_tensor([1], want, "f") == "f: expected a torch.Tensor, got list" and not close([1], want)
    assert compare_tensor(want.T, want, "f") == "f: expected shape (2, 3), got (3, 2)"
    assert compare_tensor(want + 1, want, "f") == "f: wrong values"
    mask = torch.eye(3, dtype=torch.bool)
    assert compare_tensor(mask.float(), mask, "m") is None                  # 0/1 entries count as a mask
    assert compare_tensor(~mask, mask, "m") == "m: wrong entries"


@pytest.mark.parametrize("got, ok", [(12, True), (12.0, True), (torch.tensor(12), True), (12.5, False),
                                     ("12", False), ("x", False), (None, False), ((12,), False)])
def test_compare_count_takes_whole_numbers_only(got, ok):
    assert (compare_count(got, 12, "fn()") is None) == ok


def test_compare_count_of_a_tuple_and_expect():
    assert compare_count([3, 4.0], (3, 4), "fn()") is None
    assert compare_count((3, 4, 5), (3, 4), "fn()") == "fn() should be (3, 4)"
    assert expect(lambda n: n * n, (3,), 9, "fn(3)") is None
    assert expect(lambda n: torch.ones(n), (3,), torch.ones(3), "fn(3)") is None
    assert expect(lambda n: torch.ones(n), (3,), torch.zeros(3), "fn(3)") == "fn(3): wrong values"
    assert expect(lambda n: 1 / 0, (3,), 9, "fn(3)").startswith("fn(3) raised ZeroDivisionError")
