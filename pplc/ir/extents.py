"""Extents: the length of an axis as an expression of the model's sizes.

The symbolic axis inference (axes.py) states each axis's length in the model's own syntax
(`J`, `T - K`, `3`: the AST), and in two nodes for what the text does not spell: `Of`
several extents (the largest of several pieces' extents, the smallest of a slice's stop
and its axis's end, the broadcast of axes written differently) and `AxisOf` a data array.
Here: those nodes, their text (to compare two extents), their value for given sizes
(`evaluate`: the tests compare it with the compiler's concrete shapes), and the extent a
subscript covers (`covered`: `t - 1` over `range(1, T)` covers `T - 1` elements), folded
where it ends in a number (`K - 1 + 1` is `K`) so that a built module reads as the model
does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from pplc.errors import Span
from pplc.frontend import ast

_NOWHERE = Span(0, 0, 0, 0)   # where a number made up here comes from: nowhere


@dataclass(frozen=True)
class Of:
    """`func` ("max", "min" or "broadcast") of several extents."""
    func: str
    items: tuple


@dataclass(frozen=True)
class AxisOf:
    """Axis `axis` of the variable `name`, an array of the data (undeclared observations)."""
    name: str
    axis: int


def number(value: int, span=None) -> ast.Number:
    return ast.Number(value, span or _NOWHERE)


def text(extent) -> str:
    """An extent as text (to compare two extents, and for messages)."""
    if isinstance(extent, Of):
        return f"{extent.func}({', '.join(text(e) for e in extent.items)})"
    if isinstance(extent, AxisOf):
        return f"shape({extent.name})[{extent.axis}]"
    if isinstance(extent, ast.BinOp) and not is_source(extent):
        right = text(extent.right)
        right = f"({right})" if isinstance(extent.right, ast.BinOp) else right
        return f"{text(extent.left)} {extent.op} {right}"
    return ast.to_source(extent)


def is_source(extent) -> bool:
    """Whether an extent is plain model syntax (no node of this module inside)."""
    if isinstance(extent, (Of, AxisOf)):
        return False
    if isinstance(extent, ast.BinOp):
        return is_source(extent.left) and is_source(extent.right)
    return True


def evaluate(extent, sizes: Mapping[str, int], shapes: Mapping[str, tuple] = {}
             ) -> int | None:
    """An extent's value with these sizes (int data) and array shapes; None if unknown."""
    if isinstance(extent, ast.Number):
        return extent.value if isinstance(extent.value, int) else None
    if isinstance(extent, ast.Name):
        return sizes.get(extent.id)
    if isinstance(extent, AxisOf):
        shape = shapes.get(extent.name)
        return None if shape is None else shape[extent.axis]
    if isinstance(extent, Of):
        values = [evaluate(e, sizes, shapes) for e in extent.items]
        if None in values:
            return None
        if extent.func != "broadcast":
            return max(values) if extent.func == "max" else min(values)
        rest = {v for v in values if v != 1}
        return rest.pop() if len(rest) == 1 else 1 if not rest else None
    if isinstance(extent, ast.BinOp) and extent.op in ("+", "-", "*", "//"):
        left, right = evaluate(extent.left, sizes, shapes), evaluate(extent.right, sizes, shapes)
        if left is None or right is None:
            return None
        return {"+": left + right, "-": left - right, "*": left * right,
                "//": left // right if right else None}[extent.op]
    if isinstance(extent, ast.IfExp) and isinstance(extent.test, ast.Compare):
        left, right = (evaluate(e, sizes, shapes) for e in (extent.test.left,
                                                             extent.test.right))
        if left is None or right is None or extent.test.op != ">":
            return None
        return evaluate(extent.body if left > right else extent.orelse, sizes, shapes)
    if isinstance(extent, ast.Call) and extent.func == "len" and len(extent.args) == 1 \
            and isinstance(extent.args[0], ast.Name) and extent.args[0].id in shapes:
        shape = shapes[extent.args[0].id]
        return shape[0] if shape else None
    return None


def same(a, b) -> bool:
    return a is not None and b is not None and text(a) == text(b)


def is_one(extent) -> bool:
    return isinstance(extent, ast.Number) and extent.value == 1


def largest(extents: Sequence) -> object:
    """The largest of some extents, decided now where they differ by a number only
    (`K` and `K - 1`, `3` and `1`), else when the sizes are known."""
    unique = list({text(e): e for e in extents}.values())
    offsets = [_offset(e) for e in unique]
    if len({base for base, _ in offsets}) == 1:
        return max(zip(unique, offsets), key=lambda pair: pair[1][1])[0]
    return Of("max", tuple(unique))


def _offset(e) -> tuple[str, int]:
    """An extent as (the text of what a number is added to, the number): `T - 1` ->
    ("T", -1), `3` -> ("", 3), `T` -> ("T", 0)."""
    if isinstance(e, ast.Number) and isinstance(e.value, int):
        return "", e.value
    if isinstance(e, ast.BinOp) and e.op in "+-" and isinstance(e.right, ast.Number) \
            and isinstance(e.right.value, int):
        return text(e.left), e.right.value if e.op == "+" else -e.right.value
    return text(e), 0



def at_least(a, b) -> bool:
    """Whether extent `a` is provably at least `b` (the same size plus a larger number)."""
    (base_a, offset_a), (base_b, offset_b) = _offset(a), _offset(b)
    return base_a == base_b and offset_a >= offset_b


def covered(sub, plates) -> tuple | None:
    """What a subscript covers over its loops: (the largest value + 1, the loop's `range`
    bounds or None); `t` over range(1, T) -> `T`, `t - 1` -> `T - 1`, `K + t` -> `T + K`,
    a number or a size `K` -> `K + 1`; None for other forms."""
    loops = {n.id for n in ast.names_in(sub)} & set(plates)
    if not loops:
        extent = plus_one(sub)
        return None if extent is None else (extent, None)
    if isinstance(sub, ast.BinOp) and sub.op == "+" and isinstance(sub.right, ast.Name) \
            and sub.right.id in plates:   # K + t -> t + K
        sub = ast.BinOp("+", sub.right, sub.left, sub.span)
    if isinstance(sub, ast.Name):
        plate, offset = plates[sub.id], None
    elif isinstance(sub, ast.BinOp) and sub.op in "+-" and isinstance(sub.left, ast.Name) \
            and not {n.id for n in ast.names_in(sub.right)} & set(plates):
        plate, offset = plates[sub.left.id], sub.right
    else:
        return None
    start = plate.start or number(0, plate.span)
    if offset is None:
        return plate.stop, (plate.stop, start, start)
    return (ast.BinOp(sub.op, plate.stop, offset, sub.span),
            (plate.stop, start, _folded(sub.op, start, offset, sub.span)))


def _folded(op: str, a, b, span):
    """`a + b` or `a - b`, folded where both are numbers or `a` is 0: the value a loop's
    subscript takes at its start (`t - 1` over range(1, T) -> 0)."""
    numbers = [isinstance(e, ast.Number) and isinstance(e.value, int) for e in (a, b)]
    if all(numbers):
        return number(a.value + b.value if op == "+" else a.value - b.value, span)
    if numbers[0] and a.value == 0 and op == "+":
        return b
    return ast.BinOp(op, a, b, span)


def largest_covered(covers: Sequence[tuple]) -> object:
    """The extent of an axis over its pieces: the largest of what each covers. A loop
    that may run zero times (`range(K, T)` with T <= K) covers nothing, so its extent
    counts only when it runs (`T if T > K else 0`), unless another piece's extent is at
    least the loop's value when empty (`x[0]` beside `range(1, T)`: `max(1, T)`)."""
    extents = [extent for extent, _ in covers]
    out = []
    for i, (extent, loop) in enumerate(covers):
        if loop is not None:
            stop, start, empty = loop
            if not at_least(number(0), empty) and not any(
                    at_least(other, empty) for j, other in enumerate(extents) if j != i):
                test = ast.Compare(">", stop, start, stop.span)
                extent = ast.IfExp(test, extent, number(0, stop.span), stop.span)
        out.append(extent)
    return largest(out)


def plus_one(e) -> object | None:
    """`e + 1`, folded where it ends in a number: `T - 1` -> `T`, `K + 2` -> `K + 3`."""
    if isinstance(e, ast.Number):
        return number(e.value + 1, e.span) if isinstance(e.value, int) else None
    if isinstance(e, ast.BinOp) and e.op in "+-" and isinstance(e.right, ast.Number) \
            and isinstance(e.right.value, int):
        value = e.right.value + (1 if e.op == "+" else -1)
        if value == 0:
            return e.left
        return ast.BinOp(e.op, e.left, number(value, e.right.span), e.span)
    return ast.BinOp("+", e, number(1, e.span), e.span)
