"""The language's catalogue: which distributions and functions exist, and their signatures.

This is a fact about the *language* (LANGUAGE.md), not about any backend, so the frontend
checks calls against it and each backend implements the same names. A distribution's
parameters follow NumPyro/SciPy: positional in the order of its first signature, or by
keyword; where it has several signatures (`probs | logits`) exactly one is given.

The support says where a variable with this distribution lives; the JAX backend turns it
into a constraint transform. Bounds name a parameter (`"low"`) or are numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Support:
    """Where a distribution's values live: `kind` in SUPPORT_KINDS, bounds as parameter names or numbers."""

    kind: str
    lower: str | float | None = None
    upper: str | float | None = None


REAL = Support("real")
POSITIVE = Support("positive")
UNIT = Support("unit")
NONNEGATIVE_INT = Support("nonnegative_int")
BOOLEAN = Support("boolean")

SUPPORT_KINDS = ("real", "positive", "unit", "interval", "nonnegative_int", "boolean",
                 "int_interval")


@dataclass(frozen=True)
class DistributionInfo:
    name: str
    signatures: tuple[tuple[str, ...], ...]  # each one accepted set of parameter names, in order
    support: Support
    discrete: bool = False

    @property
    def parameter_names(self) -> tuple[str, ...]:
        seen: list[str] = []
        for signature in self.signatures:
            seen.extend(p for p in signature if p not in seen)
        return tuple(seen)


def _dist(name: str, *signatures: tuple[str, ...], support: Support,
          discrete: bool = False) -> DistributionInfo:
    return DistributionInfo(name, tuple(signatures), support, discrete)


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
]}


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


def _describe(info: DistributionInfo, joiner: str = " | ") -> str:
    return joiner.join("(" + ", ".join(sig) + ")" for sig in info.signatures)


# Functions: name -> (min arity, max arity or None for any). Elementwise unless noted.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    **{name: (1, 1) for name in [
        "exp", "log", "log10", "log1p", "expm1", "sqrt", "abs", "sin", "cos", "tan", "tanh",
        "sigmoid", "logit", "softplus", "erf", "lgamma", "digamma", "Phi", "floor",
        "sum", "mean", "prod", "logsumexp", "softmax", "log_softmax", "cumsum",
        "len", "transpose", "diag", "cholesky", "inv", "det"]},
    "pow": (2, 2), "dot": (2, 2), "solve": (2, 2),
    "min": (1, None), "max": (1, None),
    "zeros": (1, None), "ones": (1, None),
    "concat": (1, None), "stack": (1, None),
}
