"""The language's catalogue: which distributions and functions exist, and their signatures.

This is a fact about the *language* (LANGUAGE.md), not about any backend, so the frontend
checks calls against it and each backend implements the same names. A distribution's
parameters follow NumPyro/SciPy: positional in the order of its first signature, or by
keyword; where it has several signatures (`probs | logits`) exactly one is given.

The support says where a variable with this distribution lives; the JAX backend turns it
into a constraint transform. Bounds name a parameter (`"low"`), are numbers, or are an
`AxisLength` (a static count read off a parameter's shape, never its values).

Support kinds (`SUPPORT_KINDS`); for `event_ndim > 0` the kind describes one whole event:

* "real": unconstrained reals; with event_ndim 1 (MultivariateNormal) a real vector.
* "positive": x >= 0 (the density may vanish at 0, where log_prob is then -inf).
* "unit": the closed interval [0, 1].
* "interval": [lower, upper], either bound possibly None (one-sided).
* "nonnegative_int": counts 0, 1, 2, ...
* "boolean": 0 or 1.
* "int_interval": integers lower..upper inclusive (Binomial: 0..total_count; Categorical:
  0..K-1 and OrderedLogistic: 0..len(cutpoints), their upper bound an `AxisLength`).
* "nonnegative_int_vector": a vector of counts (Multinomial; they sum to total_count).
* "simplex": a vector of nonnegative entries summing to 1 (Dirichlet).
* "corr_cholesky": a lower-triangular matrix with positive diagonal and unit-norm rows,
  the Cholesky factor of a correlation matrix (LKJCholesky).

Event shapes. `DistributionInfo.event_ndim` is the number of trailing axes of a value that
form one draw: 0 for scalar distributions, 1 for Dirichlet, Multinomial and
MultivariateNormal, 2 for LKJCholesky. Categorical and OrderedLogistic have event_ndim 0:
their value is a scalar category even though `probs`/`logits`/`cutpoints` carry a trailing
category axis (which is therefore not a batch axis).

Static parameters (`static_params`) must be Python ints known at compile time, because
they fix a shape: LKJCholesky's `dim`.

Wrappers. `Truncated(DIST, lower=a, upper=b)` has `wrapper=True`: its first argument `dist`
is itself a distribution call (checked against this catalogue), not a value, and either
bound may be left out. Its support follows the inner distribution (`truncated_support`):
"interval" (continuous) or "int_interval" (discrete) between the given bounds, a missing
bound being the inner support's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class AxisLength:
    """A bound read off a parameter's shape: len(last axis of the first of `params` that is
    given) + `offset`. Categorical's upper bound is K - 1 with K = probs.shape[-1]."""

    params: tuple[str, ...]
    offset: int = 0


@dataclass(frozen=True)
class Support:
    """Where a distribution's values live: `kind` in SUPPORT_KINDS, bounds as parameter
    names, numbers or an `AxisLength`."""

    kind: str
    lower: str | float | AxisLength | None = None
    upper: str | float | AxisLength | None = None


REAL = Support("real")
POSITIVE = Support("positive")
UNIT = Support("unit")
NONNEGATIVE_INT = Support("nonnegative_int")
BOOLEAN = Support("boolean")

SUPPORT_KINDS = ("real", "positive", "unit", "interval", "nonnegative_int", "boolean",
                 "int_interval", "nonnegative_int_vector", "simplex", "corr_cholesky")


@dataclass(frozen=True)
class DistributionInfo:
    name: str
    signatures: tuple[tuple[str, ...], ...]  # each one accepted set of parameter names, in order
    support: Support
    discrete: bool = False
    event_ndim: int = 0  # trailing value axes forming one draw (module docstring)
    static_params: tuple[str, ...] = ()  # must be Python ints at compile time
    wrapper: bool = False  # first parameter `dist` is a distribution call (Truncated)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        seen: list[str] = []
        for signature in self.signatures:
            seen.extend(p for p in signature if p not in seen)
        return tuple(seen)


def _dist(name: str, *signatures: tuple[str, ...], support: Support,
          discrete: bool = False, event_ndim: int = 0, static_params: tuple[str, ...] = (),
          wrapper: bool = False) -> DistributionInfo:
    return DistributionInfo(name, tuple(signatures), support, discrete, event_ndim,
                            static_params, wrapper)


