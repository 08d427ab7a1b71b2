"""Standard normal draws that XLA computes once, however many operations read them.

Why: `jax.random.normal` in float64 is an erf_inv polynomial of ~200 elementwise HLO
instructions, and XLA's CPU fusion copies such cheap producers into every fusion that
reads them: 22 copies in ADVI's program on eight schools (74% of its optimized HLO, ~0.6 s
of its compile), 3x the draws' HLO in Pathfinder's draw program (benchmarks/
advi_compile.md). A conditional on a predicate XLA cannot evaluate (always true: the key's
first word with its low bit set is never 0) returns the draws unchanged but makes them a
value of their own. The numbers are jax.random.normal's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def normal_draws(rng_key: jax.Array, shape: tuple, dtype: Any) -> jax.Array:
    """`jax.random.normal(rng_key, shape, dtype)`, materialized once (module docstring)."""
    eps = jax.random.normal(rng_key, shape, dtype)
    word = jax.random.key_data(rng_key).reshape(-1)[0]
    return jax.lax.cond((word | jnp.uint32(1)) != 0, lambda e: e, jnp.zeros_like, eps)
