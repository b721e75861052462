"""What the exercise-check tests share: a stub, the fixed stub verdict, and the one line a check prints."""

NOT_YET = "not yet - write the function first"


def stub(*args, **kwargs):
    """A learner's function before it is written."""
    raise NotImplementedError


def last_line(capsys) -> str:
    """The single line a check printed (a check prints exactly one)."""
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]
