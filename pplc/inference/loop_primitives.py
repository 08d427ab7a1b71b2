"""Two pieces of the NUTS loop (inference/nuts.py) that XLA:CPU otherwise compiles badly.

* `uniform_from_counter`: the loop's uniforms, hashed from a seed and a counter instead of
  drawn with threefry, which inlines hundreds of HLO ops per call (its docstring: why).
* `set_row`: a row of a checkpoint array written in place, and under vmap a select over the
  rows instead of a scatter, which keeps the loop compiled as one function (pplc/jax_x64.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _mix32(x: Array) -> Array:
    """Wellons' "lowbias32" integer hash: a bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniform_from_counter(seed: Array, counter: Array, dtype) -> Array:
    """A uniform in (0, 1) from a per-transition seed and an integer counter.

    Why not `jax.random`: each threefry call inlines a few hundred HLO ops, and a NUTS
    transition needs one uniform per leaf and two per doubling; with threefry everywhere the
    kernel's XLA compile took 1.4 s for a 3-d Gaussian, most of it random-number code. The
    seed itself comes from threefry once per transition; the counters are distinct for every
    draw within a transition, and the hash of (seed, counter) is a counter-based generator
    in the spirit of Philox/threefry, with 32 bits per draw, ample for accept/reject tests.
    """
    c = counter.astype(jnp.uint32)
    h = _mix32(seed[0] ^ _mix32(c * jnp.uint32(0x9E3779B9) + seed[1]))
    return (h.astype(dtype) + 0.5) * (1.0 / 4294967296.0)


@jax.custom_batching.custom_vmap
def set_row(arr: Array, r: Array, x: Array) -> Array:
    """arr.at[r].set(x): one row written in place (a dynamic-update-slice)."""
    return arr.at[r].set(x)


@set_row.def_vmap
def _set_row_batched(axis_size, in_batched, arr, r, x):
    """Under vmap (chain_method="vectorized") each chain writes its own row, which JAX would
    make a scatter; XLA:CPU never compiles a loop holding a scatter as one function
    (pplc/jax_x64.py), so the batched write is a select over the rows instead."""
    arr_b, r_b, x_b = in_batched
    arr = arr if arr_b else jnp.broadcast_to(arr, (axis_size, *arr.shape))
    r = r if r_b else jnp.broadcast_to(r, (axis_size,))
    x = x if x_b else jnp.broadcast_to(x, (axis_size, *arr.shape[2:]))
    hit = jnp.arange(arr.shape[1])[None, :] == r[:, None]
    hit = hit.reshape(hit.shape + (1,) * (arr.ndim - 2))
    return jnp.where(hit, x[:, None], arr), True
