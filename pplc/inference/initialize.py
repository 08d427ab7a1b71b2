"""Stan-like starting points: uniform(-radius, radius) on the unconstrained space, retried.

Why: Stan's default initialization draws each unconstrained coordinate from
uniform(-2, 2), which maps to a broad, finite region of every constrained support, and
redraws while the log density or its gradient is not finite (up to 100 tries). Here all
chains and all tries run in one compiled `vmap` of a `while_loop`, so the common case, a
first try that works, costs one gradient evaluation per chain and no Python loop.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.errors import error
from pplc.inference import programs

Array = jax.Array


def _program(logdensity_fn: Callable, dim: int, max_tries: int, num_chains: int):
    """All chains' retry loops in one program: `run(key, radius, data) -> (x, ok, tries)`.

    The key is split into the chains' keys inside, so no eager split program runs first.
    """

    def one_chain(key, radius, data):
        def cond(carry):
            i, _, ok = carry
            return ~ok & (i < max_tries)

        def body(carry):
            i, _, _ = carry
            x = jax.random.uniform(
                jax.random.fold_in(key, i), (dim,), radius.dtype, minval=-radius, maxval=radius
            )
            lp, grad = jax.value_and_grad(lambda z: logdensity_fn(z, data))(x)
            ok = jnp.isfinite(lp) & jnp.all(jnp.isfinite(grad))
            return i + 1, x, ok

        start = (jnp.int32(0), jnp.zeros(dim, radius.dtype), jnp.array(False))
        tries, x, ok = lax.while_loop(cond, body, start)
        return x, ok, tries

    chains = jax.vmap(one_chain, in_axes=(0, None, None))
    return lambda key, radius, data: chains(jax.random.split(key, num_chains), radius, data)


def initial_positions(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    dim: int,
    num_chains: int,
    rng_key: Array,
    radius: float = 2.0,
    max_tries: int = 100,
) -> np.ndarray:
    """(num_chains, dim) starting points where the log density and its gradient are finite.

    Chain c draws from `jax.random.split(rng_key, num_chains)[c]`. Raises `PplcError` when
    some chain finds no finite point in `max_tries` draws.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> x = initial_positions(lambda x, d: -jnp.sum(x**2), {}, 3, 4, jax.random.key(0))
        >>> x.shape
        (4, 3)
    """
    placed = [a for a in jax.tree.leaves(data)
              if isinstance(a, jax.Array) and not a.is_fully_addressable]
    data = jax.tree.map(lambda a: a if isinstance(a, jax.Array) and not a.is_fully_addressable
                        else jax.device_put(np.asarray(a)), data)
    if placed and not jax.dtypes.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        rng_key = np.asarray(rng_key)   # data split over a run's processes: a host value
    radius_arr = np.asarray(radius, dtype=jnp.result_type(float))
    program, _ = programs.compiled(
        logdensity_fn,
        ("initial-positions", int(dim), int(max_tries), int(num_chains), "run-once"),
        lambda: _program(logdensity_fn, int(dim), int(max_tries), int(num_chains)),
        rng_key,
        radius_arr,
        data,
        compiler_options=programs.RUN_ONCE,   # one call per run: compiled without LLVM's passes
    )
    x, ok, _ = program(rng_key, radius_arr, data)
    ok = np.asarray(ok)
    if not ok.all():
        bad = [int(c) for c in np.flatnonzero(~ok)]
        raise error(
            f"could not find a finite starting point after {max_tries} tries "
            f"(chains {bad}): the log density or its gradient is not finite at every point "
            f"drawn uniformly from (-{radius}, {radius}) on the unconstrained space",
            hint="check the model for impossible constraints or data outside a distribution's "
            "support, or give initial values",
        )
    return np.asarray(x)
