"""`pplc build`: a model compiled to a readable, standalone Python module.

The module imports jax and numpy (an `ode` is solved by pplc's own Tsit5, copied in with
the rest), never pplc, and exposes

    log_density(params, data)             log p at constrained values, no Jacobian
    unconstrained_log_density(u, data)    log p at a flat vector, log-Jacobians included
    constrain(u, data)                    the latents and deterministics at u
    sample_prior(key, data)               one forward draw of every random variable
    variable_shapes(data), param_shapes(data), PARAM_SHAPES

with pplc's values to rounding: its log densities, transforms and `integrate` are pplc's
own functions, copied by source (`runtime.py`), and its statements are the IR's pieces
written out as JAX (`module.py`), vectorized over their loops as backends/evaluate.py
does. It is generated from the model as written, after the marginalization pass (which the
density needs) but without the automatic reparameterization, a sampling choice that depends
on the data: its parameters are the model's own, in the layout of
`model.condition(data, disabled_passes=("reparameterize",))`.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from pathlib import Path
from typing import Any, Mapping

from pplc.backends.checks import discrete_latent_diagnostic
from pplc.backends.codegen.constraints import write_constrain
from pplc.backends.codegen.layout import dict_lines
from pplc.backends.codegen.module import ModuleWriter
from pplc.backends.codegen.prior import write_sample_prior
from pplc.backends.codegen.runtime import Runtime
from pplc.backends.plan import plan_without_data, render
from pplc.errors import InternalError, error
from pplc.frontend.library import is_discrete
from pplc.ir.graph import Graph, Kind

__all__ = ["generate_module", "check_module", "DISABLED_PASSES"]

# The passes a generated module leaves out (see the module docstring).
DISABLED_PASSES = ("reparameterize",)

_BASE_IMPORTS = ["import math", "import jax", "import jax.numpy as jnp", "import numpy as np"]


def generate_module(graph: Graph, prior: Graph, *, model_path: str | Path,
                    version: str, lowered=None) -> str:
    """The text of the module for `graph` (after the passes) and `prior` (as written).

    `lowered` is pplc's LoweredModel for the data given to `pplc build`, if any: its
    shapes make PARAM_SHAPES concrete, and stand in where a shape cannot be written in
    terms of the data's sizes."""
    _refuse_unsupported(graph, lowered)
    model_path = Path(model_path)
    concrete = dict(lowered.shapes) if lowered is not None else {}
    plan = lowered.plan if lowered is not None else plan_without_data(graph)
    dtypes = dict(lowered.dtypes) if lowered is not None else {}
    writer = ModuleWriter(graph, prior, model_path.name, plan, concrete, dtypes)
    writer.model_functions()
    variable_shapes, param_shapes = writer.shape_functions()
    log_density = writer.log_density()
    constrain = write_constrain(writer)
    sample_prior = write_sample_prior(writer)
    sections = [
        _header(writer, model_path, version, lowered),
        "\n".join(_imports(writer.runtime)),
        'jax.config.update("jax_enable_x64", True)',
        writer.runtime.source(),
        _plan_section(writer, lowered),
        _section("the model"),
        _data_table(writer),
        _built_for(writer, lowered),
        _externs_table(writer),
        *writer.blocks,
        variable_shapes,
        param_shapes,
        _param_shapes_constant(writer, lowered),
        log_density,
        _FIXED_FUNCTIONS,
        constrain,
        sample_prior,
    ]
    return "\n\n\n".join(s for s in sections if s) + "\n"


def _refuse_unsupported(graph: Graph, lowered) -> None:
    if lowered is None:   # without data, discrete latents cannot be summed out
        for variable in graph.of_kind(Kind.LATENT):
            for piece in variable.pieces:
                if is_discrete(piece.distribution):
                    message, source, span, _ = discrete_latent_diagnostic(graph, variable, piece)
                    raise error(message, source, span,
                                hint="pass --data: the number of its values comes from the data")
    if lowered is not None and lowered.data.missing:
        name = next(iter(lowered.data.missing))
        raise error(f"pplc build cannot compile missing data: '{name}' has missing entries, "
                    "which pplc imputes as latent values", graph.source, graph[name].span,
                    hint="build with data that have no missing entries")
    for names in graph.groups():
        if lowered is None:
            raise error(f"pplc build needs the data to write {' and '.join(map(repr, names))}: "
                        "arrays defined in terms of each other's elements are computed in "
                        "an order found from the subscripts' values", graph.source,
                        graph[names[0]].span, hint="pass --data")


