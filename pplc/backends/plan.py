"""The lowering plan: every decision the renderings read, made once, as plain data.

`Plan` holds the layout of the unconstrained vector, each latent's constraint
(constraints.py), the evaluation order of each recursive piece and of each group of arrays
computed jointly (recurrence.py), the deterministics of data alone and those the density
reads, the number of values of each discrete latent, and what prior simulation can do.
analysis.py makes it with the data's sizes in hand; the JAX lowering (lower.py) runs it;
a built module (codegen/) writes it out, and `plan_without_data` gives the part a module
built without data can know. `pplc explain` and `pplc ir --plan` print it (below), so the
explanation cannot drift from what is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import networkx as nx

from pplc.backends.constraints import Constraint, constraint_of
from pplc.backends import recurrence
from pplc.backends.recurrence import Group, Scan
from pplc.backends.sharding import Sharding
from pplc.frontend import ast
from pplc.frontend.library import is_discrete
from pplc.ir.graph import Graph, Kind, Note, Piece, Variable, reads_itself

NAME = "lowering"


@dataclass(frozen=True)
class Block:
    """A latent's slice of the unconstrained vector."""

    name: str
    shape: tuple[int, ...]
    offset: int
    imputed: bool = False   # the missing entries of an observed variable, not a latent
    free_shape: tuple[int, ...] | None = None  # unconstrained shape, if not `shape`

    @property
    def unconstrained_shape(self) -> tuple[int, ...]:
        return self.shape if self.free_shape is None else self.free_shape

    @property
    def size(self) -> int:
        return math.prod(self.unconstrained_shape)


@dataclass(frozen=True)
class Plan:
    """The decisions of the lowering (module docstring); empty fields where there is
    nothing to decide (a model built without data has no layout and no scans)."""

    layout: tuple[Block, ...] = ()
    constraints: Mapping[str, Constraint] = field(default_factory=dict)
    scans: Mapping[tuple[str, int], Scan] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)   # member -> its group
    data_only: tuple[str, ...] = ()    # deterministics of data alone: computed once
    needed: frozenset[str] = frozenset()   # what the density reads
    states: Mapping[str, int] = field(default_factory=dict)   # discrete -> its values
    prior_refusal: tuple[str, object] | None = None   # why forward simulation cannot run
    sharding: Sharding | None = None   # data arrays split across devices (sharding.py)
    rows: Mapping = field(default_factory=dict)   # reads along loops, no gather (rows.py)
    factors: Mapping = field(default_factory=dict)   # data-only covariances (factors.py)


def plan_without_data(graph: Graph) -> Plan:
    """What can be decided from the graph alone: constraints, data-only and needed
    deterministics, prior simulation."""
    return Plan(constraints=constraints(graph), scans=scans_from_text(graph),
                data_only=data_only(graph), needed=needed(graph),
                prior_refusal=prior_refusal(graph))


def scans_from_text(graph: Graph) -> dict:
    """The scan of every recursive piece whose order the subscripts alone prove
    (`h[t] = f(h[t - 1])`, `recurrence.scan_from_text`); the others need the data's
    values to be ordered."""
    scans = {}
    for variable in graph.variables():
        for i, piece in enumerate(variable.pieces):
            if reads_itself(variable.name, piece):
                scan = recurrence.scan_from_text(variable.name, piece)
                if scan is not None:
                    scans[(variable.name, i)] = scan
    return scans


def constraints(graph: Graph, imputed=()) -> dict[str, Constraint]:
    """The constraint of every latent, and the interval of each observed variable whose
    missing entries are imputed."""
    out = {v.name: constraint_of(v) for v in graph.of_kind(Kind.LATENT) if not discrete(v)}
    out.update({name: constraint_of(graph[name], interval=True) for name in imputed})
    return out


def discrete(variable: Variable) -> bool:
    """A latent drawn as integers: summed out by the marginalization pass, never a block of
    the unconstrained vector."""
    return any(p.distribution is not None and is_discrete(p.distribution)
               for p in variable.pieces)


def data_only(graph: Graph, missing=()) -> tuple[str, ...]:
    """Deterministics that depend on data alone (Stan's transformed data), in graph order:
    computed once before sampling, not recorded. Recursions and arrays computed jointly
    stay in the density, whose scans compute them."""
    random: dict[str, bool] = {}
    order = graph.order()
    for name in order:
        random[name] = graph[name].kind is Kind.LATENT or name in missing or any(
            random.get(p, False) for p in graph.parents(name))
    members = {n for group in graph.groups() for n in group}
    return tuple(n for n in order if graph[n].kind is Kind.DETERMINISTIC and not random[n]
                 and not graph[n].recursive and n not in members)


def needed(graph: Graph) -> frozenset[str]:
    """The variables the log density reads: ancestors of a `~` or a `factor`."""
    out: set[str] = set()
    for variable in graph.variables():
        if variable.stochastic or variable.kind is Kind.FACTOR:
            out |= nx.ancestors(graph.dag, variable.name)
    return frozenset(out)


