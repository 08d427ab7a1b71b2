"""AST -> graph IR.

Each variable becomes one node whatever the number of statements and loop iterations
that define it; a statement inside loops becomes a `Piece` with one `Plate` per loop.
Whether a `~` variable is observed or latent is decided by the data (as in BUGS): a
variable whose values are supplied is observed, one that is not is latent. Without data
(`pplc ir MODEL.ppl`), variables declared with `data` count as supplied.
"""

from __future__ import annotations

from typing import Iterable

import networkx as nx

from pplc.errors import error
from pplc.frontend import ast
from pplc.frontend.check import Definitions, check_program, flatten
from pplc.frontend.library import BUILTINS, DISTRIBUTIONS, bind_arguments
from pplc.ir.graph import Graph, Kind, Piece, Plate, Variable, reads_itself


def build_graph(program: ast.Program, supplied: Iterable[str] | None = None,
                definitions: Definitions | None = None) -> Graph:
    """Check `program` and turn it into a Graph; `supplied` names the data given."""
    defs = definitions or check_program(program)
    supplied = set(defs.data) if supplied is None else set(supplied)
    source = program.source
    dag = nx.DiGraph()
    pieces: dict[str, list[Piece]] = {}
    factors: list[tuple[str, Piece]] = []

    for statement, loops in flatten(program.statements):
        plates = tuple(Plate(loop.var, loop.start, loop.stop, loop.span) for loop in loops)
        if isinstance(statement, ast.Sample):
            piece = Piece(plates, statement.target.indices, statement.distribution, None,
                          statement.span, statement.decorators)
            pieces.setdefault(statement.target.name, []).append(piece)
        elif isinstance(statement, ast.Assign):
            piece = Piece(plates, statement.target.indices, None, statement.value,
                          statement.span)
            pieces.setdefault(statement.target.name, []).append(piece)
        elif isinstance(statement, ast.Factor):
            name = f"factor@{statement.span.line}:{statement.span.column}"
            factors.append((name, Piece(plates, None, None, statement.expr, statement.span)))

    for name in sorted(defs.variables(), key=lambda n: _first_line(n, defs)):
        decl = defs.data.get(name)
        if name in defs.sampled:
            kind = Kind.OBSERVED if name in supplied else Kind.LATENT
            declared = decl.type if decl else next(
                (s.type for s in defs.sampled[name] if s.type is not None), None)
        elif name in defs.assigned:
            kind, declared = Kind.DETERMINISTIC, None
        else:
            kind, declared = Kind.DATA, decl.type
        span = decl.name_span if decl else (defs.sampled.get(name) or
                                            defs.assigned[name])[0].target.name_span
        own = tuple(pieces.get(name, ()))
        recursive = any(reads_itself(name, p) for p in own)
        dag.add_node(name, variable=Variable(name, kind, own, declared, span, recursive))
    for name, piece in factors:
        dag.add_node(name, variable=Variable(name, Kind.FACTOR, (piece,), None, piece.span))

    for name in list(dag.nodes):
        add_edges(dag, dag.nodes[name]["variable"])

    graph = Graph(dag, source, dict(defs.functions), dict(defs.externs))
    _refuse_cycles(graph)
    _refuse_random_cycles(graph)
    return graph


def add_edges(dag: nx.DiGraph, variable: Variable) -> None:
    """Edges from everything `variable` reads to it; `value` marks those its value needs."""
    reads: set[str] = set()
    for piece in variable.pieces:
        reads |= reads_of(piece)
    value_reads = _value_reads(variable) if variable.stochastic else reads
    if variable.declared_type is not None:
        type_reads = _names(_type_exprs(variable.declared_type))
        reads |= type_reads
        value_reads |= type_reads
    for parent in sorted(reads - {variable.name}):
        if parent in dag:  # not a constant such as `pi`
            dag.add_edge(parent, variable.name, value=parent in value_reads)


