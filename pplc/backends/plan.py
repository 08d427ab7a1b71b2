"""The lowering decisions as text: `pplc explain` reports how each loop runs, and
`pplc ir --plan` prints the whole plan, both read from the `LoweredModel` that runs (the
layout of the unconstrained vector, each latent's transform, each piece's evaluation
order), so the explanation cannot drift from what is computed.
"""

from __future__ import annotations

import networkx as nx

from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS
from pplc.ir.graph import Kind, Note, Piece, reads_itself

NAME = "lowering"


def loops_text(piece: Piece) -> str:
    return ", ".join(f"{p.index} in range("
                     + (f"{ast.to_source(p.start)}, " if p.start is not None else "")
                     + f"{ast.to_source(p.stop)})" for p in piece.plates)


def evaluation(lowered, name: str, i: int) -> str:
    """How piece i of `name` is evaluated, in words."""
    piece = lowered.graph[name].pieces[i]
    scan = lowered.pieces[(name, i)].scan
    group = lowered.groups.get(name)
    stage = next((s for s in group.stages if (name, i) in s.pieces), None) if group else None
    if stage is not None and stage.joint:
        position = stage.pieces.index((name, i))
        index = piece.plates[stage.plates[position]].index
        lines = [f"{n} (line {lowered.graph[n].pieces[j].span.line})" for n, j in stage.pieces]
        return f"a joint scan over {index}; each step computes " + ", then ".join(lines)
    if scan is not None:
        return scan.describe(piece)
    if not piece.plates:
        return "once"
    return "one vectorized operation"


def loop_notes(lowered) -> list[Note]:
    """One note per statement inside loops: its loops and how they are evaluated."""
    notes = []
    for name in lowered.order:
        variable = lowered.graph[name]
        for i, piece in enumerate(variable.pieces):
            if piece.plates:
                label = "factor" if variable.kind is Kind.FACTOR else name
                notes.append(Note(NAME, piece.span, f"{label}: loop over {loops_text(piece)} "
                                                    f"-> {evaluation(lowered, name, i)}"))
    return notes


def _transform(lowered, name: str) -> str:
    """A latent's constraint: a vector transform's kind, or the bounds it lies within."""
    kind = lowered.kinds.get(name, "interval")
    if kind != "interval":
        return kind
    variable = lowered.graph[name]
    if variable.declared_type is not None:
        return "within " + ast.type_to_source(variable.declared_type) + " and its support"
    support = DISTRIBUTIONS[variable.pieces[0].distribution.func].support
    if support.kind == "interval":
        return f"interval({support.lower}, {support.upper})"
    return {"real": "real (identity)", "positive": "positive (log)",
            "unit": "unit (logit)"}.get(support.kind, support.kind)


def prior_refusal(graph) -> tuple[str, object] | None:
    """Why forward simulation cannot draw this model's prior, and where, or None: a
    `factor` is no distribution, a `~` that reads its own earlier elements has no forward
    order of its pieces here, and neither has a cycle of dependencies. The compiler's
    `prior_predictive` and a built module's `sample_prior` both refuse with this."""
    lead = "forward simulation cannot draw this model's prior: "
    for variable in graph.variables():
        if variable.kind is Kind.FACTOR:
            return (lead + f"the factor on line {variable.span.line} is not a distribution",
                    variable.span)
        if variable.stochastic and any(reads_itself(variable.name, p) for p in variable.pieces):
            return lead + f"'{variable.name}' reads its own earlier elements", variable.span
    if not nx.is_directed_acyclic_graph(graph.dag):
        return lead + "its dependencies have a cycle", None
    return None


def format_plan(lowered) -> str:
    """The plan: the unconstrained layout, then every value and how it is computed."""
    lines = [f"# unconstrained vector: {lowered.dim} values"]
    for block in lowered.layout:
        what = "imputed entries" if block.imputed else _transform(lowered, block.name)
        shape = "x".join(map(str, block.shape)) or "scalar"
        lines.append(f"  [{block.offset}:{block.offset + block.size}]  {block.name}  "
                     f"{shape}  {what}")
    refusal = prior_refusal(lowered.graph)
    lines.append("# prior simulation: " + ("forward, every variable given its parents"
                                           if refusal is None else refusal[0]))
    lines.append("# values and terms, in evaluation order")
    for name in lowered.order:
        variable = lowered.graph[name]
        if variable.kind is Kind.DATA:
            continue
        if variable.marginalized:
            role = (f"summed out: log P({name} = k | the rest) for each of its values k, "
                    "recorded with the draws")
        elif variable.kind is Kind.DETERMINISTIC:
            role = "data only: computed once, before sampling" if name in lowered.data_only \
                else "read by the density" if lowered.needed is None or name in lowered.needed \
                else "recorded with the draws only"
        else:
            role = {Kind.LATENT: "latent", Kind.OBSERVED: "observed",
                    Kind.FACTOR: "a term of the density"}[variable.kind]
        shape = "x".join(map(str, lowered.shapes.get(name, ()))) or "scalar"
        lines.append(f"  {name}  {shape}  {role}")
        for i, piece in enumerate(variable.pieces):
            where = f"line {piece.span.line}"
            loops = f" for {loops_text(piece)}" if piece.plates else ""
            lines.append(f"    {where}{loops}: {evaluation(lowered, name, i)}")
    return "\n".join(lines) + "\n"