def loops_text(piece: Piece) -> str:
    return ", ".join(f"{p.index} in range("
                     + (f"{ast.to_source(p.start)}, " if p.start is not None else "")
                     + f"{ast.to_source(p.stop)})" for p in piece.plates)


def evaluation(plan: Plan, graph: Graph, name: str, i: int) -> str:
    """How piece i of `name` is evaluated, in words."""
    piece = graph[name].pieces[i]
    scan = plan.scans.get((name, i))
    group = plan.groups.get(name)
    stage = next((s for s in group.stages if (name, i) in s.pieces), None) if group else None
    if stage is not None and stage.joint:
        position = stage.pieces.index((name, i))
        index = piece.plates[stage.plates[position]].index
        lines = [f"{n} (line {graph[n].pieces[j].span.line})" for n, j in stage.pieces]
        return f"a joint scan over {index}; each step computes " + ", then ".join(lines)
    if scan is not None:
        return scan.describe(piece)
    if graph[name].kind is Kind.DETERMINISTIC and reads_itself(name, piece):
        return "a scan, in the order the data's sizes give"
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
                how = evaluation(lowered.plan, lowered.graph, name, i)
                notes.append(Note(NAME, piece.span,
                                  f"{label}: loop over {loops_text(piece)} -> {how}"))
    return notes


def sharding_notes(lowered) -> list[Note]:
    """What --shard-data would split (`pplc explain`), at the size it splits along."""
    sharding = lowered.plan.sharding
    if sharding is None or sharding.span is None:
        return []
    return [Note(NAME, sharding.span, "with --shard-data: " + sharding.describe())]


def factor_notes(lowered) -> list[Note]:
    """One note per data-only covariance factorized once (factors.py), at its `~`."""
    graph = lowered.graph
    return [Note(NAME, graph[name].pieces[i].span, f"{name}: {factor.describe()}")
            for (name, i), factor in lowered.plan.factors.items()]


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
    """The plan of a conditioned model (`pplc ir --plan`)."""
    return render(lowered.plan, lowered.graph, lowered.shapes, lowered.order)


def render(plan: Plan, graph: Graph, shapes: Mapping | None = None, order=None) -> str:
    """The plan as text: the unconstrained layout, then every value and how it is
    computed. Without data (`shapes` None), each latent's constraint in place of the
    layout, whose sizes the data give."""
    order = graph.order() if order is None else order
    if shapes is None:
        lines = ["# unconstrained vector: laid out from the data's sizes"]
        lines += [f"  {name}  {c.describe()}" for name, c in plan.constraints.items()]
    else:
        dim = sum(block.size for block in plan.layout)
        lines = [f"# unconstrained vector: {dim} values"]
    for block in plan.layout:
        constraint = plan.constraints[block.name].describe()
        what = f"imputed entries, {constraint}" if block.imputed else constraint
        shape = "x".join(map(str, block.shape)) or "scalar"
        lines.append(f"  [{block.offset}:{block.offset + block.size}]  {block.name}  "
                     f"{shape}  {what}")
    refusal = plan.prior_refusal
    lines.append("# prior simulation: " + ("forward, every variable given its parents"
                                           if refusal is None else refusal[0]))
    if plan.sharding is not None:
        lines.append("# data sharding (--shard-data): " + plan.sharding.describe())
    lines.append("# values and terms, in evaluation order")
    for name in order:
        variable = graph[name]
        if variable.kind is Kind.DATA:
            continue
        if variable.marginalized:
            role = (f"summed out: log P({name} = k | the rest) for each of its values k, "
                    "recorded with the draws")
        elif variable.kind is Kind.LATENT and discrete(variable):
            role = "discrete: summed out once the data give the number of its values"
        elif variable.kind is Kind.DETERMINISTIC:
            role = "data only: computed once, before sampling" if name in plan.data_only \
                else "read by the density" if name in plan.needed \
                else "recorded with the draws only"
        else:
            role = {Kind.LATENT: "latent", Kind.OBSERVED: "observed",
                    Kind.FACTOR: "a term of the density"}[variable.kind]
        shape = "" if shapes is None else \
            "  " + ("x".join(map(str, shapes.get(name, ()))) or "scalar")
        lines.append(f"  {name}{shape}  {role}")
        for i, piece in enumerate(variable.pieces):
            where = f"line {piece.span.line}"
            loops = f" for {loops_text(piece)}" if piece.plates else ""
            rows = plan.rows.get((name, i))   # rows.py: the arrays mapped along the loops
            rows = f"; {', '.join(r.text() for r in rows)} read along the loops" if rows else ""
            factor = plan.factors.get((name, i))
            rows += f"; {factor.describe()}" if factor is not None else ""
            lines.append(f"    {where}{loops}: {evaluation(plan, graph, name, i)}{rows}")
    return "\n".join(lines) + "\n"