def replace_variables(graph: Graph, variables: list[Variable]) -> Graph:
    """A copy of `graph` with these nodes added or replaced and their in-edges re-derived.

    The building block of rewriting passes: edges always follow from the pieces, so a pass
    only says what the new variables are.
    """
    new = graph.copy()
    for variable in variables:
        if variable.name in new.dag:
            new.dag.remove_edges_from(list(new.dag.in_edges(variable.name)))
        new.dag.add_node(variable.name, variable=variable)
    for variable in variables:
        add_edges(new.dag, variable)
    _refuse_cycles(new)
    return new


def _first_line(name: str, defs: Definitions) -> int:
    if name in defs.data:
        return defs.data[name].span.line
    return (defs.sampled.get(name) or defs.assigned[name])[0].span.line


def _type_exprs(type_: ast.Type) -> list[ast.Expr]:
    return list(type_.shape) + [b.value for b in type_.bounds]


def _names(exprs) -> set[str]:
    return {n.id for e in exprs if e is not None for n in ast.names_in(e)}


def reads_of(piece: Piece) -> set[str]:
    """The variables a piece reads: arguments, values, subscripts and loop bounds."""
    exprs: list = list(piece.indices or ())
    if piece.distribution is not None:
        exprs.append(piece.distribution)
    if piece.value is not None:
        exprs.append(piece.value)
    for plate in piece.plates:
        exprs.extend([plate.start, plate.stop])
    loop_vars = {plate.index for plate in piece.plates}
    return _names(exprs) - loop_vars


def _value_reads(variable: Variable) -> set[str]:
    """What a `~` variable's *value* needs: the bounds of its support, sizes and subscripts.

    A latent's value comes from the sampler and an observed one's from the data, so only a
    support that moves with other variables (`b ~ Uniform(0, 1 - a)`) makes the value wait
    for them. Its density needs all parents, but densities are summed after every value is
    known, so `y[t] ~ Normal(0, sigma[t])` with `sigma[t]` reading `y[t - 1]` (GARCH) is
    no cycle.
    """
    reads: set[str] = set()
    for piece in variable.pieces:
        exprs: list = list(piece.indices or ())
        for plate in piece.plates:
            exprs.extend([plate.start, plate.stop])
        call = piece.distribution
        info = DISTRIBUTIONS.get(call.func)
        if info is not None:
            bound_params = {b for b in (info.support.lower, info.support.upper)
                            if isinstance(b, str)}
            try:
                positional, _ = bind_arguments(info, len(call.args),
                                               [k.name for k in call.keywords])
            except ValueError:
                positional = ()
            exprs.extend(a for p, a in zip(positional, call.args) if p in bound_params)
            exprs.extend(k.value for k in call.keywords if k.name in bound_params)
        reads |= _names(exprs) - {plate.index for plate in piece.plates}
    return reads


def _refuse_cycles(graph: Graph) -> None:
    """A cycle of values is refused, unless it is among deterministic arrays only: those
    may read each other's earlier elements (`nu[t]` reads `err[t - 1]`, `err[t]` reads
    `nu[t]`), which the backend checks and orders element by element."""
    value = graph.value_dag()
    if nx.is_directed_acyclic_graph(value):
        return
    for component in nx.strongly_connected_components(value):
        if len(component) > 1 and any(graph[n].kind is not Kind.DETERMINISTIC
                                      or all(p.indices is None for p in graph[n].pieces)
                                      for n in component):
            break
    else:
        return
    cycle = nx.find_cycle(value.subgraph(component))
    names = [u for u, _ in cycle]
    first = min(names, key=lambda n: graph[n].span.line)
    start = names.index(first)
    names = names[start:] + names[:start]
    chain = " -> ".join(names + [names[0]])
    raise error(f"these variables depend on each other in a cycle: {chain}", graph.source,
                graph[first].span,
                hint="a model is a directed acyclic graph: a variable cannot depend on itself "
                     "through others")


