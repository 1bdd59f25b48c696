"""edge.cli.progress: one bar per reported name, moved by later reports; off when stderr is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from edge.cli import progress


def test_each_name_gets_one_bar_that_later_reports_move(monkeypatch):
    screen, made = io.StringIO(), []

    class Recorded(progress.Progress):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(progress, "Console", lambda stderr: Console(file=screen, force_terminal=True, width=120))
    monkeypatch.setattr(progress, "Progress", Recorded)
    with progress.named_bars(info=True) as report:
        report("preprocess train", 1, 4)
        report("preprocess train", 3, 4, info="loss=0.5")
        report("BatchNorm statistics", 0, None)
    tasks = {t.description: t for t in made[0].tasks}
    assert sorted(tasks) == ["BatchNorm statistics", "preprocess train"]  # one bar a name
    assert tasks["preprocess train"].completed == 3 and tasks["preprocess train"].total == 4
    assert tasks["BatchNorm statistics"].total is None
    assert "loss=0.5" in screen.getvalue() and "3/4" in screen.getvalue()


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(progress, "Console", lambda stderr: Console(file=screen, force_terminal=False))
    with progress.named_bars() as report:
        report("preprocess dev", 2, 2)
    assert screen.getvalue() == ""
