"""The pass pipeline: a list of (name, pass) folded over the graph, in a fixed order.

Each pass is a pure function Graph -> Graph. The list is empty in the walking skeleton;
plate vectorization, automatic reparameterization and discrete marginalization arrive as
their own files here, each with a comment on why it stands where it does.
"""

from __future__ import annotations

from typing import Callable, Iterable

from pplc.ir.graph import Graph

Pass = Callable[[Graph], Graph]

PASSES: list[tuple[str, Pass]] = []


def run_passes(graph: Graph, disabled: Iterable[str] = ()) -> Graph:
    disabled = set(disabled)
    for name, fn in PASSES:
        if name not in disabled:
            graph = fn(graph)
    return graph