# ---------------------------------------------------------------- module text

_FIXED_FUNCTIONS = '''
def unconstrained_log_density(u, data):
    """log p at a flat unconstrained vector u, with the log|det J| of the constraint
    transforms: the density HMC samples (pplc's ConditionedModel.unconstrained_log_density)."""
    values, log_jacobian = _constrain(u, data)
    return log_density(values, data) + log_jacobian


def constrain(u, data):
    """The latents and deterministics at a flat unconstrained vector u, by name."""
    return _constrain(u, data)[0]
'''.strip("\n")


def _plan_section(writer: ModuleWriter, lowered) -> str:
    """The plan this module runs, as `pplc ir --plan` prints it (backends/plan.py)."""
    # A module reads rows by subscripts (rows.py's mapping is the JAX lowering's only) and
    # solves with a data covariance per call (factors.py: the lowering's only).
    text = render(dataclasses.replace(lowered.plan, rows={}, factors={}), lowered.graph,
                  lowered.shapes, lowered.order) if lowered is not None \
        else render(writer.plan, writer.graph)
    return "\n".join([_section("the lowering plan (pplc ir --plan): what this module runs")]
                     + [f"# {line.removeprefix('# ')}".rstrip() for line in text.splitlines()])


def _section(title: str) -> str:
    return f"# {'-' * 16} {title}"


def _imports(runtime: Runtime) -> list[str]:
    """`from __future__`, then the standard library, then jax and numpy."""
    statements = set(_BASE_IMPORTS) | runtime.imports
    stdlib = sorted((s for s in statements if _module(s) in ("math", "functools", "typing")),
                    key=lambda s: (s.startswith("from "), s))
    third = sorted((s for s in statements if s not in stdlib),
                   key=lambda s: (s.startswith("from "), s))
    return ["from __future__ import annotations", ""] + stdlib + [""] + third


def _module(statement: str) -> str:
    return statement.split()[1].split(".")[0]


def _header(writer: ModuleWriter, model_path: Path, version: str, lowered) -> str:
    graph = writer.graph
    latents = [v.name for v in graph.of_kind(Kind.LATENT)]
    observed = [v.name for v in writer.prior.of_kind(Kind.OBSERVED)]
    summed = [v.name for v in graph.variables() if v.marginalized]
    data = [v.name for v in writer.prior.of_kind(Kind.DATA)]
    dim = f" ({lowered.dim} unconstrained values with the build data)" if lowered else ""
    lines = [
        f"Generated by `pplc build` (pplc {version}) from {model_path}.",
        "Do not edit: change the model and build again.",
        "",
        "A standalone log density in plain JAX: this module imports jax and numpy, not pplc.",
        "",
        "  log_density(params, data)           log p at constrained values of the latents,",
        "                                      without Jacobian terms",
        "  unconstrained_log_density(u, data)  log p at a flat unconstrained vector u, with",
        "                                      the log-Jacobians of the transforms (for HMC)",
        "  constrain(u, data)                  u -> {name: value}, latents and deterministics",
        "  sample_prior(key, data)             one draw of every random variable from the prior",
        "  param_shapes(data)                  {latent: shape}, in the order of u",
        "  PARAM_SHAPES                        " + (
            "param_shapes of the data given to pplc build" if lowered else
            "the same, with sizes as names (built without data)"),
        "",
        "`data` is what you would give pplc's model.condition(data): a dict of numbers, "
        "lists or",
        "arrays. Its int sizes fix shapes and loop ranges, so data must be concrete values; "
        "the",
        "functions are traceable in params, u and key:",
        "    logp = jax.jit(lambda u: unconstrained_log_density(u, data))",
        "",
        f"Latent: {', '.join(latents) or '(none)'}{dim}.",
        f"Observed: {', '.join(observed) or '(none)'}.",
    ]
    if data:
        lines.append(f"Data: {', '.join(data)}.")
    if summed:
        lines += [f"Summed out of the density: {', '.join(summed)} (discrete); constrain() "
                  "gives log P(value | rest)",
                  "per element, with the number of values fixed by the build data."]
    if writer.externs:
        lines += ["", "extern def functions are yours to supply: set EXTERNS[name] to a "
                      "JAX-traceable function",
                  "before calling, e.g. module.EXTERNS[\"f\"] = my_function."]
    lines += ["",
              "The parameters are the model's own: pplc's automatic reparameterization (a",
              "sampling choice) is not applied; u is laid out as pplc lays it out with",
              "disabled_passes=(\"reparameterize\",).",
              "Importing this module turns on JAX's 64-bit mode, as pplc does."]
    return "\n".join(f"# {line}".rstrip() for line in lines)


