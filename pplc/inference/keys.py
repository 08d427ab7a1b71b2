"""A run's random keys from its seed, in one compiled program.

Why: `init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))` run eagerly is four
XLA programs (the seed's conversion, the seed hash, the split, and the unstacking that the
tuple assignment does), each traced, lowered and compiled or loaded on every launch
(benchmarks/startup.md). One jitted function gives the same bits in one program.
"""

from __future__ import annotations

import jax
import numpy as np


@jax.jit
def _split_seed(seed):
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, run_key


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init_key, run_key): bit for bit `jax.random.split(jax.random.PRNGKey(seed))`.

    `seed` is a non-negative integer up to 2**63 - 1 (options.SEED_MAX), passed as int64
    so that every seed shares one program.

    Example:
        >>> import jax, numpy as np
        >>> a, b = seed_keys(7)
        >>> bool(np.array_equal(np.stack([a, b]), jax.random.split(jax.random.PRNGKey(7))))
        True
    """
    return _split_seed(np.int64(seed))
