"""A progress bar per phase (warmup, sampling), fed from compiled chunks of iterations.

The sampler calls `progress(phase, done, total, divergences)` between chunks; nothing is
done per draw, so the bar costs nothing inside compiled code.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn


class ProgressBar:
    """Context manager; callable as the sampler's progress callback."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[divergences]} divergences"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=Console(file=sys.stderr),
                transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int, divergences: int) -> None:
        if self._progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total, divergences=0)
        self._progress.update(self._tasks[phase], completed=done, total=total,
                              divergences=divergences)
