"""The graph IR: one node per model variable, edges for dependencies, plates as attributes.

A model is a set of declarations, so its meaning is a directed acyclic graph: each variable
(data, latent, observed, deterministic) and each `factor` is one node; an edge u -> v says
that v's definition reads u. A variable defined piecewise (`x[0] ~ ...`, then `x[t] ~ ...`
in a loop) is still one node with several `Piece`s, and a loop over N is a `Plate` of its
piece, never N nodes: the IR's size does not grow with the data.

Node attributes are frozen values (`Variable`), so a pass may start from `graph.copy()`
and replace nodes without touching the graph it was given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import networkx as nx

from pplc.errors import Source, Span
from pplc.frontend import ast


class Kind(str, enum.Enum):
    DATA = "data"                    # supplied, with no distribution
    LATENT = "latent"                # ~, not supplied: sampled
    OBSERVED = "observed"            # ~, supplied: conditions the model
    DETERMINISTIC = "deterministic"  # =, recorded with the draws
    FACTOR = "factor"                # a term added to the log density


@dataclass(frozen=True)
class Plate:
    """`for index in range(start, stop)`: the piece holds for every value of `index`."""

    index: str
    start: ast.Expr | None
    stop: ast.Expr
    span: Span


@dataclass(frozen=True)
class Piece:
    """One statement defining a variable, or part of it.

    `indices` is the left side's subscript (`theta[j]` -> (j,)), None for the whole
    variable. Exactly one of `distribution` (for `~`) and `value` (for `=` and `factor`)
    is set.
    """

    plates: tuple[Plate, ...]
    indices: tuple[ast.Expr | ast.Slice, ...] | None
    distribution: ast.Call | None
    value: ast.Expr | None
    span: Span
    decorators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Kind
    pieces: tuple[Piece, ...]
    declared_type: ast.Type | None
    span: Span
    recursive: bool = False      # a piece reads an earlier element of the variable itself
    internal: bool = False       # made by a pass (e.g. a noncentered variable's raw draws)
    marginalized: bool = False   # a discrete latent summed out: holds log P(value | rest)
    # For an internal latent: `=` pieces computing it from the user's variables (the
    # inverse of the pass's rewrite), so values given by a user map to the sampler's space.
    recover: tuple[Piece, ...] = ()

    @property
    def plates(self) -> tuple[Plate, ...]:
        """The plates of all pieces, outermost first, without repeats."""
        seen: dict[str, Plate] = {}
        for piece in self.pieces:
            for plate in piece.plates:
                seen.setdefault(plate.index, plate)
        return tuple(seen.values())

    @property
    def stochastic(self) -> bool:
        return self.kind in (Kind.LATENT, Kind.OBSERVED)


@dataclass(frozen=True)
class Note:
    """A decision a pass made, for `pplc explain`: where, which pass, and why."""

    pass_name: str
    span: Span
    message: str


@dataclass
class Graph:
    """A model as a DAG of `Variable`s, plus what its expressions may call.

    A conditioned graph (`conditioned`) is a new graph with the data bound: `data` holds
    the values (names -> NumPy values), for passes whose decisions depend on them; `shapes`
    and `dtypes` every variable's, and `states` the number of values of every discrete
    latent with finite support, all found once by the shape analysis, so that passes read
    them and never guess. `notes` accumulates the passes' decisions.
    """

    dag: nx.DiGraph
    source: Source
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    externs: dict[str, ast.ExternDef] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, Any] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    # `order()`, computed once: a graph's dag is not changed in place once the graph is
    # built (every rewrite works on a copy: `copy`, `with_variable`,
    # `build.replace_variables`), and a copy starts without it. One `condition` asks for
    # the order ~60 times (the shape analysis, the passes, the lowering), each a
    # lexicographic topological sort in networkx: most of conditioning's time on small models.
    _order: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def copy(self) -> "Graph":
        return Graph(self.dag.copy(), self.source, dict(self.functions), dict(self.externs),
                     dict(self.data), self.notes, dict(self.shapes), dict(self.dtypes),
                     dict(self.states))

    def conditioned(self, data: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                    dtypes: dict[str, Any], states: dict[str, int]) -> "Graph":
        """A new graph with the data and what the shape analysis found bound (this one is
        left as it is)."""
        graph = self.copy()
        graph.data, graph.shapes, graph.dtypes = dict(data), dict(shapes), dict(dtypes)
        graph.states = dict(states)
        return graph

    @property
    def shaped(self) -> bool:
        return bool(self.shapes)

    def with_notes(self, *notes: Note) -> "Graph":
        graph = self.copy()
        graph.notes = self.notes + notes
        return graph

    def __getitem__(self, name: str) -> Variable:
        return self.dag.nodes[name]["variable"]

    def __contains__(self, name: str) -> bool:
        return name in self.dag

    def variables(self) -> Iterator[Variable]:
        """Every node, in a topological order that keeps source order where it is free."""
        for name in self.order():
            yield self[name]

    def order(self) -> list[str]:
        """An evaluation order of the values; ties keep the order of the source lines.

        Deterministic arrays that read each other's elements (`groups`) come together, in
        source order; they are computed jointly."""
        if self._order is None:
            self._order = self._evaluation_order()
        return list(self._order)

    def _evaluation_order(self) -> list[str]:
        line = {n: (self[n].span.line, self[n].span.column) for n in self.dag}
        value = self.value_dag()
        if nx.is_directed_acyclic_graph(value):
            return list(nx.lexicographical_topological_sort(value, key=lambda n: (line[n], n)))
        condensed = nx.condensation(value)
        first = {c: min((line[n], n) for n in condensed.nodes[c]["members"])
                 for c in condensed}
        return [n for c in nx.lexicographical_topological_sort(condensed, key=first.get)
                for n in sorted(condensed.nodes[c]["members"], key=lambda n: (line[n], n))]

    def groups(self) -> list[tuple[str, ...]]:
        """Variables whose values depend on each other (a cycle of the value graph), in
        order; build refuses any but deterministic arrays, whose elements may be acyclic."""
        order = {n: i for i, n in enumerate(self.order())}
        return sorted((tuple(sorted(c, key=order.get))
                       for c in nx.strongly_connected_components(self.value_dag())
                       if len(c) > 1), key=lambda g: order[g[0]])

    def value_dag(self) -> nx.DiGraph:
        """Only the edges a value needs (edge attribute `value`); the order of evaluation.

        All edges (`dag`) are the model's dependencies, for pictures and passes; a `~`
        variable's density needs its parents but its value mostly does not (see
        `build._value_reads`), so `dag` itself may have cycles through observed or latent
        nodes while `value_dag` has none.
        """
        return nx.subgraph_view(self.dag, filter_edge=lambda u, v: self.dag.edges[u, v]["value"])

    def of_kind(self, *kinds: Kind) -> list[Variable]:
        return [v for v in self.variables() if v.kind in kinds]

    def through_deterministics(self, name: str) -> Iterator[tuple[str, str]]:
        """(parent, child) for every variable reached from `name` by following its readers
        through deterministics (each reached once): where a latent's value goes, up to the
        observations that inform it."""
        frontier, seen = [name], {name}
        while frontier:
            current = frontier.pop()
            for child in self.dag.successors(current):
                if child in seen:
                    continue
                seen.add(child)
                yield current, child
                if self[child].kind is Kind.DETERMINISTIC:
                    frontier.append(child)

    def parents(self, name: str) -> list[str]:
        return sorted(self.dag.predecessors(name))

    def with_variable(self, variable: Variable) -> "Graph":
        """A copy of the graph with one node's attributes replaced (edges unchanged)."""
        graph = self.copy()
        graph.dag.nodes[variable.name]["variable"] = variable
        return graph


def reads_itself(name: str, piece: Piece) -> bool:
    """The one definition of a recursive piece: its value or distribution reads its own
    variable (`h[t] = f(h[t - 1])`, `x[t] ~ Normal(x[t - 1], s)`)."""
    exprs = [e for e in (piece.distribution, piece.value) if e is not None]
    return any(n.id == name for e in exprs for n in ast.names_in(e))


def set_kind(variable: Variable, kind: Kind) -> Variable:
    return replace(variable, kind=kind)
