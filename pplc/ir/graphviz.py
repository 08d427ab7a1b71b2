"""The IR as a picture: a probabilistic graphical model drawn with Graphviz.

The conventions are the textbook ones (Bishop, PRML ch. 8; daft; numpyro's
`render_model`), so a reader who knows PGMs needs no legend:

* latent variable: open (white) ellipse, labelled `name` over `~ Distribution(...)`;
* observed variable: the same, shaded gray;
* deterministic: dashed ellipse, labelled `name` over `= expr` (shortened with "…");
* data: a small gray square, its name beside it;
* factor: a small black square, labelled `factor` (the full term is its tooltip);
* plates: boxes (Graphviz `cluster_*` subgraphs) labelled in their bottom-right corner
  with their size: the loop's range, `J`, or `J = 8` when `sizes` gives the data sizes;
  nested loops are nested boxes. Loops over the same range are one plate.

A variable sits in the plates its pieces share: `theta[j] ~ ...` inside `for j in
range(J)` is in plate `J`; a variable defined piecewise inside and outside a loop
(`sigma[0] = ...; for t in range(1, T): sigma[t] = ...`) sits outside it.

A whole-array statement sits in the plate over its first declared size, as its loop
would: `beta: real[K] ~ Normal(0, 1)` in plate `K`, and `y ~ Bernoulli(...)` with
`data y: int[N]` in plate `N`; not when its distribution draws whole vectors (Dirichlet,
MultivariateNormal) or its type ties the elements together (`simplex`, `ordered`): those
are one draw, outside any plate. A data array sits in the plate over its first declared
size (`week: real[N]` in plate `N`). Data used only as sizes (`J` in `range(J)` or
`real[J]`) are left out, as daft and
numpyro do: the plate label already says `J`. Data read anywhere else (in a
distribution, a value, an index or a bound) are drawn, with their edges.

A pass's internal terms are hidden: a noncentered `theta_std ~ Normal(0.0 * mu + 0.0 *
tau, 1)` keeps the shape of `mu` and `tau` with its zeros, which is bookkeeping, not a
dependence: it is drawn `~ Normal(0, 1)`, with no edges from `mu` and `tau`.

Nodes come in `Graph.order()` (topological, source order on ties), clusters in order of
their range text and edges sorted, so the DOT source is the same on every run.

    from pplc.ir.graphviz import render, to_dot
    render(pplc.compile("eight_schools.ppl").graph, "eight_schools.svg")
"""

from __future__ import annotations

import html
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import graphviz
import networkx as nx

from pplc.errors import error
from pplc.files import write_bytes
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.library import DISTRIBUTIONS
from pplc.ir.graph import Graph, Kind, Piece, Plate, Variable

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"}

_MAX_EXPR = 28        # characters of a distribution or value before "…"
_MAX_PIECES = 3       # lines of pieces shown for a piecewise variable
_FONT = "Helvetica"

_NODE_STYLE: dict[Kind, dict[str, str]] = {
    Kind.LATENT: dict(shape="ellipse", style="filled", fillcolor="white"),
    Kind.OBSERVED: dict(shape="ellipse", style="filled", fillcolor="gray80"),
    Kind.DETERMINISTIC: dict(shape="ellipse", style="dashed"),
}
# Data and factors are small squares with their name beside them: an HTML-like label
# whose square cell is the port "box" that edges attach to (an `xlabel` would be placed
# after layout and may sit on an edge).
_SQUARE_FILL = {Kind.DATA: "gray60", Kind.FACTOR: "black"}
_SQUARE_PX = 9
PORT = "box"

# A plate's key: its range as text, (start or "", stop); a node's place is a path of keys.
PlateKey = tuple[str, str]


