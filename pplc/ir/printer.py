"""The IR as text (`pplc ir MODEL.ppl`): one block per node, in topological order.

Pass tests read as before-and-after text of this printer, as stanc3's expect tests do.
"""

from __future__ import annotations

from pplc.frontend.ast import to_source, type_to_source
from pplc.ir.graph import Graph, Kind, Piece, Variable


def format_graph(graph: Graph) -> str:
    lines = [f"# {graph.source.path}: {graph.dag.number_of_nodes()} nodes, "
             f"{graph.dag.number_of_edges()} edges"]
    for variable in graph.variables():
        lines.append(format_variable(graph, variable))
    return "\n".join(lines) + "\n"


def format_variable(graph: Graph, variable: Variable) -> str:
    head = f"{variable.kind.value:<13} {variable.name}"
    if variable.declared_type is not None:
        head += f": {type_to_source(variable.declared_type)}"
    parents = graph.parents(variable.name)
    if parents:
        head += f"    <- {', '.join(parents)}"
    if variable.recursive:
        head += "    (recursive)"
    lines = [head]
    for piece in variable.pieces:
        lines.append("    " + format_piece(variable, piece))
    return "\n".join(lines)


def format_piece(variable: Variable, piece: Piece) -> str:
    target = variable.name if variable.kind is not Kind.FACTOR else "factor"
    if piece.indices is not None:
        target += "[" + ", ".join(to_source(i) for i in piece.indices) + "]"
    if piece.distribution is not None:
        body = f"{target} ~ {to_source(piece.distribution)}"
    elif variable.kind is Kind.FACTOR:
        body = f"factor {to_source(piece.value)}"
    else:
        body = f"{target} = {to_source(piece.value)}"
    for plate in piece.plates:
        bounds = (to_source(plate.stop) if plate.start is None
                  else f"{to_source(plate.start)}, {to_source(plate.stop)}")
        body += f"    for {plate.index} in range({bounds})"
    decorators = "".join(f"@{d} " for d in piece.decorators)
    return f"{decorators}{body}    # line {piece.span.line}"
