"""JAX log densities and samplers for the language's distributions (`frontend.library`).

This module binds the catalogue to its implementations: the densities and samplers of
the scalar distributions (densities.py) and the multivariate ones (multivariate.py), their
CDFs (cdfs.py), all built from numerics.py; here are their shapes, `Truncated` (its
arithmetic in truncation.py), and `support_bounds`. Built modules copy the
implementations by source.

Each catalogue entry gets a `Distribution` whose `log_prob(value, **params)` is the
normalized log density (or mass) with NumPy broadcasting, equal to NumPyro's `log_prob`
inside the support, and whose `sample(key, shape, **params)` draws with `jax.random`.
Parameter names are exactly those of one signature in the catalogue
(`Bernoulli(probs=...)` or `Bernoulli(logits=...)`).

Event shapes. A value's last `info.event_ndim` axes form one draw (a Dirichlet simplex, an
LKJCholesky matrix). `shapes(**params) -> (batch_shape, event_shape)` reads only the
parameters' shapes (it works on tracers and `jax.ShapeDtypeStruct`s); LKJCholesky's `dim`
is a static Python int, and the trailing axis of Categorical's `probs`/`logits` and of
OrderedLogistic's `cutpoints` is the category axis, not a batch axis. `log_prob` returns
one number per event: the shape `value.shape[:value.ndim - event_ndim]` broadcast with
`batch_shape`. `sample(key, shape)` takes the full value shape (batch + event) and
broadcasts it with `batch_shape + event_shape`.

CDFs and truncation. The continuous scalar distributions (and Poisson and Binomial) also
have `cdf`, `log_cdf` and `log_ccdf` (log of 1 - cdf, for far upper tails), evaluated
on the whole real line (0 or 1 outside the support). Those with a closed-form inverse
(Normal, HalfNormal, Cauchy, HalfCauchy, Laplace, Logistic, LogNormal, Exponential,
Weibull, Uniform) also have `icdf` and `iccdf` (the inverse of 1 - cdf). `truncated(...)`
builds `Truncated(DIST, lower, upper)` from them; see its docstring. JAX has no gradient
of `betainc` with respect to its shape arguments, so the CDFs of Beta, StudentT and
HalfStudentT (and so their truncations) are not differentiable in `df` and the Beta
concentrations: differentiating them there raises.

Three choices differ from NumPyro, all because the compiler feeds these functions observed
data and traced parameters:

* Outside the support `log_prob` is `-inf` (a negative or fractional count, a Uniform value
  outside `[low, high]`, ...), so bad data cannot silently contribute a finite term.
  NumPyro returns garbage there unless `validate_args` is on.
* Masked branches use the double-`where` trick: the out-of-support value is replaced by a
  safe one *before* the formula runs, so `jnp.where` never multiplies a zero cotangent by a
  NaN/inf derivative (https://github.com/jax-ml/jax/issues/1052).
* `x log y` uses `numerics.xlogy`, whose derivative is finite at `x = y = 0` (JAX's `xlogy` gives
  NaN there), so e.g. `Bernoulli(probs=0)` observed at 0 has a finite gradient.

Boundaries: a continuous support includes an endpoint where the density has a limit
there: 0 for HalfNormal, HalfCauchy, Exponential and Gamma; 0 and 1 for Beta (NumPyro's
closed `unit_interval`); both ends for Uniform. The limit is returned, and it may be `+inf`
(Beta(0.5, 0.5) at 0). LogNormal's density vanishes at 0, so there `x <= 0` gives `-inf`.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple

import jax.numpy as jnp

from pplc.runtime import densities, multivariate
from pplc.runtime.cdfs import CDFS, DISCRETE_CDFS
from pplc.runtime.numerics import to_float, broadcast, Array, Shape
from pplc.runtime.truncation import (  # noqa: F401 - importable from here
    truncated_log_prob, truncated_lp, truncated_sample, truncation_log_mass, truncation_range)
from pplc.errors import InternalError
from pplc.frontend.library import DISTRIBUTIONS as _CATALOGUE
from pplc.frontend.library import KIND_BOUNDS, AxisLength, DistributionInfo


class Distribution(NamedTuple):
    """A catalogue entry with its JAX log density and sampler (module docstring).

    The CDF fields are None where the distribution has none (discrete and multivariate
    ones other than Poisson and Binomial; `icdf`/`iccdf` where there is no closed form).
    """

    info: DistributionInfo
    log_prob: Callable[..., Array]  # log_prob(value, **params) -> log density per event
    sample: Callable[..., Array]  # sample(key, shape, **params) -> draws of value shape
    shapes: Callable[..., tuple[Shape, Shape]]  # shapes(**params) -> (batch, event)
    cdf: Callable[..., Array] | None = None  # cdf(value, **params) = P(X <= value)
    log_cdf: Callable[..., Array] | None = None  # log P(X <= value)
    log_ccdf: Callable[..., Array] | None = None  # log P(X > value)
    icdf: Callable[..., Array] | None = None  # icdf(q, **params): the x with cdf(x) = q
    iccdf: Callable[..., Array] | None = None  # iccdf(s, **params): 1 - cdf(x) = s



# ---------------------------------------------------------------------------------------
# Shapes: (batch_shape, event_shape) from the parameters' shapes only.


def _scalar_shapes(**params) -> tuple[Shape, Shape]:
    return broadcast(*(jnp.shape(p) for p in params.values())), ()


def _categorical_shapes(**params):
    (table,) = params.values()
    return tuple(jnp.shape(table)[:-1]), ()


def _ordered_logistic_shapes(predictor, cutpoints):
    return broadcast(jnp.shape(predictor), jnp.shape(cutpoints)[:-1]), ()


def _dirichlet_shapes(concentration):
    shape = tuple(jnp.shape(concentration))
    return shape[:-1], shape[-1:]


def _multinomial_shapes(total_count, probs):
    shape = tuple(jnp.shape(probs))
    return broadcast(jnp.shape(total_count), shape[:-1]), shape[-1:]


def _mvn_shapes(loc, cov=None, scale_tril=None):
    matrix = tuple(jnp.shape(cov if scale_tril is None else scale_tril))
    loc = tuple(jnp.shape(loc))
    return broadcast(loc[:-1], matrix[:-2]), broadcast(loc[-1:], matrix[-1:])


def _lkj_cholesky_shapes(dim, concentration):
    return tuple(jnp.shape(concentration)), (dim, dim)


_SHAPES: dict[str, Callable[..., tuple[Shape, Shape]]] = {
    "Categorical": _categorical_shapes,
    "OrderedLogistic": _ordered_logistic_shapes,
    "Dirichlet": _dirichlet_shapes,
    "Multinomial": _multinomial_shapes,
    "MultivariateNormal": _mvn_shapes,
    "LKJCholesky": _lkj_cholesky_shapes,
}


# ---------------------------------------------------------------------------------------
# Binding to the catalogue

def _pair(module, stem: str) -> tuple[Callable, Callable]:
    """(module.stem_lp, module.stem_sample): a signature's log density and sampler."""
    return getattr(module, f"{stem}_lp"), getattr(module, f"{stem}_sample")


