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


def lagged_scan(slice_at, array, axis, depth, steps, unroll=1):
    """The array with its slices t in `steps` (along `axis`) computed in order by
    `slice_at(window, t)`, where `window[depth - k]` is slice t - k: a `lax.scan` that
    carries only the last `depth` slices and writes the new ones once at the end (O(T) in
    the reverse pass). Slices before `steps.start` come from `array`. `unroll`: steps per
    iteration of the compiled loop."""
    moved = jnp.moveaxis(array, axis, 0)
    first = jnp.clip(jnp.arange(steps.start - depth, steps.start), 0, moved.shape[0] - 1)

    def step(window, t):
        row = jnp.broadcast_to(jnp.asarray(slice_at(window, t), moved.dtype), moved.shape[1:])
        return jnp.concatenate([window[1:], row[None]]), row

    _, rows = jax.lax.scan(step, moved[first], jnp.arange(steps.start, steps.stop),
                           unroll=unroll)
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


def linear_scan(a, b, first, parallel=False, unroll=1):
    """The rows x[t] = a[t] * x[t - 1] + b[t] for t = 0, 1, ..., with x[-1] = `first` (a
    linear recurrence, elementwise; `a`, `b` have the steps as leading axis). Sequential: a
    `lax.scan` carrying x. Parallel: a prefix scan of the associative composition of the
    maps x -> a x + b, (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2), in O(log T) depth;
    its sums are ordered differently (tested to 1e-10 against the sequential scan)."""
    if parallel:
        dtype = jnp.result_type(a, b, first)
        a, b = a.astype(dtype), b.astype(dtype).at[0].add(a[0] * first)

        def compose(earlier, later):
            return later[0] * earlier[0], later[0] * earlier[1] + later[1]
        return jax.lax.associative_scan(compose, (a, b))[1].astype(first.dtype)

    def step(x, ab):
        x = jnp.asarray(ab[0] * x + ab[1], x.dtype)
        return x, x
    return jax.lax.scan(step, first, (a, b), unroll=unroll)[1]


def semiring_scan(c, d, first, parallel=False, unroll=1):
    """The rows alpha[t, k] = logsumexp_j(alpha[t - 1, j] + c[t, k, j]) + d[t, k] for
    t = 0, 1, ..., with alpha[-1] = `first` (an HMM's forward algorithm). Sequential: a
    `lax.scan` carrying the row. Parallel: each step is the row times the matrix
    M[t][j, k] = c[t, k, j] + d[t, k] in the (logsumexp, +) semiring, and the matrix
    products are associative: a prefix scan of them in O(log T) depth, `first` folded into
    the first matrix."""
    logsumexp = jax.scipy.special.logsumexp
    if parallel:
        m = jnp.swapaxes(c, -1, -2) + d[:, None, :]
        m = m.at[0].set(first[:, None] + m[0])

        def product(earlier, later):
            return logsumexp(earlier[..., :, :, None] + later[..., None, :, :], axis=-2)
        return logsumexp(jax.lax.associative_scan(product, m), axis=-2).astype(first.dtype)

    def step(row, cd):
        row = jnp.asarray(logsumexp(row[None, :] + cd[0], axis=-1) + cd[1], row.dtype)
        return row, row
    return jax.lax.scan(step, first, (c, d), unroll=unroll)[1]


def _rows(part, axes, shape, dtype):
    """A recurrence's part evaluated over its loops (the scanned loop first, the others in
    their loop order) as rows of `shape`: the other loops moved to the array's axis order
    (`axes`), broadcast, in their own dtype (the scan casts each step's result to the
    array's, as the general scan does); zeros for a part that is None (a zero term)."""
    if part is None:
        return jnp.zeros(shape, dtype)
    part = jnp.asarray(part)
    return jnp.broadcast_to(
        jnp.transpose(part, tuple(axes) + tuple(range(len(axes), part.ndim))), shape)


def _exact_in_parallel(array) -> bool:
    """An integer array is truncated at every step (as the general scan does), which no
    reordering keeps: it is computed sequentially whatever the plan asks."""
    return jnp.issubdtype(array.dtype, jnp.inexact)


def linear_recurrence(array, axis, steps, a, b, axes, parallel=False, unroll=1):
    """The array with its slices t in `steps` (along `axis`) set to a[t] * x[t - 1] + b[t]
    (linear_scan; `a`, `b` as `_rows` takes them)."""
    moved = jnp.moveaxis(array, axis, 0)
    shape = (len(steps),) + moved.shape[1:]
    rows = linear_scan(_rows(a, axes, shape, moved.dtype), _rows(b, axes, shape, moved.dtype),
                       moved[max(steps.start - 1, 0)], parallel and _exact_in_parallel(array),
                       unroll)
    return jnp.moveaxis(moved.at[steps.start:steps.stop].set(rows), 0, axis)


def semiring_recurrence(array, steps, c, d, parallel=False, unroll=1):
    """The rows t in `steps` of a matrix set to logsumexp(row t - 1 + c[t, k]) + d[t, k]
    (semiring_scan; `c`, `d` over (steps, k) as `_rows` takes them)."""
    shape = (len(steps),) + array.shape[1:]
    rows = semiring_scan(_rows(c, (0, 1), shape + array.shape[1:], array.dtype),
                         _rows(d, (0, 1), shape, array.dtype), array[max(steps.start - 1, 0)],
                         parallel and _exact_in_parallel(array), unroll)
    return array.at[steps.start:steps.stop].set(rows)
