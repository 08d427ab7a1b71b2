"""The scans that compute recursively defined arrays, one function per strategy.

Pure JAX with no pplc imports: the JAX lowering (`lower.py`) calls them, and `pplc build`
copies them by source into a module, so both renderings of a plan run the same code.
Which strategy a piece gets is decided once, in `recurrence.py`.
"""

import jax
import jax.numpy as jnp


def scan_loop(values_at, array, steps):
    """The array with, for t in `steps` in order, `array[index] = values` where
    `values_at(array, t) -> (index, values)` may read what earlier steps wrote: a
    `lax.scan` carrying the whole array (any read pattern; O(T^2) memory in the reverse
    pass)."""
    def step(carry, t):
        index, values = values_at(carry, t)
        return carry.at[index].set(jnp.asarray(values, carry.dtype)), None
    array, _ = jax.lax.scan(step, array, jnp.arange(steps.start, steps.stop))
    return array


def lagged_scan(slice_at, array, axis, depth, steps):
    """The array with its slices t in `steps` (along `axis`) computed in order by
    `slice_at(window, t)`, where `window[depth - k]` is slice t - k: a `lax.scan` that
    carries only the last `depth` slices and writes the new ones once at the end (O(T) in
    the reverse pass). Slices before `steps.start` come from `array`."""
    moved = jnp.moveaxis(array, axis, 0)
    first = jnp.clip(jnp.arange(steps.start - depth, steps.start), 0, moved.shape[0] - 1)

    def step(window, t):
        row = jnp.broadcast_to(jnp.asarray(slice_at(window, t), moved.dtype), moved.shape[1:])
        return jnp.concatenate([window[1:], row[None]]), row

    _, rows = jax.lax.scan(step, moved[first], jnp.arange(steps.start, steps.stop))
    return jnp.moveaxis(moved.at[steps.start:steps.stop].set(rows), 0, axis)


def ordered_scan(value_at, array, order):
    """The array with one element per step, at the loop indices of each row of `order`:
    `value_at(array, indices) -> (index, value)`, each reading elements written before."""
    def step(carry, indices):
        index, value = value_at(carry, indices)
        return carry.at[index].set(jnp.asarray(value, carry.dtype)), None
    array, _ = jax.lax.scan(step, array, jnp.asarray(order))
    return array


def joint_scan(pieces, arrays, steps):
    """Several arrays (a tuple) computed together along one loop: for t in `steps` in
    order, each `(k, values_at)` of `pieces` in turn sets `arrays[k][index] = values`,
    `values_at(arrays, t) -> (index, values)` reading the arrays as they stand (ARMA's
    `nu[t]` reads `err[t - 1]`, then `err[t]` reads `nu[t]`). One `lax.scan` carries them
    all."""
    def step(carry, t):
        carry = list(carry)
        for k, values_at in pieces:
            index, values = values_at(tuple(carry), t)
            carry[k] = carry[k].at[index].set(jnp.asarray(values, carry[k].dtype))
        return tuple(carry), None
    out, _ = jax.lax.scan(step, tuple(arrays), jnp.arange(steps.start, steps.stop))
    return out
