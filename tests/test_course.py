"""The course command: JupyterLab starts for root users too (Docker, cloud machines)."""
from vtlib import course


def test_lab_command_adds_allow_root_only_for_root(capsys):
    as_user = course.lab_command(is_root=False)
    assert as_user[-3:] == ["jupyter", "lab", "notebooks"] and "--allow-root" not in as_user
    as_root = course.lab_command(is_root=True)
    assert as_root[-1] == "--allow-root"
    assert "--allow-root" in capsys.readouterr().out


def test_lab_command_detects_root(monkeypatch):
    monkeypatch.setattr(course.os, "geteuid", lambda: 0, raising=False)
    assert "--allow-root" in course.lab_command()
    monkeypatch.setattr(course.os, "geteuid", lambda: 1000, raising=False)
    assert "--allow-root" not in course.lab_command()
