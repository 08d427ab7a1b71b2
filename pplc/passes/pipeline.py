"""The pass pipeline: a list of (name, pass) folded over the graph, in a fixed order.

Each pass is a pure function Graph -> Graph that records its decisions as `graph.notes`
(shown by `pplc explain`). Plates need no pass of their own: how each loop is evaluated
is a decision of the lowering (backends/plan.py reports it), and the IR stays one node per
variable whatever the data size.
"""

from __future__ import annotations

from typing import Callable, Iterable

from pplc.errors import did_you_mean, error
from pplc.ir.graph import Graph
from pplc.passes.marginalize import marginalize
from pplc.passes.reparameterize import reparameterize

Pass = Callable[[Graph], Graph]

PASSES: list[tuple[str, Pass]] = [
    # First: it turns discrete latents and the observations they explain into factors, so
    # the later passes see only continuous latents.
    ("marginalize", marginalize),
    # Needs the data (observation counts and scales), so it runs on the conditioned graph.
    ("reparameterize", reparameterize),
]


def check_pass_names(names: Iterable[str]) -> None:
    known = [name for name, _ in PASSES]
    for name in names:
        if name not in known:
            raise error(f"unknown pass '{name}'",
                        hint=did_you_mean(name, known) or "passes: " + ", ".join(known))


def run_passes(graph: Graph, disabled: Iterable[str] = (), until: str | None = None
               ) -> Graph:
    """Fold the enabled passes over the graph; `until` stops after the named pass."""
    disabled = set(disabled)
    check_pass_names(disabled | ({until} if until else set()))
    for name, fn in PASSES:
        if name not in disabled:
            graph = fn(graph)
        if name == until:
            break
    return graph
