"""The backends: analysis of the conditioned graph, the JAX lowering, pplc build's printer."""

import pplc.jax_x64  # noqa: F401 - x64 on before any backend module computes
