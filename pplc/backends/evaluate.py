"""Expressions -> JAX values, and pieces over plates -> vectorized JAX computations.

Lowering is tracing: the log density is a Python function that walks the IR and evaluates
expressions with jax.numpy; `jax.jit` traces it once into one XLA program. A piece inside
loops is evaluated for one index tuple and vectorized over its plates with nested
`jax.vmap`, so the traced program's size does not depend on the data's size, and
indexing through integer data (`alpha[g[n]]`) becomes a single gather.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from pplc.errors import PplcError, Source, error
from pplc.frontend import ast
from pplc.frontend.check import CONSTANTS
from pplc.frontend.library import DISTRIBUTIONS, named_arguments
from pplc.runtime import special
from pplc.runtime.reciprocal_sqrt import rsqrt
from pplc.runtime.functions import FUNCTIONS, INTERNAL_FUNCTIONS

Env = Mapping[str, Any]

_BINARY: dict[str, Callable] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": jnp.true_divide,
    "//": jnp.floor_divide, "%": jnp.remainder, "@": jnp.matmul, "**": jnp.power,
}
_COMPARE: dict[str, Callable] = {
    "==": jnp.equal, "!=": jnp.not_equal, "<": jnp.less, "<=": jnp.less_equal,
    ">": jnp.greater, ">=": jnp.greater_equal,
}
# For two numbers known while tracing (sizes): a jnp comparison would be staged into the
# traced program, and its bool() would fail under jit.
_PY_COMPARE: dict[str, Callable] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def is_static(value) -> bool:
    """A value known while tracing (a Python number, or a NumPy array of data)."""
    return isinstance(value, (int, float, bool, np.ndarray, np.number, np.bool_))


class Evaluator:
    """Evaluates expressions in an environment of names -> values.

    `functions` holds the model's `def`s, `externs` the Python callables bound to its
    `extern def`s. Errors that JAX raises while tracing (shapes that do not broadcast,
    too many indices) become diagnostics at the expression's span.
    """

    def __init__(self, source: Source, functions: Mapping[str, ast.FunctionDef],
                 externs: Mapping[str, Callable]):
        self.source = source
        self.functions = functions
        self.externs = externs

    # ---------------------------------------------------------------- expressions
    def __call__(self, expr, env: Env):
        method = getattr(self, "_" + type(expr).__name__)
        return method(expr, env)

    def _Number(self, e: ast.Number, env):
        return e.value

    def _Name(self, e: ast.Name, env):
        if e.id in env:
            return env[e.id]
        return CONSTANTS[e.id]

    def _ListExpr(self, e: ast.ListExpr, env):
        items = [self(i, env) for i in e.items]
        if all(is_static(i) for i in items):
            return np.stack(np.broadcast_arrays(*[np.asarray(i) for i in items]))
        return self._jax(e, lambda: jnp.stack(jnp.broadcast_arrays(*items)))

    def _BinOp(self, e: ast.BinOp, env):
        if e.op == "/" and self._is_sqrt(e.right):   # one division in the gradient, not 3
            left, root = self(e.left, env), self(e.right.args[0], env)
            if not (is_static(left) and is_static(root)):
                right = self._jax(e.right, lambda: rsqrt(root))
                self._check_shapes(e, np.shape(left), np.shape(right))
                if isinstance(e.left, ast.Number) and e.left.value == 1:
                    return right
                return self._jax(e, lambda: left * right)
        left, right = self(e.left, env), self(e.right, env)
        if e.op == "/" and isinstance(left, int) and isinstance(right, int):
            return left / right
        self._check_shapes(e, np.shape(left), np.shape(right))
        return self._jax(e, lambda: _BINARY[e.op](left, right))

    def _is_sqrt(self, e) -> bool:
        """The built-in `sqrt(v)` (not a model's own function of that name)."""
        return (isinstance(e, ast.Call) and e.func == "sqrt" and len(e.args) == 1
                and not e.keywords and e.func not in self.functions
                and e.func not in self.externs)

    def _check_shapes(self, e: ast.BinOp, a: tuple, b: tuple) -> None:
        """NumPy's rules, with an error that names both shapes (stanc3-style)."""
        if e.op == "@":
            if not a or not b:
                raise error(f"'@' needs arrays, not a scalar: shapes {_shape_text(a)} and "
                            f"{_shape_text(b)}", self.source, e.span, hint="use '*' for scalars")
            inner_a, inner_b = a[-1], (b[0] if len(b) == 1 else b[-2])
            if inner_a != inner_b:
                raise error(f"matrix product of shapes {_shape_text(a)} and {_shape_text(b)}: "
                            f"the inner sizes {inner_a} and {inner_b} differ", self.source,
                            e.span)
            return
        try:
            np.broadcast_shapes(a, b)
        except ValueError:
            raise error(f"shapes {_shape_text(a)} and {_shape_text(b)} do not broadcast for "
                        f"'{e.op}'", self.source, e.span,
                        hint="operations broadcast like NumPy: trailing sizes must be equal "
                             "or 1") from None

    def _UnaryOp(self, e: ast.UnaryOp, env):
        value = self(e.operand, env)
        if e.op == "-":
            return -value if isinstance(value, (int, float)) else self._jax(e, lambda: -value)
        if e.op == "+":
            return value
        if isinstance(value, bool):
            return not value
        return self._jax(e, lambda: jnp.logical_not(value))

    def _Compare(self, e: ast.Compare, env):
        left, right = self(e.left, env), self(e.right, env)
        if isinstance(left, (int, float, np.number)) and isinstance(right, (int, float, np.number)):
            return bool(_PY_COMPARE[e.op](left, right))
        return self._jax(e, lambda: _COMPARE[e.op](left, right))

    def _BoolOp(self, e: ast.BoolOp, env):
        left = self(e.left, env)
        if isinstance(left, bool):  # short-circuit on values known while tracing
            if (e.op == "and" and not left) or (e.op == "or" and left):
                return left
            return self(e.right, env)
        right = self(e.right, env)
        fn = jnp.logical_and if e.op == "and" else jnp.logical_or
        return self._jax(e, lambda: fn(left, right))

    def _IfExp(self, e: ast.IfExp, env):
        test = self(e.test, env)
        if isinstance(test, (bool, np.bool_)):
            return self(e.body, env) if test else self(e.orelse, env)
        body, orelse = self(e.body, env), self(e.orelse, env)
        return self._jax(e, lambda: jnp.where(test, body, orelse))

    def _Index(self, e: ast.Index, env):
        value = self(e.value, env)
        index = tuple(self._subscript(i, env) for i in e.indices)
        shape = np.shape(value)
        if len(index) > len(shape):
            raise error(f"too many indices: {len(index)} for a value of shape "
                        f"{_shape_text(shape)}", self.source, e.span)
        for position, (i, size) in enumerate(zip(index, shape)):
            if isinstance(i, (int, np.integer)) and not -size <= i < size:
                raise error(f"index {i} is out of range for axis {position} of size {size}",
                            self.source, e.indices[position].span)
            if not isinstance(i, slice) and jnp.issubdtype(jnp.result_type(i), jnp.floating):
                raise error("an index must be an integer", self.source,
                            e.indices[position].span)
        if is_static(value) and all(isinstance(i, (int, slice, np.integer, np.ndarray))
                                    for i in index):
            return np.asarray(value)[index]
        return self._jax(e, lambda: jnp.asarray(value)[index])

    def _subscript(self, s, env):
        if isinstance(s, ast.Slice):
            bounds = []
            for b in (s.start, s.stop):
                value = None if b is None else self(b, env)
                if value is not None and not isinstance(value, (int, np.integer)):
                    raise error("slice bounds must be integers known when the model is "
                                "compiled (data sizes, numbers)", self.source, b.span)
                bounds.append(None if value is None else int(value))
            return slice(*bounds)
        value = self(s, env)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return int(value)
        return value

    def _Call(self, e: ast.Call, env):
        if e.func in ast.SPECIAL_FORMS:
            fn = self.callable(e.args[0].name)
            # Values known while tracing (numbers, `inf`) stay Python/NumPy values: under jit
            # jnp.asarray would stage them, and integrate must see an infinite limit itself.
            args = [self(a, env) for a in e.args[1:]]
            args = [a if is_static(a) else jnp.asarray(a, jnp.float64) for a in args]
            if e.func == "integrate":
                form = special.integrate
            else:  # the ODE solver's modules only for a model that solves an ODE
                from pplc.runtime.ode import ode as form
            return self._jax(e, lambda: form(fn, *args))
        args = [self(a, env) for a in e.args]
        if e.func in self.functions or e.func in self.externs:
            fn = self.callable(e.func)
            return self._extern(e, fn, args) if e.func in self.externs else fn(*args)
        table = FUNCTIONS if e.func in FUNCTIONS else INTERNAL_FUNCTIONS
        return self._jax(e, lambda: table[e.func](*args))

    def _OverPlates(self, e: ast.OverPlates, env):
        ranges = plate_ranges(e.plates, self, env)
        return over_plates(lambda local: jnp.asarray(self(e.body, local)), e.plates, ranges,
                           env)

    def _LogDensity(self, e: ast.LogDensity, env):
        from pplc.runtime import distributions as dists

        params = call_params(self, e.distribution, env)
        value = self(e.value, env)
        return self._jax(e, lambda: dists.get(e.distribution.func).log_prob(value, **params))

    def callable(self, name: str) -> Callable:
        """A model `def` (evaluated in its own scope) or an extern, as a Python function."""
        if name in self.externs:
            return self.externs[name]
        fn = self.functions[name]

        def call(*args):
            local = dict(zip(fn.params, args))
            for assign in fn.body:
                local[assign.name] = self(assign.value, local)
            result = self(fn.result, local)
            return jnp.asarray(result) if isinstance(result, np.ndarray) else result
        return call

    def _extern(self, e: ast.Call, fn: Callable, args: list):
        """Call a user's Python function: what it raises is said at the call, naming the
        function and the exception's type; JAX's complaint about a function that needs
        concrete numbers ("abstract tracer value") is said in plain words."""
        try:
            return fn(*args)
        except PplcError:
            raise
        except _UNTRACEABLE as exc:
            raise error(f"extern function '{e.func}' cannot be traced by JAX: it needs a "
                        f"concrete number where it is given a traced one "
                        f"({type(exc).__name__})", self.source, e.span,
                        hint="write it with jax.numpy: no float(x), int(x), np.asarray(x) "
                             "or `if x > 0:` on its arguments (jnp.where for a choice)"
                        ) from None
        except Exception as exc:  # noqa: BLE001 - the user's code: any exception
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise error(f"extern function '{e.func}' raised {type(exc).__name__}"
                        + (f": {text}" if text else ""), self.source, e.span,
                        hint="the error is in the Python function bound to it "
                             "(set PPLC_TRACEBACK=1 for its traceback)") from exc

    def _jax(self, e, thunk):
        """Run a JAX operation; a shape or type error becomes a diagnostic at `e`."""
        try:
            return thunk()
        except (TypeError, ValueError, IndexError) as exc:
            raise error(_clean(exc), self.source, e.span) from None


def call_params(evaluate: Evaluator, call: ast.Call, env: Env) -> dict:
    """A distribution call's arguments by parameter name, evaluated.

    A wrapper's `dist` argument (`Truncated(Normal(mu, 1), lower=0)`) becomes the pair
    (inner name, inner parameters), the form the backend's wrappers take.
    """
    info = DISTRIBUTIONS[call.func]
    params = {}
    for name, arg in named_arguments(call).items():
        if info.wrapper and name == "dist":
            params[name] = (arg.func, call_params(evaluate, arg, env))
        else:
            params[name] = evaluate(arg, env)
    return params



# What JAX raises when a function turns a traced value into a Python or NumPy one.
_UNTRACEABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


def _clean(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[0].lower() + text[1:] if text else text


def _shape_text(shape) -> str:
    return str(tuple(int(s) for s in shape))


shape_text = _shape_text


# ---------------------------------------------------------------- plates

def plate_ranges(plates, evaluate: Evaluator, env: Env) -> list[range]:
    """The concrete ranges of a piece's loops; bounds must be known when compiling."""
    ranges = []
    for plate in plates:
        bounds = []
        for bound in (plate.start, plate.stop):
            if bound is None:
                bounds.append(0)
                continue
            try:
                value = evaluate(bound, env)
            except KeyError:  # a latent or deterministic: not known when compiling
                value = None
            if isinstance(value, np.ndarray) and value.ndim == 0 \
                    and np.issubdtype(value.dtype, np.integer):
                value = int(value)
            if not isinstance(value, (int, np.integer)):
                raise error("loop bounds must be integers known when the model is compiled "
                            "(int data or numbers)", evaluate.source, bound.span)
            bounds.append(int(value))
        ranges.append(range(*bounds))
    return ranges


def over_plates(fn: Callable[[Env], Any], plates, ranges: list[range], env: Env):
    """fn evaluated at every index tuple of the plates: outputs get the plates' leading axes.

    Nested `jax.vmap`, outermost plate first, so `fn` sees scalar loop indices.
    """
    if not plates:
        return fn(env)

    def at(index_values):
        local = dict(env)
        for plate, i in zip(plates, index_values):
            local[plate.index] = i
        return fn(local)

    vectorized = at
    for depth in reversed(range(len(plates))):
        vectorized = _vmap_axis(vectorized, depth, len(plates))
    indices = [jnp.arange(r.start, r.stop) for r in ranges]
    return vectorized(indices)


def _vmap_axis(fn, depth, count):
    def wrapped(index_values):
        axes = [None] * count
        axes[depth] = 0
        return jax.vmap(lambda *iv: fn(list(iv)), in_axes=tuple(axes))(*index_values)
    return lambda index_values: wrapped(index_values)