DISTRIBUTIONS: dict[str, DistributionInfo] = {d.name: d for d in [
    _dist("Normal", ("loc", "scale"), support=REAL),
    _dist("HalfNormal", ("scale",), support=POSITIVE),
    _dist("HalfCauchy", ("scale",), support=POSITIVE),
    _dist("Cauchy", ("loc", "scale"), support=REAL),
    _dist("StudentT", ("df", "loc", "scale"), support=REAL),
    _dist("LogNormal", ("loc", "scale"), support=POSITIVE),
    _dist("Exponential", ("rate",), support=POSITIVE),
    _dist("Gamma", ("concentration", "rate"), support=POSITIVE),
    _dist("Beta", ("concentration1", "concentration0"), support=UNIT),
    _dist("Uniform", ("low", "high"), support=Support("interval", "low", "high")),
    _dist("Poisson", ("rate",), ("log_rate",), support=NONNEGATIVE_INT, discrete=True),
    _dist("Bernoulli", ("probs",), ("logits",), support=BOOLEAN, discrete=True),
    _dist("Binomial", ("total_count", "probs"), ("total_count", "logits"),
          support=Support("int_interval", 0.0, "total_count"), discrete=True),
    _dist("HalfStudentT", ("df", "scale"), support=POSITIVE),
    _dist("Laplace", ("loc", "scale"), support=REAL),
    _dist("Logistic", ("loc", "scale"), support=REAL),
    _dist("InverseGamma", ("concentration", "scale"), support=POSITIVE),
    _dist("Weibull", ("scale", "concentration"), support=POSITIVE),
    _dist("ChiSquared", ("df",), support=POSITIVE),
    # NumPyro's NegativeBinomial2: mean `mean`, variance mean + mean^2 / concentration.
    _dist("NegativeBinomial", ("mean", "concentration"), support=NONNEGATIVE_INT,
          discrete=True),
    _dist("BetaBinomial", ("concentration1", "concentration0", "total_count"),
          support=Support("int_interval", 0.0, "total_count"), discrete=True),
    # Scalar values 0..K-1; the last axis of probs/logits is the category axis.
    _dist("Categorical", ("probs",), ("logits",),
          support=Support("int_interval", 0.0, AxisLength(("probs", "logits"), -1)),
          discrete=True),
    # Scalar values 0..len(cutpoints); the last axis of cutpoints is not a batch axis.
    _dist("OrderedLogistic", ("predictor", "cutpoints"),
          support=Support("int_interval", 0.0, AxisLength(("cutpoints",), 0)),
          discrete=True),
    _dist("Dirichlet", ("concentration",), support=Support("simplex"), event_ndim=1),
    _dist("Multinomial", ("total_count", "probs"), support=Support("nonnegative_int_vector"),
          discrete=True, event_ndim=1),
    _dist("MultivariateNormal", ("loc", "cov"), ("loc", "scale_tril"), support=REAL,
          event_ndim=1),
    _dist("LKJCholesky", ("dim", "concentration"), support=Support("corr_cholesky"),
          event_ndim=2, static_params=("dim",)),
    # Longest signature first: it gives the positional order (dist, lower, upper).
    _dist("Truncated", ("dist", "lower", "upper"), ("dist", "lower"), ("dist", "upper"),
          ("dist",), support=Support("interval", "lower", "upper"), wrapper=True),
]}


def truncated_support(inner: DistributionInfo) -> Support:
    """The support of `Truncated(inner, lower=..., upper=...)`: between the bounds, an
    "interval" for a continuous `inner`, an "int_interval" for a discrete one. The backend's
    `truncated` fills a bound left out with the inner support's own bound."""
    if inner.wrapper or inner.event_ndim != 0:
        raise ValueError(f"only scalar distributions can be truncated, not {inner.name}")
    return Support("int_interval" if inner.discrete else "interval", "lower", "upper")


