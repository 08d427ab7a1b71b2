"""Shapes of the model's variables as Python expressions of the data's sizes.

A generated module takes its data at run time, so it cannot bake in `theta` having 8
elements: it writes `(J,)`. This module infers such symbolic shapes from the graph the way
backends/analysis.py infers concrete ones: a declared type gives its shape; a variable
defined element by element (`theta[j] ~ ...` for j in range(J)) has the loops' extent
followed by one element's shape; anything else has the shape of its value or of its
distribution's draws, found by NumPy's broadcasting rules over the shapes of what it
reads. A dimension is the text of a Python int expression (`"J"`, `"T - K"`); where the
rank itself is only known at run time the shape is an expression of a whole tuple
(`"np.shape(y)"`, `"np.broadcast_shapes(...)"`). What cannot be inferred this way is
`None`, and the caller falls back to the concrete shape from the data given to
`pplc build`, or asks for a declared type.
"""

from __future__ import annotations

from dataclasses import dataclass

from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, builtins_with, named_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable, reads_itself

# Shapes only (not axis names): "same" keeps the argument's shape as "elementwise" does.
_ELEMENTWISE = builtins_with("elementwise") | builtins_with("same")
_REDUCTIONS = builtins_with("reduce")


@dataclass(frozen=True)
class Shape:
    """A shape to write into the module: per-axis int expressions, or one tuple expression."""

    dims: tuple[str, ...] | None = None
    expr: str | None = None

    @property
    def text(self) -> str:
        if self.dims is None:
            return self.expr
        return "(" + ", ".join(self.dims) + ("," if len(self.dims) == 1 else "") + ")"

    def axis(self, i: int) -> str:
        return self.dims[i] if self.dims is not None else f"{self.expr}[{i}]"

    def slice(self, start: int | None = None, stop: int | None = None) -> "Shape":
        if self.dims is not None:
            return Shape(self.dims[start:stop])
        bounds = f"{'' if start is None else start}:{'' if stop is None else stop}"
        return Shape(expr=f"{self.expr}[{bounds}]")

    def __add__(self, other: "Shape") -> "Shape":
        if self.dims is not None and other.dims is not None:
            return Shape(self.dims + other.dims)
        return Shape(expr=f"{self.text} + {other.text}")


SCALAR = Shape(())


def broadcast(*shapes: Shape | None) -> Shape | None:
    """NumPy broadcasting, decided now where the dimensions' texts allow, else at run time."""
    if any(s is None for s in shapes):
        return None
    known = [s for s in shapes if s.dims != ()]
    if not known:
        return SCALAR
    if len(known) == 1:
        return known[0]
    if all(s.dims is not None for s in known):
        rank = max(len(s.dims) for s in known)
        out = []
        for axis in range(rank):
            texts = {s.dims[axis - rank + len(s.dims)] for s in known
                     if axis - rank + len(s.dims) >= 0} - {"1"}
            if len(texts) > 1:
                break
            out.append(texts.pop() if texts else "1")
        else:
            return Shape(tuple(out))
    return Shape(expr=f"np.broadcast_shapes({', '.join(s.text for s in known)})")


def extent_max(texts: list[str]) -> str:
    """The largest of some int expressions (the extent over several pieces)."""
    unique = list(dict.fromkeys(texts))
    if all(t.isdigit() for t in unique):
        return str(max(int(t) for t in unique))
    return unique[0] if len(unique) == 1 else f"max({', '.join(unique)})"


