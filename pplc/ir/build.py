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
from pplc.frontend.library import DISTRIBUTIONS, bind_arguments
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
