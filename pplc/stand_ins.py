"""Stand-in values for observations that are to be predicted, not given.

To predict `y` at new inputs from a fit, pplc lowers the model with `y` observed, so that
its predictive draws come from `y`'s own statements given the fitted parameters. Lowering
an observed variable needs values for it: these stand-ins. They are never read (a model
where another variable reads `y`, or `y` its own earlier elements, is refused before), and
the likelihood terms at them are never reported; they only have to pass the checks that
observed data pass, so each lies inside its distribution's support.

The shape is the declaration's (`data y: real[N]` at the new `N`). The value is a point of
the support's kind (0 for reals and counts, 1 for positive values, 1/2 in the unit
interval, 1/K simplex entries, identity Cholesky factors); where the support's bounds are
the distribution's parameters (Uniform, Truncated), `y`'s value at the origin of the
unconstrained space of the model in which the left-out `y` is a latent (inside the
support by construction, bounds that depend on data included), when that model exists.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from pplc.backends.data import declared_sizes
from pplc.backends.evaluate import Evaluator
from pplc.frontend.library import DISTRIBUTIONS
from pplc.ir.graph import Graph, Variable

# A point inside each support kind (for scalar kinds, every element of the array).
_POINTS = {"real": 0.0, "positive": 1.0, "unit": 0.5, "nonnegative_int": 0.0,
           "boolean": 0.0, "int_interval": 0.0}


def declared_shape(variable: Variable, graph: Graph, env: Mapping[str, Any]) -> tuple[int, ...]:
    """The shape `variable`'s declaration gives at the data's sizes."""
    evaluate = Evaluator(graph.source, graph.functions, {})
    declared = variable.declared_type
    shape = declared_sizes(declared, lambda e: evaluate(e, dict(env)), graph.source)
    if declared.base in ("corr_cholesky", "cov") and len(shape) == 1:
        shape = shape * 2   # corr_cholesky[K] and cov[K] are K x K
    return shape


def support_point(variable: Variable, shape: tuple[int, ...]) -> np.ndarray | None:
    """A value of `shape` inside the support of the variable's distribution, or None where
    the support's bounds are parameters (Uniform's, Truncated's) or its kind has no point
    that passes for every parameter (Multinomial counts must sum to total_count)."""
    info = DISTRIBUTIONS[variable.pieces[0].distribution.func]
    kind = info.support.kind
    if info.wrapper:
        return None
    if kind == "simplex" and shape:
        return np.full(shape, 1.0 / shape[-1])
    if kind == "corr_cholesky" and len(shape) >= 2:
        return np.broadcast_to(np.eye(shape[-1]), shape).copy()
    if kind in _POINTS:
        return np.full(shape, _POINTS[kind])
    return None