def _refuse_random_cycles(graph: Graph) -> None:
    """Latent variables whose distributions read each other in a cycle (`a ~ Normal(b, 1)`
    with `b ~ Normal(a, 1)`, `x ~ Normal(x, 1)`) are refused: the product of their densities
    is no joint distribution (here an improper one, flat along a = b).

    The value graph cannot see these cycles: a `~` variable's value comes from the sampler
    or the data, not from its parameters. And the graph of all reads has cycles that are
    sound element by element (GARCH: `y ~ Normal(0, sigma)` with `sigma[t]` reading
    `y[t - 1]`). So a cycle is refused only where the text proves that some element depends
    on itself, whatever the data (`_Reads`): a cycle of reads that tie each element to the
    same element or to all of them, or a cycle through a read of a whole array by a
    reduction (`alpha[j] ~ Normal(mean(z), 1)`) whose other reads are made by every piece.
    Other cycles (`y[t + 1]` one way, `y[t - 1]` the other) are left to the analysis.

    Observed variables and data break cycles: they are fixed numbers, so a prior that reads
    the data (`mu ~ Normal(mean(y), 10)` with `y ~ Normal(mu, 1)` observed, as Stan allows)
    is a proper density. The same model with `y` not supplied is a cycle of latents."""
    reads = {name: _Reads.of(graph[name]) for name in graph.dag.nodes
             if graph[name].kind in (Kind.LATENT, Kind.DETERMINISTIC)}
    tied, every = nx.DiGraph(), nx.DiGraph()
    names = set(reads)   # once: a set per variable made checking quadratic in model length
    for name, of in reads.items():
        for parent in of.tied & names:
            tied.add_edge(parent, name)
        for parent in of.every & names:
            every.add_edge(parent, name)
    for component in nx.strongly_connected_components(tied):
        if not any(graph[n].kind is Kind.LATENT for n in component):
            continue  # deterministic arrays: their cycles are refused or ordered elsewhere
        first = min(component, key=lambda n: (graph[n].span.line, graph[n].span.column))
        if len(component) > 1 or tied.has_edge(first, first):
            edges = nx.find_cycle(tied.subgraph(component), source=first)
            _refuse_cycle(graph, [u for u, _ in edges], "tied")
    latent_components = [c for c in nx.strongly_connected_components(every)
                         if any(graph[n].kind is Kind.LATENT for n in c)]
    for component in latent_components:
        for name in sorted(component):
            for parent in sorted(reads[name].total & component):
                back = nx.shortest_path(every, name, parent) if parent != name else [name]
                _refuse_cycle(graph, back, "every")


def _refuse_cycle(graph: Graph, cycle: list[str], how: str) -> None:
    """`cycle`: each name read by the next, the last by the first, each read as `how`
    says (a field of `_Reads`). Shown from its earliest statement, at the read closing
    it."""
    start = cycle.index(min(cycle, key=lambda n: (graph[n].span.line, graph[n].span.column)))
    cycle = cycle[start:] + cycle[:start]
    chain = " -> ".join(cycle + [cycle[0]])
    first = graph[cycle[0]]
    reader = next((p for p in first.pieces if cycle[-1] in getattr(_Reads.of(Variable(
        first.name, first.kind, (p,), None, p.span)), how)), None)
    what = f"'{cycle[0]}' depends on itself" if len(cycle) == 1 else \
        "these variables depend on each other in a cycle"
    raise error(f"{what}: {chain}", graph.source,
                reader.span if reader is not None else first.span,
                hint="a model is a directed acyclic graph: random variables cannot "
                     "read each other in a cycle (their densities would make no joint "
                     "distribution); give one of them a distribution that does not read "
                     "the others, or read earlier elements only (x[t - 1])")


# Calls whose result's elements each depend on the same elements of their arguments, or
# on all of them (the library's axis rules): they keep an element-level cycle a cycle.
_TYING_CALLS = frozenset(name for name, b in BUILTINS.items()
                         if b.axes in ("elementwise", "reduce", "same")) - {"len"}