class ShapeInference:
    """Symbolic shapes of a graph's variables; `write` turns size expressions into text."""

    def __init__(self, graph: Graph, write, is_static):
        self.graph = graph
        self.write = write            # expr -> Python text (an ExprWriter)
        self.is_static = is_static    # expr -> whether it is a Python int when the module runs
        self.memo: dict[str, Shape | None] = {}
        self.busy: set[str] = set()

    def of(self, name: str) -> Shape | None:
        """The shape of a variable, or None when it cannot be written symbolically."""
        if name in self.memo:
            return self.memo[name]
        if name in self.busy:
            return None  # defined through itself: its shape comes from elsewhere
        self.busy.add(name)
        try:
            shape = self._variable(self.graph[name])
        finally:
            self.busy.discard(name)
        self.memo[name] = shape
        return shape

    def _variable(self, variable: Variable) -> Shape | None:
        declared = variable.declared_type
        if declared is not None:
            if not all(self.is_static(s) for s in declared.shape):
                return None
            dims = tuple(self.write(s) for s in declared.shape)
            if declared.base in ("corr_cholesky", "cov") and len(dims) == 1:
                dims = dims * 2
            return Shape(dims)
        if variable.kind in (Kind.DATA, Kind.OBSERVED):
            return Shape(expr=f"np.shape({self.write(ast.Name(variable.name, variable.span))})")
        if all(p.indices is None for p in variable.pieces):
            return self.piece(variable, variable.pieces[0])
        leading = self.extent(variable)
        element = None
        for piece in variable.pieces:
            if reads_itself(variable.name, piece):
                continue
            shape = self.piece(variable, piece)
            if shape is None:
                return None
            element = shape if element is None else element
        if leading is None or element is None:
            return None
        return Shape(leading) + element

    def extent(self, variable: Variable) -> tuple[str, ...] | None:
        """The leading axes a variable's subscripts cover: the largest index + 1 per axis."""
        per_axis: list[list[str]] = []
        for piece in variable.pieces:
            plates = {p.index: p for p in piece.plates}
            for axis, sub in enumerate(piece.indices):
                text = self._largest_plus_one(sub, plates)
                if text is None:
                    return None
                if axis == len(per_axis):
                    per_axis.append([])
                per_axis[axis].append(text)
        return tuple(extent_max(texts) for texts in per_axis)

    def _largest_plus_one(self, sub, plates) -> str | None:
        if isinstance(sub, ast.Number) and isinstance(sub.value, int):
            return str(sub.value + 1)
        if isinstance(sub, ast.Name) and sub.id in plates:
            return self.write(plates[sub.id].stop)
        if isinstance(sub, ast.BinOp) and sub.op in "+-" and isinstance(sub.left, ast.Name) \
                and sub.left.id in plates and isinstance(sub.right, ast.Number):
            return f"{self.write(plates[sub.left.id].stop)} {sub.op} {sub.right.value}"
        return None

    def piece(self, variable: Variable, piece: Piece) -> Shape | None:
        """The shape one piece defines at one index: a value's, or a distribution's draws."""
        local = {p.index: SCALAR for p in piece.plates}
        if piece.value is not None:
            return self.expr(piece.value, local)
        return self.distribution(piece.distribution, local)

    # ------------------------------------------------------------ distributions
    def distribution(self, call: ast.Call, local) -> Shape | None:
        """batch + event shape of a distribution's draws (distributions.py's `shapes`)."""
        info = DISTRIBUTIONS[call.func]
        args = named_arguments(call)
        if info.wrapper:  # Truncated: the inner batch shape broadcast with the bounds
            bounds = [self.expr(args[b], local) for b in ("lower", "upper") if b in args]
            return broadcast(self.distribution(args["dist"], local), *bounds)
        shapes = {p: self.expr(a, local) for p, a in args.items() if p not in info.static_params}
        if any(s is None for s in shapes.values()):
            return None
        name = call.func
        if name == "Categorical":
            return next(iter(shapes.values())).slice(None, -1)
        if name == "OrderedLogistic":
            return broadcast(shapes["predictor"], shapes["cutpoints"].slice(None, -1))
        if name == "Dirichlet":
            return shapes["concentration"]
        if name == "Multinomial":
            probs = shapes["probs"]
            batch = broadcast(shapes["total_count"], probs.slice(None, -1))
            return None if batch is None else batch + probs.slice(-1)
        if name == "MultivariateNormal":
            matrix = shapes.get("cov", shapes.get("scale_tril"))
            batch = broadcast(shapes["loc"].slice(None, -1), matrix.slice(None, -2))
            return None if batch is None else batch + shapes["loc"].slice(-1)
        if name == "LKJCholesky":
            if not self.is_static(args["dim"]):
                return None
            dim = self.write(args["dim"])
            return shapes["concentration"] + Shape((dim, dim))
        return broadcast(*shapes.values())

    # ------------------------------------------------------------ expressions
    def expr(self, e, local: dict) -> Shape | None:
        method = getattr(self, "_" + type(e).__name__, None)
        return None if method is None else method(e, local)

    def _Number(self, e, local):
        return SCALAR

    def _Name(self, e, local):
        if e.id in local:
            return local[e.id]
        if e.id in self.graph:
            return self.of(e.id)
        return SCALAR  # pi, inf

    def _BinOp(self, e, local):
        left, right = self.expr(e.left, local), self.expr(e.right, local)
        if e.op != "@":
            return broadcast(left, right)
        if left is None or right is None or left.dims is None or right.dims is None:
            return None
        return _matmul(left, right)

    def _UnaryOp(self, e, local):
        return self.expr(e.operand, local)

    def _Compare(self, e, local):
        return broadcast(self.expr(e.left, local), self.expr(e.right, local))

    _BoolOp = _Compare

    def _IfExp(self, e, local):
        return broadcast(*(self.expr(x, local) for x in (e.test, e.body, e.orelse)))

    def _ListExpr(self, e, local):
        items = broadcast(*(self.expr(i, local) for i in e.items))
        return None if items is None else Shape((str(len(e.items)),)) + items

    def _Index(self, e, local):
        value = self.expr(e.value, local)
        if value is None:
            return None
        out: list[Shape] = []
        arrays = 0
        for axis, sub in enumerate(e.indices):
            if isinstance(sub, ast.Slice):
                out.append(self._slice_length(sub, value, axis))
                continue
            shape = self.expr(sub, local)
            if shape is None:
                return None
            if shape.dims != ():
                arrays += 1
                out.append(shape)
        if arrays > 1 or any(s is None for s in out):
            return None
        rest = value.slice(len(e.indices), None)
        result = SCALAR
        for s in out:
            result = result + s
        return result + rest

    def _slice_length(self, sub: ast.Slice, value: Shape, axis: int) -> Shape | None:
        for bound in (sub.start, sub.stop):
            if bound is not None and not self.is_static(bound):
                return None
        stop = value.axis(axis) if sub.stop is None else self.write(sub.stop)
        if sub.start is None:
            return Shape((stop,))
        return Shape((f"{stop} - ({self.write(sub.start)})",))

    def _Call(self, e, local):
        if e.func in ast.SPECIAL_FORMS:
            return self._special(e, local)
        args = [self.expr(a, local) for a in e.args]
        if e.func in self.graph.functions:
            return self._function(e, args)
        if e.func in _ELEMENTWISE:
            return broadcast(*args)
        if e.func in _REDUCTIONS or (e.func in ("min", "max") and len(args) == 1):
            return SCALAR
        if e.func in ("min", "max"):
            return broadcast(*args)
        if e.func in ("zeros", "ones"):
            if not all(self.is_static(a) for a in e.args):
                return None
            return Shape(tuple(self.write(a) for a in e.args))
        if any(a is None or a.dims is None for a in args):
            return None
        return _shape_function(e.func, args)

    def _function(self, e, args):
        fn = self.graph.functions[e.func]
        if any(a is None for a in args):
            return None
        scope = dict(zip(fn.params, args))
        for assign in fn.body:
            scope[assign.name] = self.expr(assign.value, scope)
        return self.expr(fn.result, scope)

    def _special(self, e, local):
        args = [self.expr(a, local) for a in e.args[1:]]
        if any(a is None for a in args):
            return None
        if e.func == "integrate":  # the broadcast limits' shape (f acts elementwise)
            return broadcast(args[0], args[1])
        y0, ts = args[0], args[2]
        if y0.dims is None or ts.dims is None or len(y0.dims) != 1 or len(ts.dims) != 1:
            return None
        return Shape((ts.dims[0], y0.dims[0]))


