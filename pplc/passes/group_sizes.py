"""How many observations inform each element of a plated latent, and the scales they show.

The reparameterization pass decides per element when groups are unbalanced (radon: counties
with 1 to 116 houses). An average over the groups hides the small ones, whose posterior is
a funnel in (theta[j], tau) when theta[j] is centered, so it needs the count of each
element: the observations whose statements read `theta[k]` with k = j. Subscripts are
evaluated here over each statement's loops with NumPy, from the data bound into the graph
(a pass reads data from the graph, never from a backend): `alpha[g[n]]` in a loop over n
counts `np.bincount(g)`, `alpha[county]` in a vectorized statement the same.

Only the subscripts the common models write are understood (loop indices, integer data
indexed by them, sizes, +, -, *, //, %); anything else gives None and the pass decides per
variable as before. A deterministic that reads theta and leads to an observation counts each
of its reads as one observation (`mu[n] = alpha[g[n]] + beta * x[n]`).

`moment_scales` estimates the group scale and the observation scale from the data by the
one-way analysis of variance (between-group variance of group means less their sampling
variance), for an observed Normal-like statement that reads `theta[k]` in its location:
the prior's median of the group scale may be far from where the data put it, and the
decision is about the posterior's geometry.

In a run of several processes each holds only its own rows of the arrays split along the
observations' plate (pplc/row_shares.py); the caller then hands in those rows and a sum
over the processes (`shared_rows`, data and a callable, no import of what runs them):
each process counts the observations of its rows, in the whole array's row numbers, and
the counts and the sums behind `moment_scales` are added over the processes, so every
process decides as one process does on all the rows. Every process makes the same
reductions in the same order, whatever its rows hold (a subscript it cannot evaluate on
its rows is a flag in the reduction, never an early return).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import networkx as nx
import numpy as np

from pplc.frontend import ast
from pplc.frontend.library import named_arguments
from pplc.ir.graph import Graph, Kind, Piece

# The most loop-index tuples whose subscripts are evaluated (int64 arrays of this size).
MAX_GRID = 10_000_000
_LOCATION_SCALE = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic"}


class _Unknown(Exception):
    """A subscript this module does not evaluate."""


@dataclass(frozen=True)
class SharedRows:
    """This process's rows of a run's split arrays: rows [start, stop) of the plate `size`
    (`rows`: name -> those rows), and `total`, an array -> its sum over the processes."""

    size: str
    start: int
    stop: int
    rows: Mapping[str, np.ndarray]
    total: Callable[[np.ndarray], np.ndarray]


_SHARED: ContextVar[SharedRows | None] = ContextVar("shared_rows", default=None)


@contextmanager
def shared_rows(share: SharedRows | None) -> Iterator[None]:
    """Count and estimate from this process's rows, summed over the run (None: whole)."""
    token = _SHARED.set(share)
    try:
        yield
    finally:
        _SHARED.reset(token)


def _summed(ok: bool, values: np.ndarray, like: np.ndarray) -> np.ndarray | None:
    """In a run: `values` summed over the processes, or None where any process could not
    compute them (`like`: zeros of their shape). One process: `values` where `ok`."""
    share = _SHARED.get()
    if share is None:
        return values if ok else None
    if share.total(np.asarray([0 if ok else 1], np.int64))[0]:
        return None
    return share.total(values if ok else like)


def observations_per_element(graph: Graph, name: str) -> np.ndarray | None:
    """The number of observations reading each element of latent `name` (the latent's
    shape), or None where a read cannot be evaluated or nothing observed reads it."""
    shape = graph.shapes.get(name)
    if shape is None or len(shape) == 0:
        return None
    counts = np.zeros(shape, dtype=np.int64)
    found, ok = False, True
    try:
        for child in _readers(graph, name):
            for piece in graph[child].pieces:
                for subscripts in _references(name, piece, graph, shape):
                    np.add.at(counts, subscripts, 1)
                    found = True
    except (_Unknown, ValueError, TypeError, IndexError, OverflowError):
        ok = False   # a heuristic: what it cannot read leaves the per-variable rule
    if _SHARED.get() is not None:   # found anywhere: a process may hold none of the rows
        found = bool(_SHARED.get().total(np.asarray([int(found)], np.int64))[0])
    counts = _summed(ok, counts, np.zeros(shape, np.int64))
    return counts if found else None


