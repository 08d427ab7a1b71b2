"""The log density's data-only work, evaluated once when the data are bound.

Why: the data are arguments of the compiled programs, not constants (new data of the same
shapes reuse them), so XLA cannot fold what depends on the data alone, and a sampler pays
for it at every gradient: in the supernova model, (1 + x)^3 on the [32 nodes, 580
supernovae] grid of `integrate`, x made of the redshifts z (benchmarks/profile_notes.md).
PyTensor folds it as a constant.

How: at the JAX level, not in the lowering plan, so that it reaches inside `integrate`,
`ode`, user functions and the derivative rules alike. `split` traces the density's
value-and-gradient with respect to the parameters (`jax.make_jaxpr`, nested `jit`s
inlined), marks every operation none of whose inputs depends on the parameters, and keeps
the results worth keeping (`_pays`). `bind(data)` computes those once (one compiled
program); `HoistedDensity(u, (data, hoisted))` evaluates the rest, reading them. It is a
`custom_jvp` whose tangent is <gradient, du>: derivatives of any order in u are those of
the rest's own operations, and the hoisted values are constants to them, as they must be
(they depend on no parameter). A tangent in the data is refused, never silently zero.

Which results pay (`_pays`): only those of operations that cost work (transcendentals,
powers, divisions, products, reductions, loops, factorizations: `COSTLY`), never a
broadcast or a cheap elementwise op that XLA fuses for free and that, hoisted, would become
an array read from memory; and only if the result holds at most `GROWTH` times the elements
of the largest data array it reads and at most `CAP` elements, so the memory held stays
proportional to the data (a data-only N x N matrix for N rows is recomputed, not kept), and
only if the work hoisted is at least `MIN_WORK` elements in all (on a few values the saving
is nil and the compiled program would change for nothing). Values of the constants alone
(no data read) are left to XLA, which folds them.

The callers choose where this applies: never where the data are split or streamed
(conditioned.py), since the hoisted values are of the whole data.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.extend.core import ClosedJaxpr, DropVar, Literal

GROWTH = 64          # a hoisted value: at most 64x the elements of the data array it reads
CAP = 1 << 20        # and at most 2^20 elements (8 MiB of float64)
MIN_WORK = 2048      # elements of hoisted work below which nothing is hoisted

COSTLY = frozenset({
    "exp", "exp2", "log", "log1p", "expm1", "pow", "integer_pow", "sqrt", "rsqrt", "cbrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "logistic", "erf", "erfc", "erf_inv", "lgamma", "digamma", "igamma",
    "igammac", "igamma_grad_a", "polygamma", "zeta", "bessel_i0e", "bessel_i1e",
    "regularized_incomplete_beta", "random_gamma_grad", "div", "rem", "dot_general",
    "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
    "argmax", "argmin", "cumsum", "cumprod", "cumlogsumexp", "cummax", "cummin", "sort",
    "cholesky", "triangular_solve", "lu", "qr", "eigh", "svd", "custom_linear_solve",
    "while", "scan", "cond", "custom_jvp_call", "custom_vjp_call", "conv_general_dilated",
    "fft"})
_INLINED = ("jit", "pjit")


@dataclass(frozen=True)
class _Const:
    value: Any


@dataclass(frozen=True)
class _Step:
    """One operation of the flattened program: inputs and outputs are slots (or consts)."""

    primitive: Any
    params: dict
    ctx: Any
    inputs: tuple
    outputs: tuple[int, ...]
    effects: bool

    @property
    def name(self) -> str:
        return self.primitive.name


class _Flat:
    """A closed jaxpr as one list of steps over numbered slots, nested `jit`s inlined
    (their parameters' data-only work is then visible at the top)."""

    def __init__(self, closed: ClosedJaxpr):
        self.steps: list[_Step] = []
        self.avals: list[Any] = []
        self.inputs = [self._slot(v.aval) for v in closed.jaxpr.invars]
        self.outputs = self._walk(closed.jaxpr, closed.consts, self.inputs)

    def _slot(self, aval) -> int:
        self.avals.append(aval)
        return len(self.avals) - 1

    def _walk(self, jaxpr, consts, in_slots) -> list:
        env: dict = dict(zip(jaxpr.invars, in_slots))
        env.update((v, _Const(c)) for v, c in zip(jaxpr.constvars, consts))

        def read(v):
            return _Const(v.val) if isinstance(v, Literal) else env[v]

        for eqn in jaxpr.eqns:
            inner = eqn.params.get("jaxpr")
            if eqn.primitive.name in _INLINED and isinstance(inner, ClosedJaxpr) \
                    and not eqn.effects:
                outs = self._walk(inner.jaxpr, inner.consts, [read(v) for v in eqn.invars])
            else:
                outs = [self._slot(v.aval) for v in eqn.outvars]
                self.steps.append(_Step(eqn.primitive,
                                        eqn.primitive.get_bind_params(eqn.params), eqn.ctx,
                                        tuple(read(v) for v in eqn.invars), tuple(outs),
                                        bool(eqn.effects)))
            env.update((v, s) for v, s in zip(eqn.outvars, outs) if not isinstance(v, DropVar))
        return [read(v) for v in jaxpr.outvars]

    def run(self, indices, env: dict) -> None:
        """Evaluate the steps `indices` in order, reading and writing `env` (slot -> value)."""
        for i in indices:
            step = self.steps[i]
            args = [x.value if isinstance(x, _Const) else env[x] for x in step.inputs]
            with step.ctx.manager:
                out = step.primitive.bind(*args, **step.params)
            env.update(zip(step.outputs, out if step.primitive.multiple_results else [out]))


def _size(aval) -> int:
    return math.prod(getattr(aval, "shape", ()))


def _numeric(aval) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and (jnp.issubdtype(dtype, jnp.number)
                                  or jnp.issubdtype(dtype, jnp.bool_))


@dataclass(frozen=True)
class Hoisted:
    """What `split` keeps: for the explanation and the tests."""

    primitive: str
    shape: tuple[int, ...]


class Hoisting:
    """A density's split (module docstring): `bind(data)` -> the bundle that
    `density(u, bundle)` reads. Made once per compiled-program key (shapes), shared by
    every model conditioned on data of those shapes; each binds its own data."""

    def __init__(self, flat: _Flat, data_tree, prepare: list[int], rest: list[int],
                 hoisted: list[int], inner: Callable):
        self._flat, self._data_tree = flat, data_tree
        self._prepare, self._rest, self._slots = prepare, rest, hoisted
        self.hoisted = tuple(Hoisted(next(s.name for s in flat.steps if h in s.outputs),
                                     tuple(flat.avals[h].shape)) for h in hoisted)
        self._bind = jax.jit(self._compute)
        self.density = HoistedDensity(self, inner)

    def _compute(self, data):
        leaves = jax.tree.leaves(data)
        env = dict(zip(self._flat.inputs[1:], leaves))
        self._flat.run(self._prepare, env)
        return tuple(env[h] for h in self._slots)

    def bind(self, data) -> tuple:
        """(data, the hoisted values computed from them): the density's data argument."""
        return data, self._bind(data)

    def value_and_grad(self, u, bundle):
        data, hoisted = bundle
        leaves, tree = jax.tree.flatten(data)
        if tree != self._data_tree:
            raise ValueError("data of another structure than the density was split for")
        env = {self._flat.inputs[0]: u, **dict(zip(self._flat.inputs[1:], leaves)),
               **dict(zip(self._slots, hoisted))}
        self._flat.run(self._rest, env)
        value, grad = (x.value if isinstance(x, _Const) else env[x] for x in self._flat.outputs)
        return value, grad

    def key(self) -> str:
        """Names the split: which values are hoisted, and where."""
        return repr((self._slots, self.hoisted))


class HoistedDensity:
    """`(u, (data, hoisted)) -> log density`, the rest of a `Hoisting`'s split. It keys the
    compiled programs (programs.py), so its disk key (when the density it splits has one)
    names that density's content and the split."""

    def __init__(self, hoisting: Hoisting, inner: Callable):
        self._hoisting = hoisting
        fn = jax.custom_jvp(lambda u, bundle: hoisting.value_and_grad(u, bundle)[0])
        fn.defjvp(self._jvp, symbolic_zeros=True)
        self._fn = fn
        inner_key = getattr(inner, "content_key", None)
        if inner_key is not None:
            self.content_key = lambda: hashlib.sha256(
                f"hoisted {inner_key()} {hoisting.key()}".encode()).hexdigest()

    def __call__(self, u, bundle):
        return self._fn(u, bundle)

    def _jvp(self, primals, tangents):
        u, bundle = primals
        du, d_bundle = tangents
        if any(not isinstance(t, SymbolicZero) for t in jax.tree.leaves(
                d_bundle, is_leaf=lambda t: isinstance(t, SymbolicZero))):
            raise TypeError("the hoisted log density is differentiable in u only: "
                            "differentiate the plain density in the data")
        value, grad = self._hoisting.value_and_grad(u, bundle)
        if isinstance(du, SymbolicZero):
            return value, jnp.zeros_like(value)
        return value, jnp.vdot(grad, du).astype(value.dtype)


def may_pay(data) -> bool:
    """Whether the data are large enough for `split` to find work that pays (`MIN_WORK`
    within `GROWTH`), known without tracing: a trace costs ~0.1 CPU-s at startup."""
    return max((math.prod(np.shape(x)) for x in jax.tree.leaves(data)), default=0) \
        * GROWTH >= MIN_WORK


def split(log_density: Callable, dim: int, data) -> Hoisting | None:
    """The split of `log_density(u, data)` at these shapes (module docstring), or None when
    nothing worth hoisting depends on the data alone."""
    avals = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype),
                         data)
    closed = jax.make_jaxpr(jax.value_and_grad(log_density))(
        jax.ShapeDtypeStruct((dim,), jnp.float64), avals)
    flat = _Flat(closed)
    chosen = _pays(flat)
    if not chosen:
        return None
    rest, read = _rest(flat, chosen)
    if not read:
        return None
    prepare = _needed(flat, read)
    return Hoisting(flat, jax.tree.structure(data), prepare, rest, sorted(read), log_density)


