"""A progress bar per phase (warmup, sampling), fed from compiled chunks of iterations.

The sampler calls `progress(phase, done, total, divergences)` between chunks; nothing is
done per draw, so the bar costs nothing inside compiled code.

Where the bar is drawn: on a terminal, rich's live bar on stderr. In a Jupyter kernel,
rich draws into an ipywidgets output when ipywidgets is installed; without it (rich
would only warn), a one-line text bar on stderr redrawn with a carriage return, which
every notebook front end shows in place. `progress_for` picks one from the Python API's
`progress=` argument: a callable is used as it is, False draws nothing, True draws a bar,
and None (the default) draws one only where someone is watching (a notebook or a
terminal), so scripts writing to files and test runs stay quiet.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn, TimeRemainingColumn


def counted(phase: str) -> str:
    """What the callback's fourth number counts: NUTS's divergent transitions, or ADVI's
    skipped steps (its phases are "adaptation" and "optimization")."""
    return "divergences" if phase in ("warmup", "sampling") else "skipped steps"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), not in a terminal IPython."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class ProgressBar:
    """Context manager; callable as the sampler's progress callback (rich)."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self._console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[divergences]} {task.fields[what]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(), console=self._console or Console(file=sys.stderr),
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
            self._tasks[phase] = self._progress.add_task(phase, total=total, divergences=0,
                                                         what=counted(phase))
        self._progress.update(self._tasks[phase], completed=done, total=total,
                              divergences=divergences)


class TextBar:
    """A one-line bar per phase on `stream`, redrawn in place with a carriage return:
    `sampling  [#########-----------]  450/1000  0 divergences  1.2 s`."""

    WIDTH = 30

    def __init__(self, stream=None):
        self._stream = stream
        self._phase: str | None = None
        self._started = self._last = time.perf_counter()

    def __enter__(self) -> "TextBar":
        self._started = self._last = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._phase is not None:
            self._write("\n")

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text)
        stream.flush()

    def __call__(self, phase: str, done: int, total: int, divergences: int) -> None:
        if phase != self._phase:
            if self._phase is not None:
                self._write("\n")
            self._phase, self._started = phase, self._last
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._last = time.perf_counter()
        self._write(f"\r{phase:<9} [{bar}] {done}/{total}  {divergences} {counted(phase)}  "
                    f"{self._last - self._started:.1f} s")


def progress_for(progress: bool | Callable | None):
    """The Python API's `progress=` as a context manager giving the callback (or None)."""
    if callable(progress) and not isinstance(progress, bool):
        return contextlib.nullcontext(progress)
    if progress is False:
        return contextlib.nullcontext(None)
    notebook = in_notebook()
    watched = notebook or getattr(sys.stderr, "isatty", lambda: False)()
    if progress is None and not watched:
        return contextlib.nullcontext(None)
    if notebook and importlib.util.find_spec("ipywidgets") is None:
        return TextBar()
    return ProgressBar(console=Console() if notebook else None)
