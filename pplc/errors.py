"""Diagnostics: every mistake a user can make is reported with a source location.

A user error is a `Diagnostic` (file, span, message, optional hint) and is raised as
`PplcError`, which carries one or more diagnostics. The CLI catches `PplcError` and
prints each diagnostic the way compilers do::

    eight_schools.ppl:9:25: error: unknown name 'sigmaa'; did you mean 'sigma'?
        y[j] ~ Normal(theta[j], sigmaa[j])
                                ^^^^^^

A bug in pplc itself raises `InternalError` instead (stanc3's ICE): it is never shown
with a caret, because the user did nothing wrong.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Span:
    """A half-open region of a source text, 1-based lines and columns (as editors count)."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int) -> "Span":
        return Span(line, column, line, column + 1)

    def merge(self, other: "Span") -> "Span":
        start = min((self.line, self.column), (other.line, other.column))
        end = max((self.end_line, self.end_column), (other.end_line, other.end_column))
        return Span(start[0], start[1], end[0], end[1])


@dataclass(frozen=True)
class Source:
    """A named text: a model file, or a data file (for JSON syntax errors)."""

    path: str
    text: str

    def line(self, number: int) -> str:
        # Lines end at "\n" only, as the parsers count them: str.splitlines would also break
        # at a form feed or U+2028 in a comment and show the wrong line.
        lines = self.text.split("\n")
        return lines[number - 1].rstrip("\r") if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Diagnostic:
    message: str
    source: Source | None = None
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self) -> str:
        """`FILE:LINE:COL: error: message`, then the source line and a caret under the span."""
        if self.source is None or self.span is None:
            where = f"{self.source.path}: " if self.source is not None else ""
            head = f"{where}{self.severity}: {self.message}"
            return head + (f"\n  hint: {self.hint}" if self.hint else "")
        span = self.span
        head = f"{self.source.path}:{span.line}:{span.column}: {self.severity}: {self.message}"
        text = self.source.line(span.line).expandtabs(1)
        if span.end_line == span.line:
            width = max(1, span.end_column - span.column)
        else:
            width = max(1, len(text) - span.column + 1)
        text, column, width = clip_line(text, span.column, width)
        caret = " " * (column - 1) + "^" * width
        out = [head, "    " + text, "    " + caret]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


LONG_LINE = 300  # longer source lines (a one-line JSON file, a generated sum) are cut


def clip_line(text: str, column: int, width: int) -> tuple[str, int, int]:
    """A long line cut to about 200 characters around the span, marked with '...'."""
    if len(text) <= LONG_LINE:
        return text, column, width
    cut = max(0, column - 1 - 40)
    end = min(len(text), cut + 200)
    prefix = "..." if cut else ""
    shown = prefix + text[cut:end] + ("..." if end < len(text) else "")
    return shown, column - cut + len(prefix), max(1, min(width, end - (column - 1)))


class PplcError(Exception):
    """A mistake in a user's model, data or options; carries one or more diagnostics."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


REPORT = ("This is a bug in pplc, not in your model or data: please report it with the "
          "model and data that caused it.")


class InternalError(Exception):
    """A bug in pplc, not in the user's model: reported as such, never with a caret.

    Its text ends with a request to report it (`REPORT`); `detail` is the text without."""

    def __init__(self, detail: str = ""):
        self.detail = str(detail)
        super().__init__(f"{self.detail}\n{REPORT}" if self.detail else REPORT)


def guard(method):
    """A public entry point of the Python API whose failures are all `PplcError` (the
    user's mistake) or `InternalError` (pplc's): any other exception escaping it (an
    `IndexError` deep in the sampler) is pplc's bug and becomes an `InternalError` that
    names it, chained to the original for its traceback. KeyboardInterrupt passes."""
    import functools

    @functools.wraps(method)
    def guarded(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (PplcError, InternalError):
            raise
        except Exception as exc:  # noqa: BLE001 - anything else is a pplc bug
            raise InternalError(f"{type(exc).__name__}: {exc}") from exc
    guarded.__wrapped__ = method
    return guarded


def guard_public_methods(*classes: type) -> None:
    """`guard` every public method of `classes` (names without a leading underscore;
    properties and class attributes are left alone)."""
    for cls in classes:
        for name, member in list(vars(cls).items()):
            if name.startswith("_") or isinstance(member, (type, staticmethod, classmethod)):
                continue
            if callable(member):
                setattr(cls, name, guard(member))


def error(message: str, source: Source | None = None, span: Span | None = None,
          hint: str | None = None) -> PplcError:
    """Shorthand: `raise error("...", source, span)`."""
    return PplcError(Diagnostic(message, source, span, hint))


@dataclass
class Diagnostics:
    """Collects diagnostics so that one run reports every independent mistake (mypy's Errors)."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, message: str, source: Source | None = None, span: Span | None = None,
            hint: str | None = None) -> None:
        self.items.append(Diagnostic(message, source, span, hint))

    def extend(self, err: PplcError) -> None:
        self.items.extend(err.diagnostics)

    def raise_if_any(self) -> None:
        if self.items:
            raise PplcError(self.items)


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """A hint naming the closest known name, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