def to_dot(graph: Graph, sizes: Mapping[str, int] | None = None) -> graphviz.Digraph:
    """The model as a Graphviz digraph in PGM notation (see the module docstring).

    Parameters: `graph`, a model's IR (`Model.graph` or `ConditionedModel.graph`);
    `sizes`, optional data sizes (`{"J": 8}`) to print on plate labels as `J = 8`.
    Returns a `graphviz.Digraph`; `.source` is the DOT text.
    """
    sizes = dict(sizes or {})
    hidden = _size_only(graph)
    dot = graphviz.Digraph(name="model")
    dot.attr(rankdir="TB", nodesep="0.35", ranksep="0.45",
             fontname=_FONT, fontsize="11")
    dot.attr("node", fontname=_FONT, fontsize="11", margin="0.06,0.03")
    dot.attr("edge", arrowsize="0.7")

    shown = [name for name in graph.order() if name not in hidden]
    place = {name: _common_path(graph[name]) for name in shown}
    plates: dict[PlateKey, Plate] = {}
    for name in shown:
        for piece in graph[name].pieces:
            for plate in piece.plates:
                plates.setdefault(_plate_key(plate), plate)
    for name in shown:
        variable = graph[name]
        if variable.kind is Kind.DATA or (not place[name] and _whole_array(variable)):
            place[name] = _first_size_path(variable, plates)

    paths = sorted({path[:depth] for path in place.values()
                    for depth in range(1, len(path) + 1)})
    cluster_id = {path: f"cluster_{i}" for i, path in enumerate(paths)}

    def fill(body: graphviz.Digraph, path: tuple[PlateKey, ...]) -> None:
        for name in shown:
            if place[name] == path:
                body.node(_node_id(name), **_node_attrs(graph[name]))
        for child in paths:
            if len(child) == len(path) + 1 and child[:len(path)] == path:
                with body.subgraph(name=cluster_id[child]) as sub:
                    sub.attr(label=_plate_label(plates[child[-1]], sizes),
                             labeljust="r", labelloc="b", style="solid", color="black",
                             fontname=_FONT, fontsize="10", margin="10")
                    fill(sub, child)

    fill(dot, ())
    rank = {name: i for i, name in enumerate(shown)}
    edges = sorted(((u, v) for u, v in graph.dag.edges if u in rank and v in rank
                    and not _bookkeeping(graph, u, v)),
                   key=lambda e: (rank[e[1]], rank[e[0]]))
    feedback = _feedback_edges(graph)
    for u, v in edges:
        tail, head = _endpoint(graph, u), _endpoint(graph, v)
        if (u, v) in feedback:
            dot.edge(tail, head, constraint="false")
        else:
            dot.edge(tail, head)
    return dot


def render(graph: Graph, path: str | Path, sizes: Mapping[str, int] | None = None) -> Path:
    """Draw the model to `path`; the suffix picks the format (.svg, .png, .pdf, .dot).

    `.dot` writes the DOT source and needs no Graphviz; the others run Graphviz's `dot`.
    Raises `PplcError` for an unknown suffix or a missing `dot`. Returns the path written.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise error(f"cannot draw the model to '{path}': unknown picture format "
                    f"'{path.suffix or '(no suffix)'}'",
                    hint="end the file name with one of " + ", ".join(FORMATS))
    dot = to_dot(graph, sizes)
    if fmt == "dot":
        write_bytes(path, dot.source.encode())
        return path
    if shutil.which("dot") is None:
        raise _no_dot(path)
    try:
        image = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise _no_dot(path) from None
    except graphviz.CalledProcessError as exc:
        stderr = (exc.stderr or b"").decode(errors="replace").strip()
        raise error(f"Graphviz's `dot` failed to draw '{path}': {stderr or exc}",
                    hint="write the DOT source with a '.dot' suffix to inspect it") from None
    write_bytes(path, image)   # whole or not at all, with the user's umask
    return path


def to_svg(graph: Graph, sizes: Mapping[str, int] | None = None) -> str:
    """The picture as SVG text (what `Model.graph_svg` returns and notebooks show).

    Raises `PplcError` when Graphviz's `dot` program is missing."""
    if shutil.which("dot") is None:
        raise _no_dot(Path("<svg>"))
    try:
        return to_dot(graph, sizes).pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise _no_dot(Path("<svg>")) from None


def _no_dot(path: Path):
    return error(f"cannot draw the model to '{path}': Graphviz's `dot` program is not "
                 "on PATH",
                 hint="install Graphviz (apt install graphviz, brew install graphviz or "
                      "conda install graphviz), or write the DOT source with a '.dot' suffix")


# ---------------------------------------------------------------- plates


def _plate_key(plate: Plate) -> PlateKey:
    return (to_source(plate.start) if plate.start is not None else "", to_source(plate.stop))


def _common_path(variable: Variable) -> tuple[PlateKey, ...]:
    """The plates every piece of the variable lies in, outermost first."""
    paths = [tuple(_plate_key(p) for p in piece.plates) for piece in variable.pieces]
    if not paths:
        return ()
    common = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(common), len(path)) and common[n] == path[n]:
            n += 1
        common = common[:n]
    return common


