"""Inference tests run in float64, as pplc does (it enables x64 at import)."""

import jax

jax.config.update("jax_enable_x64", True)