def bind_arguments(info: DistributionInfo, num_positional: int,
                   keywords: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Match a call's arguments to one signature of `info`.

    Returns (names of the positional arguments, the signature chosen). Raises ValueError with
    a user-facing message when no signature fits: too many arguments, an unknown keyword,
    a parameter given twice, a missing one, or two alternatives (`probs` and `logits`) at once.
    """
    keywords = list(keywords)
    known = info.parameter_names
    for kw in keywords:
        if kw not in known:
            raise ValueError(f"{info.name} has no parameter '{kw}' "
                             f"(its parameters: {_describe(info)})")
    if len(set(keywords)) != len(keywords):
        dup = next(k for k in keywords if keywords.count(k) > 1)
        raise ValueError(f"parameter '{dup}' of {info.name} is given twice")
    problems = []
    for signature in info.signatures:
        if num_positional > len(signature):
            problems.append(f"{info.name} takes at most {len(signature)} positional "
                            f"arguments ({', '.join(signature)}), {num_positional} given")
            continue
        positional = signature[:num_positional]
        clash = [k for k in keywords if k in positional]
        if clash:
            problems.append(f"parameter '{clash[0]}' of {info.name} is given both by position "
                            "and by keyword")
            continue
        given = set(positional) | set(keywords)
        if given == set(signature):
            return positional, signature
        extra = given - set(signature)
        missing = [p for p in signature if p not in given]
        if extra:
            problems.append(f"{info.name} takes either {_describe(info, ' or ')}, not both")
        else:
            problems.append(f"{info.name} is missing its parameter "
                            + ", ".join(f"'{m}'" for m in missing))
    # Prefer the message of the signature the keywords point at.
    for signature, problem in zip(info.signatures, problems):
        if set(keywords) & (set(signature) - set(info.signatures[0])):
            raise ValueError(problem)
    raise ValueError(problems[0])


def named_arguments(call) -> dict:
    """A (checked) distribution call's argument expressions by parameter name:
    `Normal(0, scale=s)` -> {"loc": 0, "scale": s}."""
    info = DISTRIBUTIONS[call.func]
    positional, _ = bind_arguments(info, len(call.args), [k.name for k in call.keywords])
    named = dict(zip(positional, call.args))
    named.update({k.name: k.value for k in call.keywords})
    return named


def _describe(info: DistributionInfo, joiner: str = " | ") -> str:
    return joiner.join("(" + ", ".join(sig) + ")" for sig in info.signatures)


# Where each support kind and type lies, (lower, upper) with None for unbounded: the one
# table of implicit bounds (`interval` supports and `real(lower=...)` types name theirs).
KIND_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "real": (None, None), "positive": (0.0, None), "unit": (0.0, 1.0),
    "nonnegative_int": (0.0, None), "boolean": (0.0, 1.0),
}


def type_bounds(declared, value_of) -> tuple:
    """The (lower, upper) a declared type allows: its kind's, replaced by the bounds it
    names (`real(lower=0, upper=c)`); `value_of(expr)` evaluates a named bound."""
    lower, upper = KIND_BOUNDS.get(declared.base, (None, None))
    for bound in declared.bounds:
        if bound.name == "lower":
            lower = value_of(bound.value)
        else:
            upper = value_of(bound.value)
    return lower, upper


@dataclass(frozen=True)
class Builtin:
    """A built-in function, as every layer sees it (the one table of them).

    `arity`: (fewest, most or None for any) arguments. `axes`: how the result's axes follow
    the arguments' — "elementwise" (the arguments broadcast), "reduce" (a scalar), "same"
    (the argument's axes, not elementwise: softmax normalizes along the last one), or
    "other" (a rule of its own). `jax`: the JAX function it is, a dotted name that the
    backend resolves and a built module writes as is; a bare name is a helper of
    pplc/runtime/functions.py whose meaning depends on its arguments.
    """

    arity: tuple[int, int | None]
    axes: str
    jax: str


def _unary(axes: str, jax: str) -> Builtin:
    return Builtin((1, 1), axes, jax)


_SPECIAL = "jax.scipy.special."
BUILTINS: dict[str, Builtin] = {
    **{name: _unary("elementwise", "jnp." + name) for name in [
        "exp", "log", "log10", "log1p", "expm1", "sqrt", "abs", "sin", "cos", "tan", "tanh",
        "floor"]},
    "sigmoid": _unary("elementwise", "jax.nn.sigmoid"),
    "logit": _unary("elementwise", _SPECIAL + "logit"),
    "softplus": _unary("elementwise", "jax.nn.softplus"),
    "erf": _unary("elementwise", _SPECIAL + "erf"),
    "lgamma": _unary("elementwise", _SPECIAL + "gammaln"),
    "digamma": _unary("elementwise", _SPECIAL + "digamma"),
    "Phi": _unary("elementwise", _SPECIAL + "ndtr"),
    "pow": Builtin((2, 2), "elementwise", "jnp.power"),
    **{name: _unary("reduce", "jnp." + name) for name in ["sum", "mean", "prod"]},
    "logsumexp": _unary("reduce", _SPECIAL + "logsumexp"),
    "len": _unary("reduce", "length"),
    "softmax": _unary("same", "jax.nn.softmax"),
    "log_softmax": _unary("same", "jax.nn.log_softmax"),
    "cholesky": _unary("same", "jnp.linalg.cholesky"),
    "inv": _unary("same", "jnp.linalg.inv"),
    "cumsum": _unary("other", "jnp.cumsum"),    # of the flattened argument
    "transpose": _unary("other", "jnp.transpose"),
    "diag": _unary("other", "jnp.diag"),
    "det": _unary("other", "jnp.linalg.det"),
    "dot": Builtin((2, 2), "other", "jnp.dot"),
    "solve": Builtin((2, 2), "other", "jnp.linalg.solve"),
    "min": Builtin((1, None), "other", "min"),     # of one array, or elementwise of several
    "max": Builtin((1, None), "other", "max"),
    "zeros": Builtin((1, None), "other", "zeros"),
    "ones": Builtin((1, None), "other", "ones"),
    "concat": Builtin((1, None), "other", "concat"),
    "stack": Builtin((1, None), "other", "stack"),
}
# Names -> (fewest, most) arguments, for the checks.
FUNCTIONS: dict[str, tuple[int, int | None]] = {n: b.arity for n, b in BUILTINS.items()}


def builtins_with(axes: str) -> frozenset[str]:
    return frozenset(n for n, b in BUILTINS.items() if b.axes == axes)


@dataclass(frozen=True)
class ParameterSupport:
    """Where a distribution parameter's values lie: the one table of parameter supports
    (`PARAMETER_SUPPORTS`), checked wherever an argument's value is known before sampling
    (numbers and data).

    `kind`: a key of `KIND_BOUNDS` (its bounds; `open` excludes the bounds themselves, as
    for a scale, which must be > 0; "real" means a finite number), or "extended_real" (any
    number but NaN: a truncation bound, logits), "simplex" (entries >= 0 that sum to 1
    along the last axis), "ordered" (strictly increasing along the last axis), "cov"
    (symmetric positive definite), "lower_cholesky" (lower triangular, positive diagonal).
    `above`: another parameter this one must exceed (Uniform's `high` > `low`).
    """

    kind: str
    open: bool = False
    above: str | None = None


_REAL_PARAM = ParameterSupport("real")
_ANY_PARAM = ParameterSupport("extended_real")
_POSITIVE_PARAM = ParameterSupport("positive", open=True)
_NONNEGATIVE_PARAM = ParameterSupport("positive")  # 0 allowed: a Poisson rate of 0
_PROBABILITY = ParameterSupport("unit")
_COUNT = ParameterSupport("nonnegative_int")
_LOCATION_SCALE = {"loc": _REAL_PARAM, "scale": _POSITIVE_PARAM}

PARAMETER_SUPPORTS: dict[str, dict[str, ParameterSupport]] = {
    "Normal": _LOCATION_SCALE,
    "HalfNormal": {"scale": _POSITIVE_PARAM},
    "HalfCauchy": {"scale": _POSITIVE_PARAM},
    "Cauchy": _LOCATION_SCALE,
    "StudentT": {"df": _POSITIVE_PARAM, **_LOCATION_SCALE},
    "LogNormal": _LOCATION_SCALE,
    "Exponential": {"rate": _POSITIVE_PARAM},
    "Gamma": {"concentration": _POSITIVE_PARAM, "rate": _POSITIVE_PARAM},
    "Beta": {"concentration1": _POSITIVE_PARAM, "concentration0": _POSITIVE_PARAM},
    "Uniform": {"low": _REAL_PARAM, "high": ParameterSupport("real", above="low")},
    "Poisson": {"rate": _NONNEGATIVE_PARAM, "log_rate": _ANY_PARAM},
    "Bernoulli": {"probs": _PROBABILITY, "logits": _ANY_PARAM},
    "Binomial": {"total_count": _COUNT, "probs": _PROBABILITY, "logits": _ANY_PARAM},
    "HalfStudentT": {"df": _POSITIVE_PARAM, "scale": _POSITIVE_PARAM},
    "Laplace": _LOCATION_SCALE,
    "Logistic": _LOCATION_SCALE,
    "InverseGamma": {"concentration": _POSITIVE_PARAM, "scale": _POSITIVE_PARAM},
    "Weibull": {"scale": _POSITIVE_PARAM, "concentration": _POSITIVE_PARAM},
    "ChiSquared": {"df": _POSITIVE_PARAM},
    "NegativeBinomial": {"mean": _NONNEGATIVE_PARAM, "concentration": _POSITIVE_PARAM},
    "BetaBinomial": {"concentration1": _POSITIVE_PARAM, "concentration0": _POSITIVE_PARAM,
                     "total_count": _COUNT},
    "Categorical": {"probs": ParameterSupport("simplex"), "logits": _ANY_PARAM},
    "OrderedLogistic": {"predictor": _REAL_PARAM, "cutpoints": ParameterSupport("ordered")},
    "Dirichlet": {"concentration": _POSITIVE_PARAM},
    "Multinomial": {"total_count": _COUNT, "probs": ParameterSupport("simplex")},
    "MultivariateNormal": {"loc": _REAL_PARAM, "cov": ParameterSupport("cov"),
                           "scale_tril": ParameterSupport("lower_cholesky")},
    "LKJCholesky": {"dim": _COUNT, "concentration": _POSITIVE_PARAM},
    "Truncated": {"lower": _ANY_PARAM, "upper": ParameterSupport("extended_real",
                                                                 above="lower")},
}


def is_discrete(call) -> bool:
    """Whether a distribution call draws integers (looking inside wrappers)."""
    info = DISTRIBUTIONS[call.func]
    if info.wrapper:
        inner = call.args[0] if call.args else next(k.value for k in call.keywords
                                                    if k.name == "dist")
        return is_discrete(inner)
    return info.discrete
