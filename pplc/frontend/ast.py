"""The abstract syntax tree: frozen dataclasses, each carrying the `Span` it came from.

The parser builds these and nothing else; checks run afterwards on the finished tree
(`check.py`), so every diagnostic can point at a span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

from pplc.errors import Source, Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Slice:
    start: "Expr | None"
    stop: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Index:
    value: "Expr"
    indices: tuple["Expr | Slice", ...]
    span: Span


@dataclass(frozen=True)
class FunctionRef:
    """A function passed by name to a special form: the `f` of `integrate(f, a, b)`."""

    name: str
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    keywords: tuple[Keyword, ...]
    span: Span
    func_span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // % @ **
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # - + not
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # == != < <= > >=
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # and or
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class IfExp:
    test: "Expr"
    body: "Expr"
    orelse: "Expr"
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class LogDensity:
    """log p(value) under a distribution call. Not written by users: passes build it (the
    marginalization pass sums a discrete latent out of the density with it)."""

    distribution: Call
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class OverPlates:
    """`body` evaluated for every index of some loops, stacked: an array comprehension.
    Not written by users: passes build it. `plates` are IR plates (index, start, stop)."""

    body: "Expr"
    plates: tuple
    span: Span


Expr = Union[Number, Name, Index, Call, BinOp, UnaryOp, Compare, BoolOp, IfExp, ListExpr,
             FunctionRef, LogDensity, OverPlates]

# Calls whose first argument is a function, passed by name.
SPECIAL_FORMS = ("integrate", "ode")

# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Type:
    """`real`, `positive[J]`, `real(lower=0, upper=b)[N]`: a base name, a shape, bounds."""

    base: str
    shape: tuple[Expr, ...]
    bounds: tuple[Keyword, ...]
    span: Span


@dataclass(frozen=True)
class Target:
    """The left side of `~` or `=`: a name, optionally indexed (`theta[j]`, `X[i, k]`)."""

    name: str
    indices: tuple[Expr | Slice, ...] | None
    span: Span
    name_span: Span


@dataclass(frozen=True)
class DataDecl:
    name: str
    type: Type
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Sample:
    target: Target
    type: Type | None
    distribution: Expr  # a Call of a distribution (checked)
    decorators: tuple[str, ...]
    span: Span
    decorator_spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class Assign:
    target: Target
    value: Expr
    span: Span


@dataclass(frozen=True)
class Factor:
    expr: Expr
    span: Span


@dataclass(frozen=True)
class For:
    var: str
    start: Expr | None  # None means 0
    stop: Expr
    body: tuple["Statement", ...]
    span: Span      # the header line `for i in range(N):`
    var_span: Span


@dataclass(frozen=True)
class LocalAssign:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class FunctionDef:
    name: str
    params: tuple[str, ...]
    body: tuple[LocalAssign, ...]
    result: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class ExternDef:
    name: str
    params: tuple[str, ...]
    span: Span
    name_span: Span


Statement = Union[DataDecl, Sample, Assign, Factor, For, FunctionDef, ExternDef]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    source: Source


# ---------------------------------------------------------------- traversal


def children(node: object) -> Iterator[object]:
    """The direct sub-nodes of an expression (for generic walks)."""
    if isinstance(node, Index):
        yield node.value
        yield from node.indices
    elif isinstance(node, Slice):
        if node.start is not None:
            yield node.start
        if node.stop is not None:
            yield node.stop
    elif isinstance(node, Call):
        yield from node.args
        yield from (k.value for k in node.keywords)
    elif isinstance(node, (BinOp, Compare, BoolOp)):
        yield node.left
        yield node.right
    elif isinstance(node, UnaryOp):
        yield node.operand
    elif isinstance(node, IfExp):
        yield node.test
        yield node.body
        yield node.orelse
    elif isinstance(node, ListExpr):
        yield from node.items
    elif isinstance(node, Keyword):
        yield node.value
    elif isinstance(node, LogDensity):
        yield node.distribution
        yield node.value
    elif isinstance(node, OverPlates):
        yield node.body
        for plate in node.plates:
            if plate.start is not None:
                yield plate.start
            yield plate.stop


def substitute(node: object, replace) -> object:
    """A copy of an expression with `replace(sub)` applied top-down: where it returns a
    node, that node stands in for the sub-expression (and is not descended into)."""
    new = replace(node)
    if new is not None:
        return new
    sub = lambda n: substitute(n, replace) if n is not None else None  # noqa: E731
    if isinstance(node, Index):
        return Index(sub(node.value), tuple(sub(i) for i in node.indices), node.span)
    if isinstance(node, Slice):
        return Slice(sub(node.start), sub(node.stop), node.span)
    if isinstance(node, Call):
        return Call(node.func, tuple(sub(a) for a in node.args),
                    tuple(Keyword(k.name, sub(k.value), k.span) for k in node.keywords),
                    node.span, node.func_span)
    if isinstance(node, BinOp):
        return BinOp(node.op, sub(node.left), sub(node.right), node.span)
    if isinstance(node, Compare):
        return Compare(node.op, sub(node.left), sub(node.right), node.span)
    if isinstance(node, BoolOp):
        return BoolOp(node.op, sub(node.left), sub(node.right), node.span)
    if isinstance(node, UnaryOp):
        return UnaryOp(node.op, sub(node.operand), node.span)
    if isinstance(node, IfExp):
        return IfExp(sub(node.test), sub(node.body), sub(node.orelse), node.span)
    if isinstance(node, ListExpr):
        return ListExpr(tuple(sub(i) for i in node.items), node.span)
    if isinstance(node, LogDensity):
        return LogDensity(sub(node.distribution), sub(node.value), node.span)
    if isinstance(node, OverPlates):
        return OverPlates(sub(node.body), node.plates, node.span)
    return node


def walk(node: object) -> Iterator[object]:
    """Every sub-node of an expression, the node itself first."""
    yield node
    for child in children(node):
        yield from walk(child)


def names_in(node: object) -> Iterator[Name]:
    """Every `Name` read by an expression (function names of calls are not `Name`s; the
    loop indices an `OverPlates` binds are not reads)."""
    if isinstance(node, OverPlates):
        bound = {plate.index for plate in node.plates}
        for child in children(node):
            yield from (n for n in names_in(child) if n.id not in bound)
        return
    if isinstance(node, Name):
        yield node
    for child in children(node):
        yield from names_in(child)


# ---------------------------------------------------------------- back to text

_PRECEDENCE = {"if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6,
               "*": 7, "/": 7, "//": 7, "%": 7, "@": 7, "unary": 8, "**": 9}


def to_source(node: object) -> str:
    """An expression as text, with only the parentheses that precedence needs."""
    return _unparse(node)[0]


def _wrap(node: object, level: int, right: bool = False) -> str:
    text, own = _unparse(node)
    return f"({text})" if own < level or (right and own == level) else text


def _unparse(node: object) -> tuple[str, int]:
    if isinstance(node, Number):
        value = node.value
        text = repr(value) if not isinstance(value, float) or not value.is_integer() \
            else f"{value:.1f}"
        return text, (_PRECEDENCE["unary"] if value < 0 else 99)
    if isinstance(node, (Name, FunctionRef)):
        return (node.id if isinstance(node, Name) else node.name), 99
    if isinstance(node, Slice):
        return (f"{to_source(node.start) if node.start else ''}:"
                f"{to_source(node.stop) if node.stop else ''}"), 99
    if isinstance(node, Index):
        return f"{_wrap(node.value, 99)}[{', '.join(to_source(i) for i in node.indices)}]", 99
    if isinstance(node, Keyword):
        return f"{node.name}={to_source(node.value)}", 0
    if isinstance(node, Call):
        args = [to_source(a) for a in node.args] + [to_source(k) for k in node.keywords]
        return f"{node.func}({', '.join(args)})", 99
    if isinstance(node, ListExpr):
        return f"[{', '.join(to_source(i) for i in node.items)}]", 99
    if isinstance(node, BinOp):
        level = _PRECEDENCE[node.op]
        if node.op == "**":  # right-associative
            return f"{_wrap(node.left, level + 1)} ** {_wrap(node.right, level)}", level
        return f"{_wrap(node.left, level)} {node.op} {_wrap(node.right, level, True)}", level
    if isinstance(node, UnaryOp):
        if node.op == "not":
            return f"not {_wrap(node.operand, _PRECEDENCE['not'])}", _PRECEDENCE["not"]
        return f"{node.op}{_wrap(node.operand, _PRECEDENCE['unary'])}", _PRECEDENCE["unary"]
    if isinstance(node, Compare):
        level = _PRECEDENCE["cmp"]
        return f"{_wrap(node.left, level + 1)} {node.op} {_wrap(node.right, level + 1)}", level
    if isinstance(node, BoolOp):
        level = _PRECEDENCE[node.op]
        return f"{_wrap(node.left, level)} {node.op} {_wrap(node.right, level, True)}", level
    if isinstance(node, LogDensity):
        return f"logp({to_source(node.value)} | {to_source(node.distribution)})", 99
    if isinstance(node, OverPlates):
        loops = " ".join(f"for {p.index} in range("
                         + (f"{to_source(p.start)}, " if p.start is not None else "")
                         + f"{to_source(p.stop)})" for p in node.plates)
        return f"[{to_source(node.body)} {loops}]", 99
    if isinstance(node, IfExp):
        level = _PRECEDENCE["if"]
        return (f"{_wrap(node.body, level + 1)} if {_wrap(node.test, level + 1)} "
                f"else {_wrap(node.orelse, level)}"), level
    raise TypeError(f"not an expression: {node!r}")


def type_to_source(type_: Type) -> str:
    text = type_.base
    if type_.bounds:
        text += "(" + ", ".join(to_source(b) for b in type_.bounds) + ")"
    if type_.shape:
        text += "[" + ", ".join(to_source(s) for s in type_.shape) + "]"
    return text
