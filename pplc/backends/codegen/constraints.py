"""The generated `_constrain(u, data)`: the flat vector cut into the latents, each mapped
onto its support by pplc's constraint transform, with the log|det J| summed.

The transform of a latent is decided as backends/analysis.py and lower.py decide it: a
vector kind (simplex, ordered, positive_ordered, corr_cholesky, cov) from its declared
type or its distribution's support; otherwise an interval between the support's bounds
(0 for a positive one; Uniform's low and high; Truncated's bounds), narrowed by a declared
type's (`real(lower=0.5)`, `positive[K]`). Deterministics are computed in graph order, as
the bounds of later latents may read them.
"""

from __future__ import annotations

from pplc.backends.codegen.module import Body, ModuleWriter, dict_lines, function
from pplc.backends.transforms import VECTOR_KINDS, constrain_function, transform_for
from pplc.errors import error
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, KIND_BOUNDS, named_arguments
from pplc.ir.graph import Graph, Kind, Variable

# Where each support puts an elementwise latent: (lower, upper), None for unbounded
# (backends/lower.py's _SUPPORT_BOUNDS and _TYPE_BOUNDS).
_KIND_BOUNDS = {"real": (None, None), "positive": ("0.0", None), "unit": ("0.0", "1.0")}


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
    data_only = _data_only(writer.graph)
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
    kind = constraint_kind(writer.graph[name])
    shape = f'shapes["{name}"]'
    if kind == "interval":
        return shape
    return f"{_copy(writer, transform_for(kind).unconstrained_shape)}({shape})"


def _copy(writer: ModuleWriter, fn) -> str:
    """pplc's function `fn`, copied into the module by source; its name there."""
    return writer.runtime.require(fn.__module__, fn.__name__)

def constraint_kind(variable: Variable) -> str:
    """The constraint kind of a latent, as backends/analysis.py decides it."""
    declared = variable.declared_type
    support = DISTRIBUTIONS[variable.pieces[0].distribution.func].support
    if declared is not None and declared.base in VECTOR_KINDS:
        return declared.base
    return support.kind if support.kind in VECTOR_KINDS else "interval"

def _transform(writer: ModuleWriter, body: Body, variable: Variable, block: str) -> list[str]:
    """x = T(u) for one latent, adding log|dT/du| to log_jacobian."""
    py = writer.names(variable.name)
    kind = constraint_kind(variable)
    if kind != "interval":
        helper = _copy(writer, constrain_function(kind))
        return [f"# {variable.name}: {kind}",
                f"{py}, jacobian = {helper}({block})",
                "log_jacobian += jnp.sum(jacobian)"]
    lower, upper, what = _bounds(writer, body, variable)
    if lower is None and upper is None:
        return [f"# {variable.name}: real, no transform", f"{py} = {block}"]
    helper = _copy(writer, constrain_function("interval", lower is not None, upper is not None))
    call = f"{helper}({', '.join([block] + [b for b in (lower, upper) if b is not None])})"
    return [f"# {variable.name}: {what}", f"{py}, jacobian = {call}",
            "log_jacobian += jnp.sum(jacobian)"]

def _bounds(writer: ModuleWriter, body: Body, variable: Variable):
    """(lower, upper, description) of an elementwise latent's support, as text:
    the distribution's support, narrowed by a declared type (lower.py's _bounds)."""
    pieces = variable.pieces
    support = DISTRIBUTIONS[pieces[0].distribution.func].support
    w = writer.writer(body)
    if support.kind in _KIND_BOUNDS:
        lower, upper = _KIND_BOUNDS[support.kind]
        what = f"{support.kind}, the support of {pieces[0].distribution.func}"
    elif support.kind == "interval":
        lower, upper = _interval_bounds(writer, body, variable)
        what = f"the support of {ast.to_source(pieces[0].distribution)}"
    else:
        raise error(f"pplc build cannot constrain '{variable.name}' "
                    f"({support.kind} support)", writer.source, variable.span)
    declared = variable.declared_type
    if declared is not None:
        type_lower, type_upper = _KIND_BOUNDS.get(declared.base, (None, None))
        for bound in declared.bounds:
            text = None if _is_inf(bound.value) else w(bound.value)
            if bound.name == "lower":
                type_lower = text
            else:
                type_upper = text
        lower = _narrow(lower, type_lower, "maximum")
        upper = _narrow(upper, type_upper, "minimum")
        what += f", within its type {ast.type_to_source(declared)}"
    return lower, upper, what