_REDUCTIONS = frozenset(name for name, b in BUILTINS.items() if b.axes == "reduce") - {"len"}
_TYING_NODES = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp)


class _Reads:
    """How a variable reads others, as far as the text proves, for every piece alike:

    - `tied`: each element it defines depends on the same element of the other, or on all
      of them: bare names (`y ~ Normal(mu, s)`, `sum(x)`) and subscripts equal to the
      piece's own (`x[t] ~ Normal(y[t], 1)`), reached only through arithmetic, elementwise
      functions and reductions. A list, a slice, another subscript (`y[t - 1]`), `len`, a
      `def` or an extern may shift elements, and does not count;
    - `total`: each element depends on every element of the other (a reduction of it:
      `mean(z)`);
    - `every`: each element depends on some element of the other (any read but `len`).

    Every piece must read a name so for it to count (which elements each piece defines is
    known only with the data), except the variable's own name in `tied` and `total`: a
    piece whose elements read themselves so is a cycle whatever the others define.
    """

    def __init__(self, tied: set[str], total: set[str], every: set[str]):
        self.tied, self.total, self.every = tied, total, every

    @staticmethod
    def of(variable: Variable) -> "_Reads":
        per_piece = []
        for piece in variable.pieces:
            own = None if piece.indices is None else \
                tuple(ast.to_source(i) for i in piece.indices)
            roots = [piece.value] if piece.value is not None else []
            if piece.distribution is not None:
                roots.extend(_distribution_arguments(piece.distribution))
            found = (set(), set(), set())
            for root in roots:
                _classify(root, own, found, tied=True, total=False)
            per_piece.append(found)
        sets = []
        for k in range(3):
            common = set.intersection(*(f[k] for f in per_piece)) if per_piece else set()
            if k < 2 and any(variable.name in f[k] for f in per_piece):
                common.add(variable.name)
            sets.append(common)
        tied, total, every = sets
        if variable.declared_type is not None:  # a support bound: each element depends on it
            for bound in variable.declared_type.bounds:
                found = (set(), set(), set())
                _classify(bound.value, None, found, tied=True, total=False)
                tied |= found[0]
                every |= found[2]
        return _Reads(tied, total, every)


def _distribution_arguments(call: ast.Call) -> list:
    """A distribution call's argument expressions, those of a wrapped one included."""
    out = []
    for arg in (*call.args, *(k.value for k in call.keywords)):
        if isinstance(arg, ast.Call) and arg.func in DISTRIBUTIONS:
            out.extend(_distribution_arguments(arg))
        else:
            out.append(arg)
    return out


def _classify(expr, own: tuple[str, ...] | None, found: tuple[set, set, set], tied: bool,
              total: bool) -> None:
    """Add the names `expr` reads to `found` = (tied, total, every); `tied`/`total`: the
    path from the piece's root to `expr` keeps ties / is inside a reduction that does."""
    tied_names, total_names, every_names = found
    if isinstance(expr, ast.Name):
        every_names.add(expr.id)
        if tied:
            tied_names.add(expr.id)
        if total:
            total_names.add(expr.id)
        return
    if isinstance(expr, ast.Call) and expr.func == "len":
        return  # reads a shape, not values
    if isinstance(expr, ast.Index):
        if isinstance(expr.value, ast.Name):
            every_names.add(expr.value.id)
            if tied and own is not None and \
                    tuple(ast.to_source(i) for i in expr.indices) == own:
                tied_names.add(expr.value.id)
        else:
            _classify(expr.value, own, found, False, False)
        for index in expr.indices:  # `mu[z]`: each element depends on z's same element
            _classify(index, own, found, tied and not isinstance(index, ast.Slice), False)
        return
    keeps = isinstance(expr, _TYING_NODES) or (isinstance(expr, ast.Call)
                                               and expr.func in _TYING_CALLS)
    reduces = isinstance(expr, ast.Call) and expr.func in _REDUCTIONS
    for child in ast.children(expr):
        _classify(child, own, found, tied and keeps, (total or reduces) and keeps)