def _matmul(a: Shape, b: Shape) -> Shape | None:
    """jnp.matmul's shape for vectors and matrices with equal inner sizes."""
    if len(a.dims) == 1 and len(b.dims) == 1:
        return SCALAR
    if len(a.dims) == 2 and len(b.dims) == 1:
        return Shape(a.dims[:1])
    if len(a.dims) == 1 and len(b.dims) == 2:
        return Shape(b.dims[1:])
    if len(a.dims) == 2 and len(b.dims) == 2:
        return Shape((a.dims[0], b.dims[1]))
    return None


def _shape_function(func: str, args: list[Shape]) -> Shape | None:
    """Shapes of the built-ins that are not elementwise, for known ranks."""
    if func == "dot":
        return _matmul(*args) if all(len(a.dims) in (1, 2) for a in args) else None
    if func == "cumsum":
        return args[0] if len(args[0].dims) <= 1 else None
    if func == "transpose":
        return Shape(tuple(reversed(args[0].dims)))
    if func == "diag":
        dims = args[0].dims
        if len(dims) == 1:
            return Shape(dims * 2)
        return Shape(dims[:1]) if len(dims) == 2 and dims[0] == dims[1] else None
    if func == "det":
        return args[0].slice(None, -2)
    if func == "solve":
        return args[1]
    if func == "concat":
        sizes = ["1" if a.dims == () else a.dims[0] for a in args]
        if any(len(a.dims) > 1 for a in args):
            return None
        return Shape((" + ".join(sizes),))
    if func == "stack":
        if len(args) == 1:
            return args[0]
        items = broadcast(*args)
        return None if items is None else Shape((str(len(args)),)) + items
    return None
