"""Helpers only generated modules need: pplc's own versions live in evaluate.py and lower.py.

A built module copies these by source (`Runtime.helper`), as it copies pplc's densities and
transforms, so they are plain functions of jax, numpy and the standard library, tested
here like any other code (tests/backends/test_codegen_helpers.py). Each docstring says
which step of pplc's lowering it mirrors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pplc.runtime.numerics import to_float


def _over(fn, *loops):
    """fn(i, j, ...) at every index of nested loops, stacked along leading axes: one
    jax.vmap per loop, outermost first (a loop is a Python range)."""
    if not loops:
        return fn()
    first, rest = loops[0], loops[1:]
    return jax.vmap(lambda i: _over(lambda *inner: fn(i, *inner), *rest))(
        jnp.arange(first.start, first.stop))


def _sum_over(fn, *loops):
    """The sum of fn(i, j, ...) over every index of the loops (a `~` or `factor` in loops)."""
    return jnp.sum(_over(lambda *index: jnp.sum(fn(*index)), *loops))


def _assemble(extent, *pieces):
    """An array defined element by element: each piece is (indices, values) from _over.

    Its shape is `extent` followed by the elements' own shape, its dtype that of the values;
    elements no piece defines are 0."""
    index, values = pieces[0]
    element = jnp.shape(values)[jnp.ndim(jnp.asarray(index[0])):]
    dtype = jnp.result_type(*(jnp.asarray(v) for _, v in pieces))
    array = jnp.zeros(tuple(extent) + tuple(element), dtype)
    for index, values in pieces:
        array = array.at[index].set(jnp.asarray(values, dtype))
    return array


def _split(u, shapes):
    """The flat vector u cut into consecutive blocks of these shapes."""
    u = jnp.asarray(u, jnp.float64)
    blocks, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        blocks.append(jnp.reshape(u[offset:offset + size], shape))
        offset += size
    if offset != u.shape[0]:
        raise ValueError(f"expected a vector of {offset} unconstrained values, "
                         f"got {u.shape[0]}")
    return blocks


def _bound_array(shape, *pieces):
    """A support bound that differs between the pieces defining a latent: each piece's
    (indices, values) from _over, NaN where another piece defines the element."""
    out = jnp.full(shape, jnp.nan)
    for index, values in pieces:
        out = jnp.where(jnp.isnan(out), jnp.full(shape, jnp.nan).at[index].set(values), out)
    return out


def _fold(key, index):
    """A random stream per element: the variable's key folded with each index value."""
    for i in index:
        key = jax.random.fold_in(key, jnp.asarray(i))
    return key


def _fill(array, draw, *loops):
    """array with array[index] = value for every (index, value) that draw(i, ...) gives."""
    index, values = _over(draw, *loops)
    return array.at[index].set(values)


def _draw_whole(draw, shape):
    """A variable drawn whole, as floats of its shape (pplc's prior simulation)."""
    return jnp.broadcast_to(draw, shape).astype(float)


def _f64(x):
    """A float64 array (the arguments `integrate` and `ode` get)."""
    return jnp.asarray(x, jnp.float64)


def _stack_items(*items):
    """A list literal [a, b, ...]: the items broadcast together, stacked on a new first axis."""
    return jnp.stack(jnp.broadcast_arrays(*items))


def _read_data(data, declared, built_for, *names):
    """The named data as pplc binds them: int sizes as Python ints (they fix shapes and
    loop ranges), everything else as JAX arrays, float64 unless declared int (`declared`:
    name -> declared type, the module's DATA table). A size in `built_for` (the module's
    BUILT_FOR: what it was built for, where a shape or an order could not be written in
    terms of the sizes) must have that value. The data are not otherwise checked against
    the model here (pplc checks them when it conditions on them)."""
    out = []
    for name in names:
        value = data.get(name)
        if value is None:
            raise KeyError(f"data '{name}' is missing: this function needs it")
        array = np.asarray(value)
        if array.dtype == object:  # None entries
            array = np.asarray(value, dtype=np.float64)
        base = (declared[name] or "").split("[")[0].split("(")[0]
        if base == "int" or (not base and array.dtype.kind in "iub"):
            array = array.astype(np.int64)
        else:
            array = array.astype(np.float64)
            if np.isnan(array).any():
                raise ValueError(f"data '{name}' has missing entries (NaN or None): this "
                                 "module cannot impute them (pplc can)")
        if name in built_for and array.ndim == 0 and int(array) != built_for[name]:
            raise ValueError(f"this module was built for {name} = {built_for[name]}, not "
                             f"{int(array)}: build it again with these data (see BUILT_FOR)")
        out.append(int(array) if base == "int" and array.ndim == 0 else jnp.asarray(array))
    return out


def _read_params(params, shapes):
    """The latents' values from `params`, as float64 arrays of their shapes."""
    out = []
    for name, shape in shapes.items():
        if name not in params:
            raise KeyError(f"params has no value for the latent '{name}'")
        out.append(jnp.broadcast_to(jnp.asarray(params[name], jnp.float64), shape))
    return out


def _unbound_extern(name):
    raise RuntimeError(f"extern function '{name}' is not bound: set EXTERNS['{name}'] in "
                       "this module to a JAX-traceable function before calling it")


def _bound(bound):
    """A bound of Truncated as a float array, or None where the model gives none."""
    return None if bound is None else to_float(bound)
