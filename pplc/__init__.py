"""pplc: a probabilistic-programming compiler: `.ppl` models -> JAX log densities -> NUTS.

The public names are imported on first use (PEP 562), not here: `import pplc` must not
import JAX (2-4 s), so that `pplc --version` and `pplc check` without data start in a
fraction of a second. JAX, once needed, is imported through `pplc.jax_x64`, which turns x64 on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY = {
    "compile": "pplc.model",
    "Model": "pplc.model",
    "ConditionedModel": "pplc.model",
    "PplcError": "pplc.errors",
    "InternalError": "pplc.errors",
    "Posterior": "pplc.inference.posterior",
    "load": "pplc.inference.saved",
    "Distributed": "pplc.inference.distributed",
}

__all__ = ["compile", "Model", "ConditionedModel", "PplcError", "InternalError", "Posterior",
           "load", "Distributed", "__version__"]

if TYPE_CHECKING:  # for type checkers and editors; never run
    from pplc.errors import InternalError, PplcError
    from pplc.model import ConditionedModel, Model, compile
    from pplc.inference.posterior import Posterior
    from pplc.inference.saved import load
    from pplc.inference.distributed import Distributed


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pplc' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
