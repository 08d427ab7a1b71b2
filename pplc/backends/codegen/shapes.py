"""Shapes written into a built module: the symbolic axes (ir/axes.py) as Python text.

A generated module takes its data at run time, so it cannot bake in `theta` having 8
elements: it writes `(J,)`. The axes come from the one symbolic axis inference
(pplc/ir/axes.py), which the ArviZ dims read too; this module only writes their extents
as Python int expressions of the data's sizes (`J`, `T - K`, `max(1, T)`,
`np.shape(y)[0]`). An extent that is no such expression (it reads an array, or is not
known) makes the shape None, and the caller falls back to the concrete shape from the data
given to `pplc build` (the module then holds for those sizes only), or asks for a
declared type.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from pplc.errors import Span
from pplc.frontend import ast
from pplc.ir.axes import AxisInference
from pplc.ir.extents import AxisOf, Of, is_source
from pplc.ir.graph import Graph, Kind, Variable

_NOWHERE = Span(0, 0, 0, 0)


def tuple_text(dims: Sequence[str]) -> str:
    """`("J", "K")` -> `(J, K)`; one axis -> `(J,)`."""
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def data_shapes(graph: Graph, concrete: Mapping[str, tuple]) -> dict[str, tuple]:
    """The shapes of the data and observations among the build's concrete shapes: what
    the module reads at run time (`np.shape(y)`); the other shapes it must write."""
    return {name: tuple(shape) for name, shape in concrete.items()
            if name in graph and graph[name].kind in (Kind.DATA, Kind.OBSERVED)}


class ShapeWriter:
    """The shapes of one graph's variables as text; `w` writes size expressions (an
    ExprWriter: it also records the data they read)."""

    def __init__(self, graph: Graph, w, concrete: Mapping[str, tuple]):
        self.axes = AxisInference(graph, data_shapes(graph, concrete))
        self.w = w

    def of(self, name: str) -> tuple[str, ...] | None:
        """A variable's shape, one int expression per axis; None if it cannot be written."""
        extents = self.axes.extents(name)
        return None if extents is None else self._texts(extents)

    def leading(self, variable: Variable) -> tuple[str, ...] | None:
        """The leading axes a variable's subscripts cover (the largest index + 1)."""
        extents = self.axes.leading(variable)
        return None if extents is None else self._texts(extents)

    def _texts(self, extents) -> tuple[str, ...] | None:
        texts = tuple(self.extent(e) for e in extents)
        return None if None in texts else texts

    def extent(self, e) -> str | None:
        if e is None:
            return None
        if isinstance(e, Of):
            items = [self.extent(i) for i in e.items]
            if None in items:
                return None
            if e.func != "broadcast":
                return f"{e.func}({', '.join(items)})"
            return f"np.broadcast_shapes({', '.join(f'({i},)' for i in items)})[0]"
        if isinstance(e, AxisOf):
            return f"np.shape({self.w(ast.Name(e.name, _NOWHERE))})[{e.axis}]"
        if isinstance(e, ast.BinOp) and not is_source(e):
            left, right = self.extent(e.left), self.extent(e.right)
            return None if left is None or right is None else f"{left} {e.op} ({right})"
        return self.w(e) if self.w.is_static(e) else None