def _data_table(writer: ModuleWriter) -> str:
    from pplc.frontend.ast import type_to_source
    entries = []
    for variable in writer.prior.variables():
        if variable.kind in (Kind.DATA, Kind.OBSERVED):
            declared = variable.declared_type
            text = "None" if declared is None else f'"{type_to_source(declared)}"'
            entries.append(f'"{variable.name}": {text}')
    return "# Data: name -> declared type (None: not declared). Int sizes fix shapes.\n" + \
        "\n".join(dict_lines("DATA = ", entries))


def _built_for(writer: ModuleWriter, lowered) -> str:
    """BUILT_FOR: the sizes this module holds for only, when something in it could not be
    written in terms of the data's sizes; empty when it takes any sizes."""
    if not writer.fixed_by:
        return "# The module takes data of any sizes.\nBUILT_FOR = {}"
    sizes = {n: int(v) for n, v in lowered.data.sizes.items() if n in writer.sizes}
    reasons = ", ".join(dict.fromkeys(writer.fixed_by))
    entries = [f'"{n}": {v}' for n, v in sizes.items()]
    comment = textwrap.fill(f"The sizes of the data given to pplc build, on which {reasons} "
                            "depend: data of other sizes are refused (build again for them).",
                            width=90, initial_indent="# ", subsequent_indent="# ")
    return comment + "\n" + "\n".join(dict_lines("BUILT_FOR = ", entries))


def _externs_table(writer: ModuleWriter) -> str:
    if not writer.graph.externs:
        return ""
    entries = ", ".join(f'"{name}": None' for name in writer.graph.externs)
    return ("# extern def functions: set each to a JAX-traceable Python function.\n"
            f"EXTERNS = {{{entries}}}")


def _param_shapes_constant(writer: ModuleWriter, lowered) -> str:
    if lowered is not None:
        entries = [f'"{b.name}": {tuple(int(n) for n in b.shape)!r}' for b in lowered.layout]
        return "# param_shapes of the data the module was built with.\n" + \
            "\n".join(dict_lines("PARAM_SHAPES = ", entries))
    symbolic = writer.symbolic_param_shapes
    entries = [f'"{name}": {shape}' for name, shape in symbolic.items()]
    return ("# The latents' shapes with sizes as names (built without data); "
            "param_shapes(data) gives numbers.\n" + "\n".join(dict_lines("PARAM_SHAPES = ",
                                                                          entries)))


# ---------------------------------------------------------------- self-check

def check_module(text: str, data: Mapping[str, Any], conditioned, path: str = "<module>",
                 rtol: float = 1e-8) -> None:
    """Run the generated module on the build data and compare it with the compiler's
    model at one point: same latent shapes, same unconstrained log density. A difference
    is a bug in pplc (InternalError), caught before the user meets it."""
    import jax
    import numpy as np

    namespace: dict[str, Any] = {"__name__": "pplc_generated_check"}
    exec(compile(text, path, "exec"), namespace)
    layout = {b.name: tuple(b.shape) for b in conditioned.lowered.layout}
    shapes = {k: tuple(v) for k, v in namespace["param_shapes"](data).items()}
    if shapes != layout:
        raise InternalError(f"pplc build: the generated module's latent shapes {shapes} "
                            f"differ from the compiler's {layout}")
    if "EXTERNS" in namespace:
        namespace["EXTERNS"].update(conditioned.lowered.externs)
    u = jax.random.uniform(jax.random.PRNGKey(0), (conditioned.dim,), minval=-2, maxval=2)
    # Compiled, not eager: an eager `ode` or a vmap over a long loop dispatches op by op.
    try:
        theirs = float(jax.jit(conditioned.unconstrained_log_density)(u))
    except Exception:  # noqa: BLE001 - no reference to compare with; pplc reports it itself
        return
    ours = float(jax.jit(lambda u: namespace["unconstrained_log_density"](u, data))(u))
    if not (math.isclose(ours, theirs, rel_tol=rtol, abs_tol=rtol) or
            (np.isnan(ours) and np.isnan(theirs)) or ours == theirs):
        raise InternalError(f"pplc build: the generated module's log density {ours!r} "
                            f"differs from the compiler's {theirs!r} at a test point")