def moment_scales(graph: Graph, name: str) -> tuple[float, float, np.ndarray] | None:
    """(group scale, its plausible low end, the precision of each element's observations)
    from the data, or None.

    Needs one observed statement `y[...] ~ F(loc, scale)` of a location-scale family whose
    loc reads `name[k]` once, on a `+` path, directly or through one deterministic (other
    terms such as `beta * x[n]` only widen the estimates a little), with y given elementwise by the statement's loops (or
    vectorized without loops). The observation scale is its value where the statement's
    scale reads data alone, otherwise the pooled within-group standard deviation."""
    shape = graph.shapes.get(name)
    between = [c for c in graph.dag.successors(name) if graph[c].kind is Kind.DETERMINISTIC]
    observed = sorted({c for parent in [name, *between] for c in graph.dag.successors(parent)
                       if graph[c].kind is Kind.OBSERVED and c in graph.data})
    if shape is None or len(observed) != 1 or len(graph[observed[0]].pieces) != 1:
        return None
    variable = graph[observed[0]]
    piece = variable.pieces[0]
    call = piece.distribution
    if call is None or call.func not in _LOCATION_SCALE:
        return None
    args = named_arguments(call)
    loops = [plate.index for plate in piece.plates]
    written = [i.id for i in piece.indices if isinstance(i, ast.Name)] \
        if piece.indices is not None else []
    if written != loops:
        return None
    scale_names = {n.id for n in ast.names_in(args["scale"])}
    known = scale_names <= set(graph.data) | set(loops) and scale_names.isdisjoint(
        {v.name for v in graph.variables() if v.kind is not Kind.DATA})
    size = int(np.prod(shape))
    try:
        env, grid = _grid(piece, graph)
        subscripts = _groups(graph, name, shape, args["loc"], env, grid)
        y = _evaluate(ast.Name(variable.name, piece.span), {}, graph).astype(float)
        y = _evaluate(ast.Index(ast.Name(variable.name, piece.span),
                                [ast.Name(i, piece.span) for i in loops], piece.span),
                      env, graph).astype(float) if loops else y
        if y.size != subscripts[0].size or not np.isfinite(y).all():
            raise _Unknown   # y[n] per loop index, or a vectorized y as long as its subscript
        sigma = np.broadcast_to(_evaluate(args["scale"], env, graph), y.shape) \
            if known else None
        ok = True
    except (_Unknown, ValueError, TypeError, IndexError, OverflowError):
        ok = False
    if _SHARED.get() is not None:
        return _shared_moments(ok, shape, size, *((subscripts, y, sigma) if ok else
                                                  (None, None, None)), known)
    if not ok:
        return None
    group = np.ravel_multi_index(subscripts, shape).ravel()
    y = y.ravel()
    n = np.bincount(group, minlength=size)
    seen = n > 0
    means = np.bincount(group, y, minlength=size)[seen] / n[seen]
    if sigma is not None:
        variance = np.asarray(sigma, float).ravel() ** 2
        precision = np.bincount(group, 1.0 / variance, minlength=size)
    else:
        within = np.sum((y - (np.bincount(group, y, minlength=size) / np.maximum(n, 1))[group])
                        ** 2)
        dof = len(y) - int(seen.sum())
        if dof < 2 or within <= 0:
            return None
        precision = n / (within / dof)
    if seen.sum() < 3:
        return None
    estimate, low = _group_scale(means, 1.0 / precision[seen])
    return (estimate, low,
            precision.reshape(shape))


def _shared_moments(ok: bool, shape, size: int, subscripts, y, sigma, known: bool):
    """`moment_scales` in a run: each process's per-group sums (count, sum and sum of
    squares of y, precision), added over the processes, then the same estimates."""
    stats = np.zeros((4, size))
    if ok:
        group = np.ravel_multi_index(subscripts, shape).ravel()
        y = y.ravel()
        stats[0] = np.bincount(group, minlength=size)
        stats[1] = np.bincount(group, y, minlength=size)
        stats[2] = np.bincount(group, y * y, minlength=size)
        if sigma is not None:
            stats[3] = np.bincount(group, 1.0 / np.asarray(sigma, float).ravel() ** 2,
                                   minlength=size)
    stats = _summed(ok, stats, np.zeros((4, size)))
    if stats is None:
        return None
    n, sums, squares, precision = stats
    seen = n > 0
    means = sums[seen] / n[seen]
    if not known:
        within = float(np.sum(squares[seen] - sums[seen] ** 2 / n[seen]))
        dof = int(n.sum()) - int(seen.sum())
        if dof < 2 or within <= 0:
            return None
        precision = n / (within / dof)
    if seen.sum() < 3:
        return None
    estimate, low = _group_scale(means, 1.0 / precision[seen])
    return estimate, low, precision.reshape(shape)


