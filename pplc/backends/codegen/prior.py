"""The generated `sample_prior(key, data)`: forward simulation of the model as written.

As backends/predictive.py's `simulate_prior`: every variable in a topological order of all
dependencies, a `~` variable drawn from its distribution given its parents, from a random
stream of its own (the key folded with its position in that order, then with each
element's index), deterministics computed as they come. So the module draws what pplc's
`prior_predictive` draws for the same keys. It simulates the graph before the passes: a
discrete latent that the density sums out is drawn here. Models pplc cannot simulate
forward (a `factor`, a `~` reading its own earlier elements) get a sample_prior that
raises NotImplementedError with pplc's reason.
"""

from __future__ import annotations

import networkx as nx

from pplc.backends.codegen.expressions import Body
from pplc.backends.codegen.layout import dict_lines, function
from pplc.backends.codegen.module import ModuleWriter
from pplc.backends.plan import prior_refusal
from pplc.frontend.library import DISTRIBUTIONS
from pplc.ir.graph import Kind, Variable


def write_sample_prior(writer: ModuleWriter) -> str:
    doc = ("One draw of every random variable from the prior (latents) and the prior\n"
           "predictive (observed variables), with the deterministics: forward "
           "simulation,\nas pplc's ConditionedModel.prior_predictive. Observed values "
           "in `data` are not used.")
    refusal = prior_refusal(writer.prior)
    if refusal is not None:
        return function("sample_prior(key, data)", doc,
                        [f"raise NotImplementedError({refusal[0]!r})"])
    body = Body()
    lines = ["shapes = variable_shapes(data)"]
    recorded = []
    order = list(nx.topological_sort(writer.prior.dag))
    for j, name in enumerate(order):
        variable = writer.prior[name]
        if variable.stochastic:
            lines += [""] + _draw(writer, body, variable, j)
            recorded.append(name)
        elif variable.kind is Kind.DETERMINISTIC:
            lines += [""] + writer.call_compute(body, variable)
            recorded.append(name)
    drawn = {n for n in recorded if writer.prior[n].stochastic}
    reads = [n for n in body.reads if writer.is_data(n) and n not in drawn]
    entries = [f'"{n}": {writer.names(n)}' for n in recorded]
    return function("sample_prior(key, data)", doc,
                    writer.read_data(body, reads) + lines + dict_lines("return ", entries))

def _draw(writer: ModuleWriter, body: Body, variable: Variable, stream: int) -> list[str]:
    """A random variable drawn from its distribution given its parents (predictive.py's
    simulate_prior: one random stream per variable, folded with each element's index)."""
    py = writer.names(variable.name)
    key = writer.names.fresh(f"key_{py}")
    shape = f'shapes["{variable.name}"]'
    lines = [writer.comment(variable, p) for p in variable.pieces]
    lines.append(f"{key} = jax.random.fold_in(key, {stream})    # its own random stream")
    discrete = variable.kind is Kind.LATENT and any(
        DISTRIBUTIONS[p.distribution.func].discrete for p in variable.pieces)
    for piece in variable.pieces:
        indices = [p.index for p in piece.plates]
        w = writer.writer(body, indices)
        name, args = writer.dists.sample(piece.distribution)
        args = [w.arg(a) for a in args]
        if piece.indices is None and not piece.plates:
            draw = f"{name}({', '.join([key, shape] + args)})"
            whole = writer.runtime.helper("_draw_whole")
            cast = ".astype(int)" if discrete else ""
            lines.append(f"{py} = {whole}({draw}, {shape}){cast}")
            continue
        fold, fill = writer.runtime.helper("_fold"), writer.runtime.helper("_fill")
        index = writer.index_tuple(w, piece) if piece.indices is not None else "()"
        depth = len(piece.indices or ())
        element = f"{shape}[{depth}:]" if depth else shape
        draw = f"{name}({', '.join([f'{fold}({key}, index)', element] + args)})"
        fn = writer.names.fresh(f"draw_{py}")
        lines += [f"def {fn}({', '.join(indices)}):",
                  f"    index = {index}",
                  f"    return index, {draw}"]
        if piece is variable.pieces[0]:
            dtype = ", int" if discrete else ""
            lines.append(f"{py} = jnp.zeros({shape}{dtype})")
        lines.append(f"{py} = {fill}({py}, {fn}, {writer.loops(w, piece)})")
    return lines
