"""pplc's runtime library: the functions a log density runs (densities, samplers, CDFs,
constraint transforms, special functions, scans), written once in JAX.

The JAX lowering (backends/) calls them; `pplc build` copies them by source into a
standalone module (backends/codegen/runtime.py), so both renderings compute the same
numbers. They depend on nothing of pplc but the tables of facts (frontend/library.py).
"""

import pplc.jax_x64  # noqa: F401 - x64 on before any runtime function computes
