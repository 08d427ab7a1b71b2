"""Ahead-of-time compilation with a cache keyed on the log density and argument shapes.

Why our own cache: `jax.jit` caches on the identity of the function it wraps, and the
drivers build a fresh closure on every call; NumPyro's re-runs recompile for this reason
(docs/PERFORMANCE.md). Here the key is (the user's log density function, a tuple of static
settings, the shapes/dtypes/tree structure of every argument), so a re-run with a new seed,
new draws count or new data of the same shapes reuses the executable and compiles nothing.
The user's function is held weakly: dropping the model frees its executables.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Hashable

import jax
import numpy as np

_CACHE: "weakref.WeakKeyDictionary[Callable, dict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _aval(x: Any) -> tuple:
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return ("key", x.shape, str(jax.random.key_impl(x)))
    a = x if hasattr(x, "dtype") else np.asarray(x)
    return (tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False)))


def signature(*args: Any) -> Hashable:
    """Tree structure plus (shape, dtype) of every leaf: what an executable is specialized on."""
    leaves, treedef = jax.tree.flatten(args)
    return (treedef, tuple(_aval(leaf) for leaf in leaves))


def compiled(fn_key: Callable, static: Hashable, build: Callable[[], Callable], *args: Any,
             **jit_options: Any):
    """Return (executable, compile seconds); compile seconds is 0.0 on a cache hit.

    `build()` returns the Python function to jit; it is only called on a miss.
    `jit_options` (e.g. in_shardings) go to `jax.jit`; `static` must name whatever in them
    changes the program.
    """
    key = (static, signature(*args))
    with _LOCK:
        per_fn = _CACHE.setdefault(fn_key, {})
        hit = per_fn.get(key)
    if hit is not None:
        return hit, 0.0
    start = time.perf_counter()
    executable = jax.jit(build(), **jit_options).lower(*args).compile()
    seconds = time.perf_counter() - start
    with _LOCK:
        per_fn[key] = executable
    return executable, seconds


def device_data(data: Any) -> Any:
    """Data as committed device arrays with strong dtypes, so shapes alone key the cache."""
    return jax.tree.map(lambda x: jax.device_put(np.asarray(x)), data)


def float_positions(value: Any, ndim: int, message: str) -> np.ndarray:
    """Starting positions as a floating array of `ndim` axes (integers become floats);
    ValueError(message) for another number of axes."""
    positions = np.asarray(value)
    if positions.ndim != ndim:
        raise ValueError(message)
    if not np.issubdtype(positions.dtype, np.floating):
        positions = positions.astype(jax.numpy.result_type(float))
    return positions