def _groups(graph: Graph, name: str, shape, loc, env, grid) -> tuple[np.ndarray, ...]:
    """The element of `name` each observation's location reads: `name[k]` as a term of
    `loc`, or as a term of a deterministic `mu` that is a term of `loc` (`mu[n] =
    a[g[n]] + ...` over its own loops, or `mu = a[g] + ...` vectorized)."""
    terms = _additive_terms(loc)
    direct = [t for t in terms if _reads(t, name)]
    if len(direct) == 1 and len([t for t in terms if name in _names(t)]) == 1:
        return _flat(direct[0], env, grid, shape, graph)
    via = [t for t in terms if _target(t) in graph and graph[_target(t)].kind is
           Kind.DETERMINISTIC and name in {n.id for n in ast.names_in(graph[_target(t)]
                                                                       .pieces[0].value)}]
    if direct or len(via) != 1 or len(graph[_target(via[0])].pieces) != 1:
        raise _Unknown
    mean = graph[_target(via[0])]
    (piece,) = mean.pieces
    loops = [plate.index for plate in piece.plates]
    written = [i.id if isinstance(i, ast.Name) else None for i in piece.indices or ()]
    inner = [t for t in _additive_terms(piece.value) if _reads(t, name)]
    if written != loops or len(inner) != 1 or len(
            [t for t in _additive_terms(piece.value) if name in _names(t)]) != 1:
        raise _Unknown   # mu's elements are not its loop's cells in order
    inner_env, inner_grid = _grid(piece, graph)
    per_element = _flat(inner[0], inner_env, inner_grid, shape, graph)
    mean_shape = graph.shapes.get(mean.name)
    if mean_shape is None or per_element[0].size != int(np.prod(mean_shape)):
        raise _Unknown
    if isinstance(via[0], ast.Name):
        positions = np.arange(per_element[0].size)
        if grid:
            raise _Unknown
    else:
        positions = np.ravel_multi_index(_flat(via[0], env, grid, mean_shape, graph),
                                         mean_shape)
    return tuple(axis[positions] for axis in per_element)


def _reads(term, name: str) -> bool:
    return isinstance(term, ast.Index) and isinstance(term.value, ast.Name) \
        and term.value.id == name


def _target(term) -> str | None:
    if isinstance(term, ast.Index) and isinstance(term.value, ast.Name):
        return term.value.id
    return term.id if isinstance(term, ast.Name) else None


def _names(expr) -> set[str]:
    return {n.id for n in ast.names_in(expr)}


def _group_scale(means: np.ndarray, noise: np.ndarray) -> tuple[float, float]:
    """The group scale tau from group means ybar_j ~ Normal(mu, tau^2 + noise_j), mu
    profiled out: (its most likely value, the 2.5% point of its likelihood on a grid).

    The funnel of a centered element opens where tau is small, and the posterior reaches
    down to about that low point, so the decision reads it, not the estimate alone."""
    grid = np.linspace(0.0, 3.0 * float(np.std(means)) + 1e-12, 400)
    variance = grid[:, None] ** 2 + noise[None, :]
    weight = 1.0 / variance
    mu = np.sum(weight * means, axis=1) / np.sum(weight, axis=1)
    log_lik = -0.5 * np.sum(np.log(variance) + (means - mu[:, None]) ** 2 * weight, axis=1)
    mass = np.exp(log_lik - log_lik.max())
    cumulative = np.cumsum(mass) / np.sum(mass)
    return float(grid[np.argmax(log_lik)]), float(grid[np.searchsorted(cumulative, 0.025)])


# ---------------------------------------------------------------- reads of the latent


def _readers(graph: Graph, name: str) -> list[str]:
    """Observed children and deterministics on the way to them (each read once)."""
    out = []
    for parent, child in graph.through_deterministics(name):
        kind = graph[child].kind
        if parent == name and (kind is Kind.OBSERVED and child in graph.data or
                               kind is Kind.DETERMINISTIC and _leads_to_observed(graph, child)):
            out.append(child)
    return out


def _leads_to_observed(graph: Graph, name: str) -> bool:
    return any(graph[d].kind is Kind.OBSERVED for d in nx.descendants(graph.dag, name))


