"""Symbolic axes: every axis of every variable and expression, in terms of the model's sizes.

Two readers need the axes of a model's values before, or apart from, any data: the ArviZ
dimension names (backends/dims.py: `theta` runs over `J` because `real[J]` says so, `X @
beta` over the first axis of `X`) and a module written by `pplc build`, which must state
shapes as expressions of the data's sizes (`(T - K,)`) to take other data. Both walk the
same expressions by the same rules (NumPy broadcasting, matmul, indexing, the built-ins'
shape rules from frontend/library.py `BUILTINS`, distributions' value shapes), so the walk
is here, once. An `Axis` carries what is known of one axis:

- `extent`: its length as a size expression (extents.py: the model's own syntax, `J`,
  `T - K`, `3`, or a node for what the text does not spell, such as the largest of
  several pieces' extents), or None;
- `name`: a dimension-name candidate; a variable's come from the caller (the naming
  policy of dims.py) and expressions carry them on;
- `length`: the concrete length, once the data's shapes are known (`shapes`).

A list of axes is None where not even their number is known. The concrete shapes are
computed once by backends/shapes.py; `extents.evaluate` gives an extent's value for some
sizes, and a test checks that it equals the concrete length on every example and conformance
model (a disagreement would be a wrong shape written into a built module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, builtins_with, named_arguments
from pplc.ir.extents import (AxisOf, Of, at_least, covered, evaluate, is_one, largest_covered,
                             number, same, text)
from pplc.ir.graph import Graph, Kind, Piece, Variable, reads_itself

ELEMENTWISE = builtins_with("elementwise")
REDUCTIONS = builtins_with("reduce")   # over every axis
SAME_AXES = builtins_with("same")      # the argument's axes (softmax, inv)


@dataclass(frozen=True)
class Axis:
    """What is known of one axis (module docstring); all None: nothing."""
    extent: object = None
    name: str | None = None
    length: int | None = None


UNKNOWN = Axis()


def broadcast(*operands: Sequence[Axis] | None) -> list[Axis] | None:
    """NumPy broadcasting of axes, aligned on the right."""
    if any(a is None for a in operands):
        return None
    rank = max((len(a) for a in operands), default=0)
    return [_merge([a[len(a) - rank + k] for a in operands if len(a) - rank + k >= 0])
            for k in range(rank)]


def _merge(axes: Sequence[Axis]) -> Axis:
    """One broadcast axis: a length-1 axis yields to the other; two names for the same axis
    leave it unnamed; extents written differently broadcast when the module runs."""
    lengths = {a.length for a in axes if a.length is not None and a.length != 1}
    if len(lengths) > 1:
        return UNKNOWN
    names = {a.name for a in axes if a.name is not None and a.length != 1}
    length = lengths.pop() if lengths else (1 if axes and all(a.length == 1 for a in axes)
                                            else None)
    extents = [a.extent for a in axes if not is_one(a.extent)]
    if not extents:
        extent = axes[0].extent if axes else None
    elif any(e is None for e in extents):
        extent = None
    else:
        unique = list({text(e): e for e in extents}.values())
        extent = unique[0] if len(unique) == 1 else Of("broadcast", tuple(unique))
    return Axis(extent, names.pop() if len(names) == 1 else None, length)


def matmul(left: list[Axis] | None, right: list[Axis] | None) -> list[Axis] | None:
    """The axes of `left @ right` (vector or matrix operands, batched matrices)."""
    if not left or not right:
        return None
    if len(left) == 1 and len(right) == 1:
        return []
    if len(right) == 1:
        return left[:-1]
    if len(left) == 1:
        return right[:-2] + right[-1:]
    batch = broadcast(left[:-2], right[:-2])
    return batch + [left[-2], right[-1]]


class AxisInference:
    """The axes of a graph's variables and expressions.

    `shapes` (name -> concrete shape) and `sizes` (int data -> value) give lengths where
    the data are known; `names(variable)` gives a variable's current name candidates, one
    per axis (or None), which the naming policy may refine between walks.
    """

    def __init__(self, graph: Graph, shapes: Mapping[str, tuple] | None = None,
                 sizes: Mapping[str, int] | None = None,
                 names: Callable[[str], Sequence[str | None] | None] = lambda name: None):
        self.graph = graph
        self.shapes = shapes
        self.sizes = dict(sizes or {})
        self.names = names
        self.memo: dict[str, tuple | None] = {}
        self.busy: set[str] = set()

    # ------------------------------------------------------------ variables
    def of(self, name: str) -> list[Axis] | None:
        """A variable's axes: symbolic extents, names from `names`, lengths from `shapes`."""
        extents = self.extents(name)
        shape = None if self.shapes is None else self.shapes.get(name)
        if shape is not None:
            if extents is None or len(extents) != len(shape):
                extents = (None,) * len(shape)
        elif extents is None:
            return None
        names = self.names(name) or [None] * len(extents)
        lengths = shape or [None] * len(extents)
        return [Axis(e, n, length) for e, n, length in zip(extents, names, lengths)]

    def extents(self, name: str) -> tuple | None:
        """A variable's extents as size expressions (None: its rank is not known), from
        its declared type, its subscripts' ranges and one element's axes, or its value's."""
        if name in self.memo:
            return self.memo[name]
        if name in self.busy:
            return None   # defined through itself: its axes come from elsewhere
        self.busy.add(name)
        try:
            extents = self._extents(self.graph[name])
        finally:
            self.busy.discard(name)
        self.memo[name] = extents
        return extents

    def _extents(self, variable: Variable) -> tuple | None:
        declared = variable.declared_type
        if declared is not None:
            sizes = tuple(declared.shape)
            if declared.base in ("corr_cholesky", "cov") and len(sizes) == 1:
                sizes = sizes * 2
            return sizes
        if variable.kind in (Kind.DATA, Kind.OBSERVED):
            shape = None if self.shapes is None else self.shapes.get(variable.name)
            return None if shape is None else tuple(AxisOf(variable.name, k)
                                                    for k in range(len(shape)))
        if all(p.indices is None for p in variable.pieces):
            axes = self.piece(variable.pieces[0])
            return None if axes is None else tuple(a.extent for a in axes)
        leading = self.leading(variable)
        element = None
        for piece in variable.pieces:
            if reads_itself(variable.name, piece):
                continue
            axes = self.piece(piece)
            if axes is None:
                return None
            element = axes if element is None else element
        if leading is None or element is None:
            return None
        return tuple(leading) + tuple(a.extent for a in element)

    def leading(self, variable: Variable) -> list | None:
        """The leading axes a variable's subscripts cover: the largest index + 1 per axis,
        the largest over its pieces."""
        per_axis: list[list] = []
        for piece in variable.pieces:
            plates = {p.index: p for p in piece.plates}
            for k, sub in enumerate(piece.indices):
                cover = covered(sub, plates)
                if cover is None:
                    return None
                if k == len(per_axis):
                    per_axis.append([])
                per_axis[k].append(cover)
        return [largest_covered(covers) for covers in per_axis]

    def piece(self, piece: Piece) -> list[Axis] | None:
        """The axes one piece defines at one index: a value's, or its distribution's draws."""
        local = {p.index: [] for p in piece.plates}
        if piece.value is not None:
            return self.expr(piece.value, local)
        return self.distribution(piece.distribution, local)

    def length(self, extent) -> int | None:
        return None if extent is None else evaluate(extent, self.sizes, self.shapes or {})

    # ------------------------------------------------------------ distributions
    def distribution(self, call: ast.Call, local) -> list[Axis] | None:
        """The batch axes of a draw (its parameters broadcast), then its event axes."""
        info = DISTRIBUTIONS[call.func]
        args = named_arguments(call)
        if info.wrapper:   # Truncated: the inner draws broadcast with the bounds
            bounds = [self.expr(args[b], local) for b in ("lower", "upper") if b in args]
            return broadcast(self.distribution(args["dist"], local), *bounds)
        axes = {p: self.expr(a, local) for p, a in args.items() if p not in info.static_params}
        if any(a is None for a in axes.values()):
            return None
        name = call.func
        if name in ("Categorical", "OrderedLogistic"):   # the last axis lists the categories
            for param in ("probs", "logits", "cutpoints"):
                if param in axes:
                    axes[param] = axes[param][:-1]
        if info.event_ndim == 0:
            return broadcast(*axes.values())
        if name == "Dirichlet":
            return axes["concentration"] or None
        if name == "Multinomial":
            probs = axes["probs"]
            batch = broadcast(probs[:-1], axes["total_count"]) if probs else None
            return None if batch is None else batch + probs[-1:]
        if name == "MultivariateNormal":
            loc, matrix = axes["loc"], axes.get("cov", axes.get("scale_tril"))
            if not loc or len(matrix) < 2:
                return None
            return broadcast(loc[:-1], matrix[:-2]) + broadcast(loc[-1:], matrix[-1:])
        if name == "LKJCholesky":
            dim = args["dim"]
            axis = Axis(dim, _size_name(dim, self.sizes), self.length(dim))
            return axes["concentration"] + [axis, axis]
        return None

    # ------------------------------------------------------------ expressions
    def expr(self, e, local: Mapping[str, list[Axis]]) -> list[Axis] | None:
        """The axes of an expression's value; `local`: loop indices and `def` parameters."""
        method = getattr(self, "_" + type(e).__name__, None)
        return None if method is None else method(e, local)

    def _Number(self, e, local):
        return []

    def _Name(self, e, local):
        if e.id in local:
            return local[e.id]
        if e.id in self.graph:
            return self.of(e.id)
        return []   # pi, inf

    def _UnaryOp(self, e, local):
        return self.expr(e.operand, local)

    def _BinOp(self, e, local):
        left, right = self.expr(e.left, local), self.expr(e.right, local)
        return matmul(left, right) if e.op == "@" else broadcast(left, right)

    def _Compare(self, e, local):
        return broadcast(self.expr(e.left, local), self.expr(e.right, local))

    _BoolOp = _Compare

    def _IfExp(self, e, local):
        return broadcast(*(self.expr(x, local) for x in (e.test, e.body, e.orelse)))

    def _ListExpr(self, e, local):
        items = broadcast(*(self.expr(i, local) for i in e.items))
        n = len(e.items)
        return None if items is None else [Axis(number(n, e.span), None, n)] + items

    def _Index(self, e, local):
        """NumPy indexing: a whole slice keeps its axis, a partial one makes an axis of its
        own length; the other subscripts (scalars, gathers such as `a[g]`) broadcast
        together and take the place of the first one, or go first when a slice separates
        them."""
        value = self.expr(e.value, local)
        if value is None or len(e.indices) > len(value):
            return None
        kept, picked, positions = [], [], []
        for k, (axis, index) in enumerate(zip(value, e.indices)):
            if isinstance(index, ast.Slice):
                kept.append((k, self._slice(index, axis)))
                continue
            sub = self.expr(index, local)
            if sub is None:
                return None
            picked.append(sub)
            positions.append(k)
        rest = value[len(e.indices):]
        if not positions:
            return [axis for _, axis in kept] + rest
        gathered = broadcast(*picked)
        if positions != list(range(positions[0], positions[-1] + 1)):
            return gathered + [axis for _, axis in kept] + rest
        before = [axis for k, axis in kept if k < positions[0]]
        after = [axis for k, axis in kept if k > positions[-1]]
        return before + gathered + after + rest

    def _slice(self, index: ast.Slice, axis: Axis) -> Axis:
        """The axis a slice leaves: the whole axis (`:`, `0:K` of an axis `K`), or one of
        length stop - start (bounds that are not negative). `0:M` of an axis of M's length
        keeps the axis's name, but its extent stays `M`, right for other sizes too."""
        start, stop = index.start, index.stop
        if isinstance(start, ast.Number) and start.value == 0:
            start = None
        if start is None and (stop is None or same(stop, axis.extent)):
            return axis
        for bound in (start, stop):
            if bound is not None and (isinstance(bound, ast.UnaryOp) or
                                      (self.length(bound) or 0) < 0):
                return UNKNOWN
        end = axis.extent if stop is None else stop
        if stop is not None and axis.extent is None:
            end = None
        elif stop is not None and not at_least(axis.extent, stop):   # y[0:N + 2] is y
            end = axis.extent if at_least(stop, axis.extent) else Of("min", (stop, axis.extent))
        extent = None if end is None else end if start is None else \
            ast.BinOp("-", end, start, index.span)
        whole = start is None and axis.length is not None and self.length(stop) == axis.length
        return Axis(extent, axis.name if whole else None,
                    axis.length if whole else self.length(extent))

    def _Call(self, e, local):
        if e.func in ast.SPECIAL_FORMS:
            args = [self.expr(a, local) for a in e.args[1:]]
            if e.func == "integrate":   # integrate(f, a, b, ...): one integral per limit
                return broadcast(*args[:2])
            if len(args) < 3 or args[0] is None or args[2] is None:   # ode(f, y0, t0, ts)
                return None
            return args[2] + args[0]
        args = [self.expr(a, local) for a in e.args]
        if e.func in self.graph.functions:
            return self._function(e, args)
        if e.func in ELEMENTWISE:
            return broadcast(*args)
        if e.func in ("zeros", "ones"):
            return [Axis(a, _size_name(a, self.sizes), self.length(a)) for a in e.args]
        if any(a is None for a in args):
            return None
        if e.func in REDUCTIONS or (e.func in ("min", "max") and len(args) == 1):
            return []
        if e.func in ("min", "max"):
            return broadcast(*args)
        if e.func in SAME_AXES:
            return args[0]
        return _other_builtin(e.func, args, e.span)

    def _function(self, e, args):
        """A model `def`: its body walked with the arguments' axes."""
        fn = self.graph.functions[e.func]
        if any(a is None for a in args):
            return None
        scope = dict(zip(fn.params, args))
        for assign in fn.body:
            scope[assign.name] = self.expr(assign.value, scope)
        return self.expr(fn.result, scope)


