"""The one place pplc imports JAX: x64 is switched on before any pplc code computes.

Stan computes in 64-bit, and some conformance models fail in 32-bit (LANGUAGE.md), so no
path through pplc may ever build a float32 array. JAX is imported lazily (its import costs
2-4 s, and `pplc --version` or `pplc check` without data need none of it), so x64 cannot be
set in `pplc/__init__.py`. Instead every JAX-using part of pplc goes through this module:
`pplc.backends`, `pplc.runtime` and `pplc.inference` import it in their package `__init__` (which Python
runs before any module inside them), and the top-level modules that use JAX (`model`,
`cache`) import it first. `tests/test_startup.py` checks that no other module imports JAX.
"""

import jax

jax.config.update("jax_enable_x64", True)

__all__ = ["jax"]