# Declared types whose elements are drawn independently by an elementwise statement; the
# others (simplex, ordered, cov, ...) tie them together into one draw.
_ELEMENTWISE_TYPES = {"real", "int", "positive", "unit"}


def _whole_array(variable: Variable) -> bool:
    """A `~` of a whole array, element by element: `beta: real[K] ~ Normal(0, 1)`."""
    declared = variable.declared_type
    if declared is None or not declared.shape or declared.base not in _ELEMENTWISE_TYPES:
        return False
    if variable.kind not in (Kind.LATENT, Kind.OBSERVED) or not variable.pieces:
        return False
    for piece in variable.pieces:
        info = DISTRIBUTIONS.get(piece.distribution.func) \
            if isinstance(piece.distribution, ast.Call) else None
        if piece.indices is not None or piece.plates or info is None or info.event_ndim:
            return False
    return True


def _first_size_path(variable: Variable, plates: dict[PlateKey, Plate]
                     ) -> tuple[PlateKey, ...]:
    """The top-level plate over the first declared size (`week: real[N]` in plate `N`),
    made when no loop of the model runs over exactly that range."""
    shape = variable.declared_type.shape if variable.declared_type is not None else ()
    if not shape:
        return ()
    key = ("", to_source(shape[0]))
    plates.setdefault(key, Plate("", None, shape[0], variable.declared_type.span))
    return (key,)


def _plate_label(plate: Plate, sizes: Mapping[str, int]) -> str:
    """The plate's size: `J`, `T - 1` for range(1, T); `J = 8` when the sizes are known."""
    stop = plate.stop
    size: ast.Expr = stop if plate.start is None else ast.BinOp("-", stop, plate.start,
                                                                  plate.span)
    text = _simplify(size)
    value = _evaluate(size, sizes)
    if value is not None and text != str(value):
        text += f" = {value}"
    return text


def _simplify(expr: ast.Expr) -> str:
    """`N - 0` -> `N`, `5 - 1` -> `4`; otherwise the expression as written."""
    if isinstance(expr, ast.BinOp) and expr.op == "-" and isinstance(expr.right, ast.Number) \
            and expr.right.value == 0:
        return to_source(expr.left)
    value = _evaluate(expr, {})
    return str(value) if value is not None else to_source(expr)


def _evaluate(expr: object, sizes: Mapping[str, int]) -> int | None:
    """An integer size from numbers, known names and + - * //; None when not known."""
    if isinstance(expr, ast.Number):
        return expr.value if isinstance(expr.value, int) else None
    if isinstance(expr, ast.Name):
        value = sizes.get(expr.id)
        return int(value) if hasattr(value, "__index__") else None
    if isinstance(expr, ast.UnaryOp) and expr.op == "-":
        value = _evaluate(expr.operand, sizes)
        return None if value is None else -value
    if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "//"):
        left, right = _evaluate(expr.left, sizes), _evaluate(expr.right, sizes)
        if left is None or right is None or (expr.op == "//" and right == 0):
            return None
        if expr.op == "//":
            return left // right
        return left + right if expr.op == "+" else left - right if expr.op == "-" \
            else left * right
    return None


# ---------------------------------------------------------------- nodes


def _size_only(graph: Graph) -> set[str]:
    """Data nodes whose every use is a size: a loop bound or a declared shape."""
    used_as_value: set[str] = set()
    for variable in graph.variables():
        exprs: list = []
        for piece in variable.pieces:
            exprs.extend(piece.indices or ())
            exprs.extend(e for e in (piece.distribution, piece.value) if e is not None)
        if variable.declared_type is not None:
            exprs.extend(b.value for b in variable.declared_type.bounds)
        for expr in exprs:
            used_as_value |= {n.id for n in ast.names_in(expr)}
    return {v.name for v in graph.of_kind(Kind.DATA)
            if graph.dag.out_degree(v.name) > 0 and v.name not in used_as_value}


