"""Inference: NUTS with Stan's warmup, compiled end to end in JAX.

Public names: the NUTS kernel (`init`, `build_kernel`, `NUTSState`, `NUTSInfo`), the
leapfrog integrator (`IntegratorState`, `velocity_verlet`), the driver (`sample_nuts`,
`MCMCResult`) and Stan-like initialization (`initial_positions`).
"""

import pplc.jax_x64  # noqa: F401 - x64 on before any inference module computes
from pplc.inference.integrator import IntegratorState, velocity_verlet
from pplc.inference.mcmc import MCMCResult, sample_nuts
from pplc.inference.nuts import NUTSInfo, NUTSState, build_kernel, init
from pplc.inference.initialize import initial_positions

__all__ = [
    "IntegratorState",
    "velocity_verlet",
    "NUTSInfo",
    "NUTSState",
    "build_kernel",
    "init",
    "MCMCResult",
    "sample_nuts",
    "initial_positions",
]
