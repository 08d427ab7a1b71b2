"""Every public method of the Python API's classes is guarded (`pplc.errors.guard`), the
ones their mixins give them included: `guard_public_methods` guards only the methods a class
defines itself, so a mixin split off into its own module (fitting.py, posterior_building.py,
prediction.py, fit_matching.py) must guard its own. An unguarded one would let a pplc bug
escape as an `IndexError` instead of an `InternalError` that asks to be reported. Static:
no JAX program runs (~0 s once pplc is imported).
"""

from __future__ import annotations

import pytest

from pplc.conditioned import ConditionedModel
from pplc.inference.posterior import Posterior
from pplc.model import Model


def _unguarded(cls: type) -> list[str]:
    """The public methods `cls` has, from itself or any base, that are not guarded."""
    found = []
    for base in cls.__mro__[:-1]:   # not `object`
        for name, member in vars(base).items():
            if name.startswith("_") or isinstance(member, (type, staticmethod, classmethod)):
                continue
            if callable(member) and not hasattr(member, "__wrapped__"):
                found.append(f"{base.__module__}.{base.__qualname__}.{name}")
    return found


@pytest.mark.parametrize("cls", [ConditionedModel, Model, Posterior])
def test_every_public_method_is_guarded_mixins_included(cls):
    assert len(cls.__mro__) > 1
    assert _unguarded(cls) == []


def test_the_fitting_and_posterior_mixins_are_part_of_the_conditioned_model():
    """The methods moved out of conditioned.py are still `ConditionedModel`'s, guarded."""
    for name in ("fit", "posterior_of", "sample", "log_density", "prior_predictive"):
        assert hasattr(getattr(ConditionedModel, name), "__wrapped__"), name
