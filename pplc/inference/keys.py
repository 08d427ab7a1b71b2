"""A run's random keys from its seed, and a key's split, computed on the host: no XLA program.

Why: `init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))` and the chains'
`jax.random.split(run_key, chains)` are threefry2x32 hashes of a few counters, which JAX runs
as XLA programs that every fresh `pplc sample` traces, lowers and compiles (0.15-0.2 CPU-s
each; at LLVM's level 0, 0.11-0.13: benchmarks/startup.md, session 10). The hash is 20 rounds
of uint32 adds, rotations and xors, so NumPy computes the same bits in microseconds: the
same integer operations in the same order, wrapping modulo 2**32 as XLA's do (checked
against JAX on many seeds and both of its split layouts, tests/inference/test_keys.py).

Only for what that arithmetic is: JAX's default threefry2x32 keys as raw uint32[2] arrays.
A typed key, another PRNG implementation or JAX's custom-PRNG mode go to a jitted program
compiled at `programs.RUN_ONCE` (integer operations: the level cannot change their bits).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from pplc.inference.programs import RUN_ONCE

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))   # JAX's random/threefry2x32.py


def _threefry2x32(k1: np.ndarray, k2: np.ndarray, x0: np.ndarray, x1: np.ndarray):
    """JAX's `threefry2x32_p` (its `_threefry2x32_lowering`), on uint32 arrays: 5 groups of
    4 rounds, each group followed by a key injection. Arrays, not scalars: NumPy wraps
    array arithmetic silently, as XLA does."""
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def _host_split(key: np.ndarray, num: int) -> np.ndarray:
    """`jax.random.split` of a raw threefry key into (num, 2) uint32, in either of JAX's
    layouts (`jax_threefry_partitionable`, read when called)."""
    k1, k2 = key[:1], key[1:]
    if jax.config.jax_threefry_partitionable:   # counters: a uint64 iota as (hi, lo)
        counts = np.arange(num, dtype=np.uint64)
        hi, lo = (counts >> np.uint64(32)).astype(np.uint32), counts.astype(np.uint32)
        bits1, bits2 = _threefry2x32(k1, k2, hi, lo)
        return np.stack([bits1, bits2], axis=1)
    counts = np.arange(2 * num, dtype=np.uint32)   # halves of one iota, output concatenated
    bits1, bits2 = _threefry2x32(k1, k2, counts[:num], counts[num:])
    return np.concatenate([bits1, bits2]).reshape(num, 2)


def _on_host(key) -> bool:
    """Whether `key` is what the host arithmetic computes: a raw threefry2x32 key."""
    dtype = getattr(key, "dtype", None)
    return (jax.config.jax_default_prng_impl == "threefry2x32"
            and not jax.config.jax_enable_custom_prng
            and dtype is not None and not jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
            and dtype == np.uint32 and np.shape(key) == (2,))


@functools.partial(jax.jit, compiler_options=RUN_ONCE)
def _split_seed(seed):
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, run_key


@functools.partial(jax.jit, static_argnums=1, compiler_options=RUN_ONCE)
def _split(key, num):
    return jax.random.split(key, num)


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init_key, run_key): bit for bit `jax.random.split(jax.random.PRNGKey(seed))`.

    `seed` is a non-negative integer up to 2**63 - 1 (options.SEED_MAX); its 64 bits are
    the key's two words, high first, as JAX's `threefry_seed` makes them.

    Example:
        >>> import jax, numpy as np
        >>> a, b = seed_keys(7)
        >>> bool(np.array_equal(np.stack([a, b]), jax.random.split(jax.random.PRNGKey(7))))
        True
    """
    bits = int(seed) % 2**64
    key = np.array([bits >> 32, bits & 0xFFFFFFFF], np.uint32)
    if not _on_host(key):
        return _split_seed(np.int64(seed))
    init_key, run_key = _host_split(key, 2)
    return tuple(jax.device_put((init_key, run_key)))


def split_keys(key, num: int) -> jax.Array:
    """Bit for bit `jax.random.split(key, num)` (the chains' keys, say): a raw threefry key
    on the host, any other key in a jitted program (one per `num` and key type).

    Example:
        >>> import jax, numpy as np
        >>> key = jax.random.PRNGKey(3)
        >>> bool(np.array_equal(split_keys(key, 4), jax.random.split(key, 4)))
        True
    """
    if not _on_host(key):
        return _split(key, int(num))
    return jax.device_put(_host_split(np.asarray(key), int(num)))