def _other_builtin(func: str, args: list[list[Axis]], span) -> list[Axis] | None:
    """The built-ins whose axes follow a rule of their own (`axes="other"`)."""
    if func == "transpose":
        return args[0][::-1]
    if func == "diag":
        (arg,) = args
        if len(arg) == 1:   # a vector -> a square matrix
            return arg * 2
        return arg[:1] if len(arg) == 2 and same(arg[0].extent, arg[1].extent) else None
    if func == "dot":
        return matmul(*args) if all(len(a) in (1, 2) for a in args) else None
    if func == "cumsum":
        return args[0] if len(args[0]) <= 1 else None
    if func == "det":
        return args[0][:-2] if len(args[0]) >= 2 else None
    if func == "solve":
        return args[1]
    if func == "concat":
        if any(len(a) > 1 for a in args):
            return None
        parts = [a[0] if a else Axis(number(1, span), None, 1) for a in args]
        extent = parts[0].extent
        for part in parts[1:]:
            extent = None if extent is None or part.extent is None else \
                ast.BinOp("+", extent, part.extent, span)
        lengths = [p.length for p in parts]
        return [Axis(extent, None, None if None in lengths else sum(lengths))]
    if func == "stack":
        if len(args) == 1:
            return args[0]
        items = broadcast(*args)
        return None if items is None else [Axis(number(len(args), span), None, len(args))] \
            + items
    return None


def _size_name(expr, sizes: Mapping[str, int]) -> str | None:
    return expr.id if isinstance(expr, ast.Name) and expr.id in sizes else None