# name -> {signature: (log_prob(value, *params), sample(key, shape, *params))}
IMPLEMENTATIONS: dict[str, dict[tuple[str, ...], tuple[Callable, Callable]]] = {
    "Normal": {("loc", "scale"): _pair(densities, "normal")},
    "HalfNormal": {("scale",): _pair(densities, "half_normal")},
    "HalfCauchy": {("scale",): _pair(densities, "half_cauchy")},
    "Cauchy": {("loc", "scale"): _pair(densities, "cauchy")},
    "StudentT": {("df", "loc", "scale"): _pair(densities, "student_t")},
    "HalfStudentT": {("df", "scale"): _pair(densities, "half_student_t")},
    "Laplace": {("loc", "scale"): _pair(densities, "laplace")},
    "Logistic": {("loc", "scale"): _pair(densities, "logistic")},
    "LogNormal": {("loc", "scale"): _pair(densities, "log_normal")},
    "Exponential": {("rate",): _pair(densities, "exponential")},
    "Gamma": {("concentration", "rate"): _pair(densities, "gamma")},
    "InverseGamma": {("concentration", "scale"): _pair(densities, "inverse_gamma")},
    "Weibull": {("scale", "concentration"): _pair(densities, "weibull")},
    "ChiSquared": {("df",): _pair(densities, "chi_squared")},
    "Beta": {("concentration1", "concentration0"): _pair(densities, "beta")},
    "Uniform": {("low", "high"): _pair(densities, "uniform")},
    "Poisson": {("rate",): _pair(densities, "poisson_rate"),
                ("log_rate",): _pair(densities, "poisson_log_rate")},
    "Bernoulli": {("probs",): _pair(densities, "bernoulli_probs"),
                  ("logits",): _pair(densities, "bernoulli_logits")},
    "Binomial": {("total_count", "probs"): _pair(densities, "binomial_probs"),
                 ("total_count", "logits"): _pair(densities, "binomial_logits")},
    "NegativeBinomial": {("mean", "concentration"): _pair(densities, "negative_binomial")},
    "BetaBinomial": {("concentration1", "concentration0", "total_count"):
                     _pair(densities, "beta_binomial")},
    "Categorical": {("probs",): _pair(densities, "categorical_probs"),
                    ("logits",): _pair(densities, "categorical_logits")},
    "OrderedLogistic": {("predictor", "cutpoints"): _pair(densities, "ordered_logistic")},
    "Dirichlet": {("concentration",): _pair(multivariate, "dirichlet")},
    "Multinomial": {("total_count", "probs"): _pair(multivariate, "multinomial")},
    "MultivariateNormal": {("loc", "cov"): _pair(multivariate, "mvn_cov"),
                           ("loc", "scale_tril"): _pair(multivariate, "mvn_scale_tril")},
    "LKJCholesky": {("dim", "concentration"): _pair(multivariate, "lkj_cholesky")},
}


