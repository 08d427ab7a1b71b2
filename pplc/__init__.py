"""pplc: a probabilistic-programming compiler: `.ppl` models -> JAX log densities -> NUTS."""

import jax as _jax

# Stan computes in 64-bit; some conformance models fail in 32-bit (LANGUAGE.md).
_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from pplc.errors import PplcError  # noqa: E402
from pplc.model import ConditionedModel, Model, compile  # noqa: E402
from pplc.inference.posterior import Posterior  # noqa: E402
from pplc.inference.saved import load  # noqa: E402

__all__ = ["compile", "Model", "ConditionedModel", "PplcError", "Posterior", "load",
           "__version__"]
