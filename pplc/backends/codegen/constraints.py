"""The generated `_constrain(u, data)`: the flat vector cut into the latents, each mapped
onto its support by pplc's constraint transform, with the log|det J| summed.

Each latent's transform is the plan's (backends/constraints.py decides it once, and pplc's
lowering evaluates the same bound expressions): a vector kind, or an interval whose
bounds are written here as the model's expressions, narrowed by a declared type's.
Deterministics are computed in graph order, as the bounds of later latents may read them.
"""

from __future__ import annotations

from pplc.backends.codegen.expressions import Body
from pplc.backends.codegen.layout import dict_lines, function
from pplc.backends.codegen.module import ModuleWriter
from pplc.runtime.transforms import constrain_function, transform_for
from pplc.frontend import ast
from pplc.ir.graph import Kind, Variable


def write_constrain(writer: ModuleWriter) -> str:
    body = Body()
    latents = writer.latents()
    lines = []
    if latents:
        split = writer.runtime.helper("_split")
        blocks = [writer.names.fresh(f"u_{writer.names(n)}") for n in latents]
        free = ", ".join(_free_shape(writer, n) for n in latents)
        target = f"[{blocks[0]}]" if len(blocks) == 1 else ", ".join(blocks)
        lines += ["shapes = param_shapes(data)", f"{target} = {split}(u, [{free}])"]
        block_of = dict(zip(latents, blocks))
    lines.append("log_jacobian = 0.0")
    recorded = []
    data_only = writer.plan.data_only
    for name in writer.graph.order():
        variable = writer.graph[name]
        if variable.kind is Kind.LATENT:
            lines += [""] + _transform(writer, body, variable, block_of[name])
            recorded.append(name)
        elif variable.kind is Kind.DETERMINISTIC:
            lines += [""] + writer.call_compute(body, variable)
            if name not in data_only:
                recorded.append(name)
    reads = [n for n in body.reads if writer.is_data(n)]
    entries = [f'"{n}": {writer.names(n)}' for n in recorded]
    return function("_constrain(u, data)",
                    "The latents (and deterministics) at a flat unconstrained vector u, "
                    "and the\nlog|det J| of the constraint transforms there.",
                    writer.read_data(body, reads) + lines
                    + dict_lines("values = ", entries) + ["return values, log_jacobian"])


def _free_shape(writer: ModuleWriter, name: str) -> str:
    """The unconstrained shape of a latent: pplc's own function of the constrained one."""
    kind = writer.plan.constraints[name].kind
    shape = f'shapes["{name}"]'
    if kind == "interval":
        return shape
    return f"{_copy(writer, transform_for(kind).unconstrained_shape)}({shape})"



def _copy(writer: ModuleWriter, fn) -> str:
    """pplc's function `fn`, copied into the module by source; its name there."""
    return writer.runtime.require(fn.__module__, fn.__name__)


def _transform(writer: ModuleWriter, body: Body, variable: Variable, block: str) -> list[str]:
    """x = T(u) for one latent, adding log|dT/du| to log_jacobian."""
    py = writer.names(variable.name)
    constraint = writer.plan.constraints[variable.name]
    if constraint.kind != "interval":
        helper = _copy(writer, constrain_function(constraint.kind))
        return [f"# {variable.name}: {constraint.kind}",
                f"{py}, jacobian = {helper}({block})",
                "log_jacobian += jnp.sum(jacobian)"]
    lower = _bound(writer, body, variable, constraint.lower, constraint.type_lower, "maximum")
    upper = _bound(writer, body, variable, constraint.upper, constraint.type_upper, "minimum")
    what = constraint.describe()
    if lower is None and upper is None:
        return [f"# {variable.name}: {what}, no transform", f"{py} = {block}"]
    helper = _copy(writer, constrain_function("interval", lower is not None, upper is not None))
    call = f"{helper}({', '.join([block] + [b for b in (lower, upper) if b is not None])})"
    return [f"# {variable.name}: {what}", f"{py}, jacobian = {call}",
            "log_jacobian += jnp.sum(jacobian)"]


def _bound(writer: ModuleWriter, body: Body, variable: Variable, per_piece, typed,
           pick: str) -> str | None:
    """One side's bound as text: the pieces' expressions (one expression where every
    piece has the same and it reads no loop index, else each piece's values scattered
    into an array, as latent_transforms.py's _bounds evaluates them), narrowed by the type's."""
    bound = None
    if any(e is not None for e in per_piece):
        texts = {ast.to_source(e) for e in per_piece}
        indices = {p.index for piece in variable.pieces for p in piece.plates}
        reads = {n.id for e in per_piece for n in ast.names_in(e)}
        if len(texts) == 1 and not reads & indices:
            bound = writer.writer(body)(per_piece[0])
        else:
            parts = []
            for piece, expr in zip(variable.pieces, per_piece):
                names = [p.index for p in piece.plates]
                w = writer.writer(body, names)
                value = f"({writer.index_tuple(w, piece)}, {w(expr)})"
                loops = writer.loops(w, piece)
                lam = f"lambda {', '.join(names)}: {value}" if names else f"lambda: {value}"
                parts.append(f"{writer.runtime.helper('_over')}({lam}"
                             f"{', ' + loops if loops else ''})")
            bound = f'{writer.runtime.helper("_bound_array")}(shapes["{variable.name}"], ' \
                    f'{", ".join(parts)})'
    if typed is None:
        return bound
    given = writer.writer(body)(typed)
    return given if bound is None else _narrow(bound, given, pick)


def _narrow(bound: str, type_bound: str, pick: str) -> str:
    try:
        numbers = float(bound), float(type_bound)
        return repr((max if pick == "maximum" else min)(numbers))
    except ValueError:
        return f"jnp.{pick}({bound}, {type_bound})"