def _interval_bounds(writer: ModuleWriter, body: Body, variable: Variable):
    """The bounds of an interval support (Uniform's low and high) over the pieces: one
    expression where every piece has the same one and it reads no loop index, else
    each piece's values scattered into an array (lower.py's _piece_bounds)."""
    per_piece = [_support_bounds(piece.distribution) for piece in variable.pieces]
    out = []
    for side in (0, 1):
        exprs = [bounds[side] for bounds in per_piece]
        if all(e is None or _is_inf(e) for e in exprs):
            out.append(None)
            continue
        texts = {ast.to_source(e) for e in exprs}
        indices = {p.index for piece in variable.pieces for p in piece.plates}
        reads = {n.id for e in exprs for n in ast.names_in(e)}
        if len(texts) == 1 and not reads & indices:
            out.append(writer.writer(body)(exprs[0]))
            continue
        parts = []
        for piece, expr in zip(variable.pieces, exprs):
            names = [p.index for p in piece.plates]
            w = writer.writer(body, names)
            value = f"({writer.index_tuple(w, piece)}, {w(expr)})"
            loops = writer.loops(w, piece)
            lam = f"lambda {', '.join(names)}: {value}" if names else f"lambda: {value}"
            parts.append(f"{writer.runtime.helper('_over')}({lam}"
                         f"{', ' + loops if loops else ''})")
        bound = writer.runtime.helper("_bound_array")
        out.append(f'{bound}(shapes["{variable.name}"], {", ".join(parts)})')
    return out[0], out[1]

def _data_only(graph: Graph) -> set[str]:
    """Deterministics of data alone (pplc's transformed data): computed, not recorded."""
    random: dict[str, bool] = {}
    for name in graph.order():
        variable = graph[name]
        random[name] = variable.kind is Kind.LATENT or any(
            random.get(p, False) for p in graph.parents(name))
    return {n for n, r in random.items() if not r and graph[n].kind is
            Kind.DETERMINISTIC and not graph[n].recursive}


def _support_bounds(call: ast.Call) -> tuple:
    """(lower, upper) expressions of an interval support (None: unbounded), as
    distributions.support_bounds evaluates them; Truncated's are its bounds, where given
    narrowing its inner distribution's (`max(lower, 0.0)` for a positive one)."""
    info = DISTRIBUTIONS[call.func]
    args = named_arguments(call)
    if info.wrapper:
        inner = _support_bounds(args["dist"])
        out = []
        for given, own, pick in zip((args.get("lower"), args.get("upper")), inner,
                                    ("max", "min")):
            if given is None or own is None:
                out.append(own if given is None else given)
            else:
                out.append(ast.Call(pick, (given, own), (), call.span, call.span))
        return tuple(out)
    kind_bounds = KIND_BOUNDS.get(info.support.kind, (None, None))
    out = []
    for bound, implicit in zip((info.support.lower, info.support.upper), kind_bounds):
        if isinstance(bound, str):
            out.append(args.get(bound))
        elif bound is not None or implicit is not None:
            out.append(ast.Number(float(bound if bound is not None else implicit), call.span))
        else:
            out.append(None)
    return tuple(out)


def _is_inf(expr) -> bool:
    return isinstance(expr, ast.Name) and expr.id == "inf" or \
        isinstance(expr, ast.Number) and expr.value == float("inf")


def _narrow(bound: str | None, type_bound: str | None, pick: str) -> str | None:
    if type_bound is None:
        return bound
    if bound is None:
        return type_bound
    try:
        numbers = float(bound), float(type_bound)
        return repr((max if pick == "maximum" else min)(numbers))
    except ValueError:
        return f"jnp.{pick}({bound}, {type_bound})"
