"""The one table of parameter supports (library.PARAMETER_SUPPORTS) against the catalogue
and against the densities themselves (issue 15): every parameter of every distribution
has an entry, and a value the table refuses is one the density cannot use (its log
density is NaN or infinite there), so the check before sampling refuses nothing that
would have worked."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.runtime import distributions as dists
from pplc.frontend.library import DISTRIBUTIONS, KIND_BOUNDS, PARAMETER_SUPPORTS

jax.config.update("jax_enable_x64", True)


def test_every_parameter_of_every_distribution_has_a_support():
    for name, info in DISTRIBUTIONS.items():
        params = set(info.parameter_names) - ({"dist"} if info.wrapper else set())
        assert params == set(PARAMETER_SUPPORTS[name]), name
    assert set(PARAMETER_SUPPORTS) == set(DISTRIBUTIONS)


# A value inside each scalar support, and the values just outside it.
_INSIDE = {"real": 0.7, "extended_real": 0.7, "positive": 1.3, "unit": 0.4,
           "nonnegative_int": 3.0}
_VALUES = (0.0, 0.5, 1.0, 2.0, 3.0)  # where each density is looked at


def _outside(support) -> list[float]:
    """Values the table refuses (a fractional count too, but a density of a fractional
    count can be finite without being a distribution, so it is not looked at here)."""
    lower, upper = KIND_BOUNDS.get(support.kind, (None, None))
    out = []
    if lower is not None:
        out.append(lower if support.open else lower - 0.5)
    if upper is not None:
        out.append(upper if support.open else upper + 0.5)
    if support.kind != "extended_real":
        out.extend([np.inf, np.nan])
    return out


def _closed_bounds(support) -> list[float]:
    lower, upper = KIND_BOUNDS.get(support.kind, (None, None))
    return [] if support.open else [b for b in (lower, upper) if b is not None]


_SCALAR = [(name, sig) for name, info in DISTRIBUTIONS.items()
           if not info.wrapper and not info.event_ndim and name not in
           ("Categorical", "OrderedLogistic") for sig in info.signatures]


def _densities(name, params) -> list[float]:
    dist = dists.get(name)
    values = [v for v in _VALUES if v == int(v)] if DISTRIBUTIONS[name].discrete else _VALUES
    return [float(dist.log_prob(jnp.asarray(v), **params)) for v in values]


def _usable(densities) -> bool:
    """A density that is a number everywhere and has mass somewhere (a point mass, or
    +inf at a boundary as Beta(0.5, 0.5) at 0, is fine)."""
    return not any(np.isnan(densities)) and any(np.isfinite(densities))


def _inside(name, signature) -> dict:
    if name == "Uniform":
        return {"low": 0.0, "high": 2.0}
    return {p: _INSIDE[PARAMETER_SUPPORTS[name][p].kind] for p in signature}


@pytest.mark.parametrize("name,signature", _SCALAR, ids=[f"{n}{s}" for n, s in _SCALAR])
def test_a_refused_argument_is_one_the_density_cannot_use(name, signature):
    inside = _inside(name, signature)
    assert _usable(_densities(name, inside)), (name, inside)
    for param in signature:
        for bad in _outside(PARAMETER_SUPPORTS[name][param]):
            densities = _densities(name, {**inside, param: bad})
            assert not _usable(densities), (name, param, bad, densities)


@pytest.mark.parametrize("name,signature", _SCALAR, ids=[f"{n}{s}" for n, s in _SCALAR])
def test_a_bound_the_table_allows_is_one_the_density_uses(name, signature):
    """Closed bounds (a Poisson rate of 0, a probability of 0 or 1) are allowed because the
    density has a value there; open ones (a scale of 0) because it has none."""
    inside = _inside(name, signature)
    for param in signature:
        for bound in _closed_bounds(PARAMETER_SUPPORTS[name][param]):
            densities = _densities(name, {**inside, param: bound})
            assert _usable(densities), (name, param, bound, densities)


def test_an_observed_zero_is_refused_only_where_every_density_vanishes_there():
    """0 is in a positive support (HalfNormal, Exponential have a density there); it is
    refused where the density is 0 at 0 whatever the parameters, and only there."""
    import pplc
    from pplc.errors import PplcError

    def check(dist: str):
        model = pplc.compile(f"data y: real[2]\ny ~ {dist}\n")
        return model.condition({"y": [0.0, 1.0]})

    for dist in ("ChiSquared(2)", "Gamma(1, 1)", "Weibull(1, 1)", "Exponential(1)",
                 "HalfNormal(1)"):
        check(dist)
    for dist in ("LogNormal(0, 1)", "InverseGamma(2, 1)"):
        with pytest.raises(PplcError, match="its density is 0 at 0"):
            check(dist)
