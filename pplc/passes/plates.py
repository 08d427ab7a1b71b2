"""Plates: how each loop of the (final) graph is lowered, for `pplc explain`.

The graph needs no rewrite for this: the IR already holds one node per variable with its
loops as plates, and the JAX backend evaluates a piece at one index tuple and vectorizes
it over its plates with nested `vmap`, so each loop becomes one vectorized operation
(gathers for `alpha[g[n]]`, shifted reads for `x[t - 1]`) whatever the data size. A
deterministic that reads its own earlier elements (`h[t] = f(h[t - 1])`) is the exception:
it is computed by a `lax.scan` over its outer loop. This pass records which is which.
"""

from __future__ import annotations

from pplc.frontend import ast
from pplc.ir.graph import Graph, Kind, Note

NAME = "plates"


def plates(graph: Graph) -> Graph:
    notes = []
    for variable in graph.variables():
        for piece in variable.pieces:
            if not piece.plates:
                continue
            loops = ", ".join(f"{p.index} in range("
                              + (f"{ast.to_source(p.start)}, " if p.start is not None else "")
                              + f"{ast.to_source(p.stop)})" for p in piece.plates)
            reads_itself = piece.value is not None and variable.name in {
                n.id for n in ast.names_in(piece.value)}
            label = "factor" if variable.kind is Kind.FACTOR else variable.name
            if variable.kind is Kind.DETERMINISTIC and reads_itself:
                how = (f"a recurrence: a scan over {piece.plates[0].index}"
                       + (", the inner loops vectorized" if len(piece.plates) > 1 else ""))
            else:
                how = "one vectorized operation"
            notes.append(Note(NAME, piece.span, f"{label}: loop over {loops} -> {how}"))
    return graph.with_notes(*notes) if notes else graph