def _references(name: str, piece: Piece, graph: Graph, shape):
    """For each read of `name` in the piece, the tuple of index arrays it reads."""
    exprs = [e for e in (piece.distribution, piece.value) if e is not None]
    env, grid = _grid(piece, graph)
    for expr in exprs:
        indexed = set()
        for node in ast.walk(expr):
            if isinstance(node, ast.Index) and isinstance(node.value, ast.Name) \
                    and node.value.id == name:
                indexed.add(id(node.value))
                yield _flat(node, env, grid, shape, graph)
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id == name and id(node) not in indexed:
                if piece.plates:
                    raise _Unknown   # the whole array read at every loop index
                yield tuple(np.indices(shape).reshape(len(shape), -1))


def _flat(node: ast.Index, env, grid, shape, graph) -> tuple[np.ndarray, ...]:
    if len(node.indices) != len(shape):
        raise _Unknown
    out = []
    for sub, size in zip(node.indices, shape):
        if isinstance(sub, ast.Slice):
            raise _Unknown
        value = np.asarray(_evaluate(sub, env, graph))
        if not np.issubdtype(value.dtype, np.integer):
            raise _Unknown
        out.append(np.mod(np.broadcast_to(value, np.broadcast_shapes(value.shape, grid)),
                          size).ravel())
    return tuple(np.broadcast_arrays(*out))


def _grid(piece: Piece, graph: Graph) -> tuple[dict, tuple[int, ...]]:
    """Each loop index as an array over the statement's loops (outermost first)."""
    env: dict = {}
    ranges = []
    share = _SHARED.get()
    for plate in piece.plates:
        start = 0 if plate.start is None else int(_evaluate(plate.start, env, graph))
        stop = int(_evaluate(plate.stop, env, graph))
        if share is not None and isinstance(plate.stop, ast.Name) \
                and plate.stop.id == share.size:   # a run: this process's rows of the plate
            start, stop = max(start, share.start), min(stop, share.stop)
        ranges.append(np.arange(start, max(stop, start)))
    if np.prod([len(r) for r in ranges], dtype=float) > MAX_GRID:
        raise _Unknown   # a count over more loop indices than is worth the memory
    axes = np.meshgrid(*ranges, indexing="ij") if ranges else []
    for plate, axis in zip(piece.plates, axes):
        env[plate.index] = axis
    return env, tuple(len(r) for r in ranges)


def _evaluate(expr, env, graph: Graph):
    """The value of a subscript, loop bound or data-only scale over the loops' grid."""
    if isinstance(expr, ast.Number):
        return expr.value
    share = _SHARED.get()
    if isinstance(expr, ast.Name):
        if expr.id in env:
            return env[expr.id]
        if share is not None and expr.id in share.rows:
            return np.asarray(share.rows[expr.id])   # this process's rows (a vector read)
        if expr.id in graph.data:
            return np.asarray(graph.data[expr.id])
        raise _Unknown
    if isinstance(expr, ast.Index):
        value = _evaluate(expr.value, env, graph)
        subs = []
        for sub in expr.indices:
            if isinstance(sub, ast.Slice):
                raise _Unknown
            subs.append(np.asarray(_evaluate(sub, env, graph)))
        if share is not None and isinstance(expr.value, ast.Name) \
                and expr.value.id in share.rows and subs:   # row n of the whole array
            subs[0] = subs[0] - share.start
            if subs[0].size and (subs[0].min() < 0 or subs[0].max() >= len(value)):
                raise _Unknown   # a row another process holds
        try:
            return np.asarray(value)[tuple(subs)]
        except (IndexError, TypeError):
            raise _Unknown from None
    if isinstance(expr, ast.UnaryOp) and expr.op == "-":
        return -_evaluate(expr.operand, env, graph)
    if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "//", "%", "/", "**"):
        left, right = _evaluate(expr.left, env, graph), _evaluate(expr.right, env, graph)
        with np.errstate(all="ignore"):
            return {"+": np.add, "-": np.subtract, "*": np.multiply, "//": np.floor_divide,
                    "%": np.mod, "/": np.true_divide, "**": np.power}[expr.op](left, right)
    raise _Unknown


def _additive_terms(expr) -> list:
    if isinstance(expr, ast.BinOp) and expr.op == "+":
        return _additive_terms(expr.left) + _additive_terms(expr.right)
    return [expr]
