"""Progress bars on stderr for commands whose long work has several named parts.

``named_bars`` yields ``report(name, done, total, info="")``: the first report of a name adds its
bar (``total`` None: a step without a count, shown as running), later ones move it. The bars are off
when stderr is not a terminal, so piped output and logs stay clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def named_bars(info: bool = False) -> Iterator[Callable[..., None]]:
    """``info`` adds a column for each report's ``info`` text (a training run's latest losses)."""
    stderr = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=stderr, disable=not stderr.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def report(name: str, done: int, total: int | None, info: str = "") -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, info=info)
            bar.update(tasks[name], completed=done, info=info)

        yield report
