"""The runtime library runs in 64-bit floats (LANGUAGE.md: numbers are 64-bit by default), and the
oracle comparisons' tolerances assume it, so the tests switch x64 on before any array exists."""

import jax

jax.config.update("jax_enable_x64", True)