def _feedback_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges out of a `~` variable that close a cycle of dependencies; they do not rank.

    `dag` may have cycles through stochastic nodes (GARCH: `y ~ Normal(mu, sigma)` and
    `sigma[t]` reads `y[t - 1]`, see `Graph.value_dag`). Left to itself Graphviz reverses
    an arbitrary edge of the cycle; laying out only the other edges keeps the generative
    direction, parameters above what they generate (`sigma` above `y`).
    """
    component = {}
    for i, names in enumerate(nx.strongly_connected_components(graph.dag)):
        for name in names:
            component[name] = i
    return {(u, v) for u, v in graph.dag.edges
            if component[u] == component[v] and graph[u].stochastic}


def _node_id(name: str) -> str:
    """A DOT id: `:` would start a port (`factor@25:1`), so factors get `factor@25.1`."""
    return name.replace(":", ".")


def _endpoint(graph: Graph, name: str) -> str:
    """Where an edge attaches: the square itself for data and factors."""
    port = f":{PORT}" if graph[name].kind in _SQUARE_FILL else ""
    return _node_id(name) + port


def _node_attrs(variable: Variable) -> dict[str, str]:
    if variable.kind in _SQUARE_FILL:
        text = "factor" if variable.kind is Kind.FACTOR else variable.name
        tooltip = ("factor " + to_source(variable.pieces[0].value)
                   if variable.kind is Kind.FACTOR else variable.name)
        square = (f'<TD PORT="{PORT}" FIXEDSIZE="TRUE" WIDTH="{_SQUARE_PX}" '
                  f'HEIGHT="{_SQUARE_PX}" BGCOLOR="{_SQUARE_FILL[variable.kind]}" '
                  f'BORDER="1" COLOR="gray20"></TD>')
        label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="0"><TR>'
                 f'<TD>{html.escape(text)}</TD>{square}</TR></TABLE>>')
        return dict(shape="plain", label=label, tooltip=tooltip)
    return dict(_NODE_STYLE[variable.kind], label=_label(variable))


def _label(variable: Variable) -> str:
    """`theta` over `~ Normal(mu, tau)`; a piecewise variable gets one line per piece."""
    pieces = variable.pieces
    lines = [variable.name]
    for piece in pieces[:_MAX_PIECES]:
        target = ""
        if len(pieces) > 1 and piece.indices is not None:
            target = "[" + ", ".join(to_source(i) for i in piece.indices) + "] "
        lines.append(target + _rhs(piece))
    if len(pieces) > _MAX_PIECES:
        lines.append("…")
    return "\n".join(lines)


def _rhs(piece: Piece) -> str:
    if piece.distribution is not None:
        return "~ " + _shorten(to_source(_without_zero_terms(piece.distribution)))
    return "= " + _shorten(to_source(_without_zero_terms(piece.value)))


def _is_zero(expr) -> bool:
    return isinstance(expr, ast.Number) and expr.value == 0


def _without_zero_terms(expr):
    """`0.0 * mu + 0.0 * tau` -> `0`: the terms a pass adds only to keep a shape."""
    if isinstance(expr, ast.BinOp):
        left, right = _without_zero_terms(expr.left), _without_zero_terms(expr.right)
        if expr.op == "*" and (_is_zero(left) or _is_zero(right)):
            return ast.Number(0, expr.span)
        if expr.op == "+" and _is_zero(left):
            return right
        if expr.op in ("+", "-") and _is_zero(right):
            return left
        return replace(expr, left=left, right=right)
    if isinstance(expr, ast.Call):
        return replace(expr, args=tuple(_without_zero_terms(a) for a in expr.args),
                       keywords=tuple(replace(k, value=_without_zero_terms(k.value))
                                      for k in expr.keywords))
    return expr


def _bookkeeping(graph: Graph, tail: str, head: str) -> bool:
    """An edge into a pass's internal variable from a name that only its zero terms read
    (see the module docstring)."""
    variable = graph[head]
    if not variable.internal:
        return False
    read: set[str] = set()
    for piece in variable.pieces:
        for expr in (piece.distribution, piece.value, *(piece.indices or ())):
            if expr is not None:
                read |= {n.id for n in ast.names_in(_without_zero_terms(expr))}
        for plate in piece.plates:
            read |= {n.id for e in (plate.start, plate.stop) if e is not None
                     for n in ast.names_in(e)}
    declared = variable.declared_type
    if declared is not None:
        read |= {n.id for e in (*declared.shape, *(b.value for b in declared.bounds))
                 for n in ast.names_in(e)}
    return tail not in read


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_EXPR else text[:_MAX_EXPR - 1].rstrip() + "…"