def _choose(info: DistributionInfo, params: Mapping[str, object]) -> tuple[str, ...]:
    """The catalogue signature whose names are exactly `params`' keys.

    The frontend has already bound the user's arguments (`library.bind_arguments`), so a
    mismatch here is a bug in pplc, not a user error.
    """
    for signature in info.signatures:
        if set(signature) == set(params):
            return signature
    raise InternalError(f"{info.name} called with parameters {sorted(params)}; "
                        f"expected one of {info.signatures}")


def _static_int(info: DistributionInfo, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise InternalError(f"parameter '{name}' of {info.name} must be a static Python int, "
                            f"got {value!r}")
    return int(value)


def _args(info: DistributionInfo, signature: tuple[str, ...], params) -> tuple:
    return tuple(_static_int(info, p, params[p]) if p in info.static_params
                 else to_float(params[p]) for p in signature)


def _bind(info: DistributionInfo) -> Distribution:
    if info.wrapper:
        return _bind_truncated(info)
    impls = IMPLEMENTATIONS[info.name]
    shapes_of = _SHAPES.get(info.name, _scalar_shapes)

    def log_prob(value, **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][0](to_float(value), *_args(info, signature, params))

    def sample(key, shape=(), **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][1](key, shape, *_args(info, signature, params))

    def shapes(**params) -> tuple[Shape, Shape]:
        signature = _choose(info, params)
        static = {p: _static_int(info, p, params[p]) for p in info.static_params}
        return shapes_of(**{**{p: params[p] for p in signature}, **static})

    def cdf_method(index: int):
        def method(value, **params) -> Array:
            signature = _choose(info, params)
            fns = CDFS.get(info.name) or DISCRETE_CDFS[(info.name, signature)]
            return fns[index](to_float(value), *_args(info, signature, params))
        return method

    has_cdf = info.name in CDFS or any(n == info.name for n, _ in DISCRETE_CDFS)
    has_icdf = info.name in CDFS and CDFS[info.name][3] is not None
    cdfs = [cdf_method(i) if (has_cdf if i < 3 else has_icdf) else None for i in range(5)]
    for fn, what in zip([log_prob, sample, shapes] + cdfs,
                        ["log_prob", "sample", "shapes", "cdf", "log_cdf", "log_ccdf", "icdf",
                         "iccdf"]):
        if fn is not None:
            fn.__name__ = f"{info.name}_{what}"
    log_prob.__doc__ = (f"Log density of {info.name} at `value`, one per event; parameters "
                        f"by keyword: {' | '.join(map(str, info.signatures))}.")
    sample.__doc__ = (f"Draws of {info.name} of value shape `shape` broadcast with "
                      "batch_shape + event_shape.")
    shapes.__doc__ = f"(batch_shape, event_shape) of {info.name} from the parameters' shapes."
    return Distribution(info, log_prob, sample, shapes, *cdfs)


# ---------------------------------------------------------------------------------------
# Truncation

class Truncation(NamedTuple):
    """`Truncated(DIST, lower, upper)` with its inner distribution's parameters fixed."""

    log_prob: Callable[[Array], Array]  # log_prob(value): normalized over [lower, upper]
    sample: Callable[..., Array] | None  # sample(key, shape=()); None: no inverse CDF
    lower: Array | None  # the truncated support: the bound given, else the inner one's
    upper: Array | None


def truncated(dist: Distribution | str, params: Mapping[str, object], lower=None,
              upper=None) -> Truncation:
    """`Truncated(DIST, lower=a, upper=b)`: DIST conditioned on a <= X <= b.

    log_prob = DIST.log_prob - log(F(b) - F(a)) on [a, b], -inf outside. A discrete DIST
    (Poisson, Binomial) counts the integers in [a, b]: the mass is F(floor(b)) -
    F(ceil(a) - 1). Either bound may be None. The normalizer is stable in the far tails
    (`truncation_log_mass`). `sample` is by inverse CDF, drawing in whichever tail keeps precision,
    for the distributions with `icdf` (Normal, HalfNormal, Cauchy, HalfCauchy, Laplace,
    Logistic, LogNormal, Exponential, Weibull, Uniform); it is None for the others and for
    discrete DIST.

    >>> t = truncated("Normal", dict(loc=0.0, scale=1.0), lower=0.0)
    >>> round(float(t.log_prob(0.0)), 6)  # twice the standard normal density at 0
    -0.225791
    """
    dist = get(dist) if isinstance(dist, str) else dist
    info = dist.info
    if info.wrapper or info.event_ndim != 0 or dist.log_cdf is None:
        raise InternalError(f"{info.name} cannot be truncated: it has no CDF")
    given_lower = None if lower is None else to_float(lower)
    given_upper = None if upper is None else to_float(upper)
    inner_lower, inner_upper = support_bounds(info, params)
    implicit = KIND_BOUNDS.get(info.support.kind, (None, None))
    inner_lower = to_float(implicit[0]) if inner_lower is None and implicit[0] is not None \
        else inner_lower
    inner_upper = to_float(implicit[1]) if inner_upper is None and implicit[1] is not None \
        else inner_upper

    cdfs = tuple(None if f is None else functools.partial(f, **params)
                 for f in (dist.cdf, dist.log_cdf, dist.log_ccdf, dist.icdf, dist.iccdf))
    inner_log_prob = functools.partial(dist.log_prob, **params)

    def log_prob(value) -> Array:
        return truncated_lp(to_float(value), inner_log_prob, cdfs, (), given_lower,
                            given_upper, info.discrete)

    def sample(key, shape=()) -> Array:
        batch, _ = dist.shapes(**params)
        return truncated_sample(key, broadcast(shape, batch), cdfs, (), given_lower,
                                given_upper)

    has_sampler = not info.discrete and dist.icdf is not None

    def combine(bound, inner, pick):
        if bound is None or inner is None:
            return inner if bound is None else bound
        return pick(bound, inner)

    return Truncation(log_prob, sample if has_sampler else None,
                      combine(given_lower, inner_lower, jnp.maximum),
                      combine(given_upper, inner_upper, jnp.minimum))


def _unwrap(info: DistributionInfo, params: Mapping[str, object]) -> Truncation:
    _choose(info, params)
    inner, inner_params = params["dist"]
    return truncated(inner, inner_params, params.get("lower"), params.get("upper"))


def _bind_truncated(info: DistributionInfo) -> Distribution:
    """`get("Truncated")`: its `dist` parameter is `(inner Distribution or name, inner
    params)`, and lower/upper are optional keywords; it delegates to `truncated`."""
    def log_prob(value, **params) -> Array:
        return _unwrap(info, params).log_prob(value)

    def sample(key, shape=(), **params) -> Array:
        t = _unwrap(info, params)
        if t.sample is None:
            raise InternalError(f"no sampler for Truncated({params['dist'][0]})")
        return t.sample(key, shape)

    def shapes(**params) -> tuple[Shape, Shape]:
        _choose(info, params)
        inner, inner_params = params["dist"]
        inner = get(inner) if isinstance(inner, str) else inner
        batch, event = inner.shapes(**inner_params)
        bounds = [jnp.shape(params[b]) for b in ("lower", "upper") if b in params]
        return broadcast(batch, *bounds), event

    return Distribution(info, log_prob, sample, shapes)


DISTRIBUTIONS: dict[str, Distribution] = {name: _bind(info) for name, info in _CATALOGUE.items()}


def get(name: str) -> Distribution:
    """The JAX implementation of catalogue distribution `name`.

    >>> import jax.numpy as jnp
    >>> lp = get("Poisson").log_prob(jnp.array(2), log_rate=0.0)  # log(e^-1 / 2!)
    >>> round(float(lp), 9)
    -1.693147181
    """
    try:
        return DISTRIBUTIONS[name]
    except KeyError:
        raise InternalError(f"no JAX implementation of distribution '{name}'") from None


def support_bounds(info_or_name: DistributionInfo | str,
                   params: Mapping[str, object]) -> tuple[Array | None, Array | None]:
    """Evaluate a support's (lower, upper): a parameter name gives that parameter's value,
    a number gives itself (as an array), an `AxisLength` its count (Categorical: K - 1),
    None gives None. For `Truncated` (params `dist=(inner, inner_params)`, lower, upper)
    they are the given bounds, a missing one the inner support's own (`truncated`).

    The bounds feed `transforms.transform_for` for latent variables whose support moves
    with other variables (`b ~ Uniform(0, 1 - a)`), so they may be traced values.
    """
    info = _CATALOGUE[info_or_name] if isinstance(info_or_name, str) else info_or_name
    if info.wrapper:
        t = _unwrap(info, params)
        return t.lower, t.upper

    def evaluate(bound):
        if bound is None:
            return None
        if isinstance(bound, AxisLength):
            given = [p for p in bound.params if p in params]
            if not given:
                raise InternalError(f"support bound {bound} of {info.name} names none of "
                                    f"the parameters {sorted(params)}")
            return to_float(jnp.shape(params[given[0]])[-1] + bound.offset)
        if isinstance(bound, str):
            if bound not in params:
                raise InternalError(f"support bound '{bound}' of {info.name} is not among "
                                    f"the parameters {sorted(params)}")
            return to_float(params[bound])
        return to_float(bound)

    return evaluate(info.support.lower), evaluate(info.support.upper)
