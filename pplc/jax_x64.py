"""The one place pplc imports JAX: x64 is switched on before any pplc code computes.

Stan computes in 64-bit, and some conformance models fail in 32-bit (LANGUAGE.md), so no
path through pplc may ever build a float32 array. JAX is imported lazily (its import costs
2-4 s, and `pplc --version` or `pplc check` without data need none of it), so x64 cannot be
set in `pplc/__init__.py`. Instead every JAX-using part of pplc goes through this module:
`pplc.backends`, `pplc.runtime` and `pplc.inference` import it in their package `__init__` (which Python
runs before any module inside them), and the top-level modules that use JAX (`model`,
`cache`) import it first. `tests/test_startup.py` checks that no other module imports JAX.

It also asks XLA:CPU to compile every while loop that touches under 64 MiB per iteration as
one function (`xla_cpu_small_while_loop_byte_threshold`, default 1 KiB) instead of running its
body op by op through the thunk executor, which spends 3-5 us per NUTS leapfrog step
dispatching ~40 small ops to a thread pool (benchmarks/profile_notes.md, "Machinery"). XLA
reads XLA_FLAGS once, when the first backend starts, so this works when pplc is imported
before any JAX computation; a user's own xla_backend_extra_options are left alone.
"""

import os

_SMALL_LOOPS = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=67108864"
if "xla_backend_extra_options" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _SMALL_LOOPS).strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

__all__ = ["jax"]
