"""The one table of built-in functions (frontend/library.py `BUILTINS`), checked entry by
entry in every layer that reads it: the checks (arity), the JAX lowering (the function it
resolves to, and that its result's axes follow the declared rule), the built module's text
(the same JAX function) and the one symbolic axis inference (pplc/ir/axes.py), which the
ArviZ dims and a built module's shapes share."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from pplc.backends.codegen import expressions
from pplc.errors import Span
from pplc.frontend import ast as model_ast
from pplc.ir import axes
from pplc.ir.extents import evaluate
from pplc.runtime.functions import FUNCTIONS, HELPERS
from pplc.frontend.library import BUILTINS

SPD = np.array([[2.0, 0.3, 0.1], [0.3, 1.5, 0.2], [0.1, 0.2, 1.0]])
# Arguments each function accepts (in its domain), by the shape rule it declares.
ARGUMENTS = {
    "elementwise": [np.array([0.2, 0.5, 0.7])],
    "reduce": [np.array([[0.2, 0.5, 0.7], [0.1, 0.3, 0.4]])],
    "same": [SPD],
}
SPECIFIC = {
    "pow": [np.array([0.2, 0.5, 0.7]), 2.0],
    "dot": [np.ones(3), np.arange(3.0)], "solve": [SPD, np.ones(3)],
    "zeros": [2, 3], "ones": [4], "concat": [np.ones(2), 3.0], "stack": [np.ones(2), np.zeros(2)],
    "min": [np.array([3.0, 1.0])], "max": [np.array([3.0, 1.0]), 2.0],
    "diag": [np.ones(3)], "det": [SPD], "transpose": [SPD], "cumsum": [np.ones(3)],
}


def _arguments(name):
    return SPECIFIC.get(name) or ARGUMENTS[BUILTINS[name].axes]


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_in_every_layer(name):
    builtin = BUILTINS[name]
    args = _arguments(name)
    low, high = builtin.arity
    assert low <= len(args) and (high is None or len(args) <= high)
    # The JAX lowering: the function the table names, obeying the declared axes.
    fn = FUNCTIONS[name]
    result = jnp.asarray(fn(*[a if isinstance(a, int) else jnp.asarray(a) for a in args]))
    assert np.all(np.isfinite(result))
    if builtin.axes == "elementwise":
        assert result.shape == np.broadcast_shapes(*(np.shape(a) for a in args))
        # Each entry of the result depends on that entry of the argument alone.
        x, rest = args[0], args[1:]
        one_by_one = [fn(jnp.asarray(v), *rest) for v in x]
        np.testing.assert_allclose(result, one_by_one, rtol=1e-12)
    elif builtin.axes == "reduce":
        assert result.shape == ()
    elif builtin.axes == "same":
        assert result.shape == np.shape(args[0])
        # ...but it is not elementwise: an entry depends on the others (or scalars fail).
        try:
            one_by_one = np.reshape([fn(jnp.asarray(v)) for v in np.ravel(args[0])],
                                    np.shape(args[0]))
        except (TypeError, ValueError, np.linalg.LinAlgError):
            one_by_one = None
        assert one_by_one is None or not np.allclose(result, one_by_one)
    # The built module writes the same function, or a helper written by `_builtin`.
    if "." in builtin.jax:
        written = eval(expressions.JAX_FUNCTIONS[name], {"jnp": jnp, "jax": jax})
        assert written is fn
    else:
        assert name in expressions.SHAPE_FUNCTIONS and fn is HELPERS[builtin.jax]
    # The one symbolic axis inference (ArviZ dims and built modules) reads the table, and
    # its rule gives the result's axes: their lengths, and extents that evaluate to them.
    assert (name in axes.ELEMENTWISE) == (builtin.axes == "elementwise")
    assert (name in axes.REDUCTIONS) == (builtin.axes == "reduce")
    assert (name in axes.SAME_AXES) == (builtin.axes == "same")
    found = symbolic_axes(name, args)
    assert [a.length for a in found] == list(result.shape)
    assert [evaluate(a.extent, {}) for a in found] == list(result.shape)


def symbolic_axes(name: str, args) -> list:
    """The axes ir/axes.py infers for `name(args)`, each argument an array of known
    extents (numbers) or an int."""
    span = Span(1, 1, 1, 2)
    local, exprs = {}, []
    for i, arg in enumerate(args):
        if isinstance(arg, int):
            exprs.append(model_ast.Number(arg, span))
            continue
        local[f"a{i}"] = [axes.Axis(model_ast.Number(n, span), None, n) for n in np.shape(arg)]
        exprs.append(model_ast.Name(f"a{i}", span))
    graph = pplc.compile("mu ~ Normal(0, 1)\n").graph
    found = axes.AxisInference(graph).expr(model_ast.Call(name, tuple(exprs), (), span, span),
                                           local)
    assert found is not None, name
    return found


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_checked_for_its_arity(name):
    """The checks accept the table's arity and refuse one argument too many, naming the
    function."""
    low, high = BUILTINS[name].arity
    if high is None:
        return
    args = ", ".join(["x"] * (high + 1))
    with pytest.raises(pplc.PplcError, match=name):
        pplc.compile(f"data x: real[3]\ny = {name}({args})\n")