def _pays(flat: _Flat) -> set[int]:
    """Indices of the data-only steps whose results are worth hoisting (module docstring)."""
    u_slot, data_slots = flat.inputs[0], flat.inputs[1:]
    varies = {u_slot}                  # slots that depend on the parameters
    reach = {s: _size(flat.avals[s]) for s in data_slots}   # largest data array read
    chosen, work = set(), 0
    for i, step in enumerate(flat.steps):
        slots = [x for x in step.inputs if not isinstance(x, _Const)]
        if step.effects or "callback" in step.name or any(s in varies for s in slots):
            varies.update(step.outputs)
            continue
        largest = max((reach.get(s, 0) for s in slots), default=0)
        reach.update((s, largest) for s in step.outputs)
        if largest and _costly(step) and all(
                _numeric(flat.avals[s]) and _size(flat.avals[s]) <= min(GROWTH * largest, CAP)
                for s in step.outputs):
            chosen.add(i)
            work += max([_size(flat.avals[s]) for s in (*slots, *step.outputs)])
    return chosen if work >= MIN_WORK else set()


def _costly(step: _Step) -> bool:
    """Whether the step costs work worth saving: a division by a constant is a product."""
    if step.name == "div":
        return not isinstance(step.inputs[1], _Const)
    return step.name in COSTLY


def _rest(flat: _Flat, chosen: set[int]) -> tuple[list[int], set[int]]:
    """The steps the density still runs (the chosen ones' results become inputs), and the
    chosen results it reads."""
    live = {x for x in flat.outputs if not isinstance(x, _Const)}
    rest, read = [], set()
    for i in reversed(range(len(flat.steps))):
        step = flat.steps[i]
        wanted = [s for s in step.outputs if s in live]
        if not wanted:
            continue
        if i in chosen:
            read.update(wanted)
            continue
        rest.append(i)
        live.update(x for x in step.inputs if not isinstance(x, _Const))
    return rest[::-1], read


def _needed(flat: _Flat, slots: set[int]) -> list[int]:
    """The steps that compute `slots` (all data-only)."""
    live, out = set(slots), []
    for i in reversed(range(len(flat.steps))):
        step = flat.steps[i]
        if any(s in live for s in step.outputs):
            out.append(i)
            live.update(x for x in step.inputs if not isinstance(x, _Const))
    return out[::-1]
