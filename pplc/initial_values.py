"""Initial values given by the user: `sample(init={"tau": 1.0})`, `pplc sample --init
init.json`.

Values may be partial: the latents given start there in every chain, the others where
Stan's rule puts them (uniform(-2, 2) on the unconstrained space, a new point per chain).
They are checked as data are, before any sampling: each name is one of the model's
latents (did-you-mean otherwise; data, deterministics and summed-out discrete latents
take no initial value), each value has the latent's shape, is finite and inside its
support, and the log density is finite there. A mistake in an init file is located in it
(line and column) when it is JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pplc.frontend.data_json import key_span, value_span
from pplc.errors import Source, did_you_mean, error


class InitValues(dict):
    """name -> value, with the file they were read from (for located diagnostics)."""

    source: Source | None = None


def read_init(path: str | Path) -> InitValues:
    """An init file (.json, .csv or .npz, as data files are) -> InitValues."""
    from pplc.datafiles import read_data

    values, source = read_data(path)
    out = InitValues(values)
    out.source = source
    return out


def latents(conditioned) -> list[str]:
    """The latents that take initial values: the model's own (in its parameterization),
    less summed-out discrete ones and imputed entries of data, which follow from the rest."""
    missing = conditioned.lowered.data.missing
    return [name for name, role in conditioned.roles.items() if role == "latent"
            and name in conditioned.graph and not conditioned.graph[name].marginalized
            and name not in missing]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def check_values(conditioned, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The given values as float arrays of the latents' shapes, or a `PplcError`."""
    source = getattr(values, "source", None)
    names = latents(conditioned)
    roles = conditioned.roles
    out = {}
    for name, value in values.items():
        if name not in names:
            if name in roles and roles[name] == "latent":
                why = "it is a discrete latent summed out of the density, drawn after the fit"
            elif name in roles or name in conditioned.graph:
                why = "only the model's latents take initial values; it is " + (
                    "data" if name in conditioned.lowered.data.names else "computed by the "
                    "model")
            else:
                why = "the model has no latent of that name"
            raise error(f"cannot start '{name}' at a given value: {why}", source,
                        key_span(source, name),
                        hint=did_you_mean(name, names) or "the latents are "
                        + ", ".join(names))
        shape = tuple(conditioned.lowered.shapes[name])
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise error(f"the initial value of '{name}' is not an array of numbers", source,
                        value_span(source, name)) from None
        if array.shape != shape:
            raise error(f"the initial value of '{name}' has shape {_shape_text(array.shape)}, "
                        f"but '{name}' has shape {_shape_text(shape)}", source,
                        key_span(source, name))
        if not np.all(np.isfinite(array)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0]) \
                if array.ndim else ()
            where = "[" + ",".join(map(str, index)) + "]" if index else ""
            raise error(f"the initial value of '{name}{where}' is not a finite number", source,
                        value_span(source, name, index))
        out[name] = array
    return out


def initial_points(conditioned, values: Mapping[str, Any], starts: np.ndarray
                   ) -> np.ndarray:
    """(chains, dim) starting points: `starts` (Stan's rule) with the given latents set."""
    source = getattr(values, "source", None)
    given = check_values(conditioned, values)
    if not given:
        return starts
    lowered = conditioned.lowered
    points = []
    for u in np.asarray(starts):
        current = conditioned.constrain(u)
        params = {name: np.asarray(current[name]) for name in latents(conditioned)}
        params.update(given)
        point = np.asarray(conditioned.unconstrain(params))
        for block in lowered.layout:
            piece = point[block.offset:block.offset + int(np.prod(block.unconstrained_shape,
                                                                  dtype=int))]
            if not np.all(np.isfinite(piece)):
                name = block.name if block.name in given else None
                shown = f" = {float(given[name]):g}" if name and given[name].ndim == 0 else ""
                raise error(f"the initial value '{name}'{shown} is outside its support"
                            if name else "the initial values put a latent outside its "
                            "support", source, value_span(source, name) if name else None,
                            hint=_support_hint(conditioned, name))
        points.append(point)
    points = np.stack(points)
    log_density = np.asarray([float(conditioned.unconstrained_log_density(p))
                              for p in points[:1]])
    if not np.isfinite(log_density).all():
        for piece, term in lowered.terms(points[0], conditioned.data):
            if not np.isfinite(float(term)):
                raise error(f"the log density is {float(term)} at the initial values: this "
                            "statement's term is not finite there", conditioned.graph.source,
                            piece.span, hint="start the latents it reads inside the "
                                             "support it needs")
        raise error("the log density is not finite at the initial values", source)
    return points


def _support_hint(conditioned, name: str | None) -> str | None:
    if name is None:
        return None
    variable = conditioned.unoptimized_graph[name] \
        if name in getattr(conditioned, "unoptimized_graph", {}) else conditioned.graph[name]
    declared = variable.declared_type
    if declared is not None:
        from pplc.frontend import ast
        return f"'{name}' is declared {ast.type_to_source(declared)}"
    dists = [p.distribution for p in variable.pieces if p.distribution is not None]
    if dists:
        from pplc.frontend.ast import to_source
        return f"'{name}' ~ {to_source(dists[0])}: give a value its distribution can take"
    return None
