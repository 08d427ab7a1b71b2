"""Hints for habits brought from other languages: Stan, R, Python, or a word processor.

A user who writes `sigma ~ normal(0, 1)`, `real<lower=0>`, `target += ...`, `x ^ 2` or
`for i in 1:N` knows what they mean; the diagnostic should name the spelling this language
uses rather than only say what was unexpected. Everything here returns wording (a message or
a hint) and never decides whether something is an error: the parser and the checks do.
"""

from __future__ import annotations

import re
import unicodedata

from pplc.frontend.library import DISTRIBUTIONS

# ---------------------------------------------------------------- characters

# Characters that look like an operator of the language, or stand for one elsewhere.
_CHARACTERS = {
    "^": "powers are written '**', as in Python: x ** 2 (not Stan's or R's x ^ 2)",
    "×": "write '*' for multiplication", "·": "write '*' for multiplication",
    "⋅": "write '*' for multiplication", "÷": "write '/' for division",
    "−": "this is a Unicode minus sign: write '-'", "–": "this is a dash: write '-'",
    "—": "this is a dash: write '-'", "≤": "write '<='", "≥": "write '>='", "≠": "write '!='",
    "\u00a0": "this is a non-breaking space: write an ordinary space",
    "“": "there are no strings in a model", "”": "there are no strings in a model",
    "‘": "there are no strings in a model", "’": "there are no strings in a model",
    "'": "there are no strings in a model", '"': "there are no strings in a model",
    ";": "one statement per line: put the second statement on a line of its own",
    "&": "write 'and'", "|": "write 'or' (Stan's `y | mu, sigma` is `Normal(mu, sigma)`)",
    "!": "write 'not' (or '!=' for 'not equal')",
    "{": "blocks are indented, as in Python, not wrapped in braces",
    ".": "there are no modules or attributes: write exp(x), not np.exp(x) or math.exp(x)",
    "}": "blocks are indented, as in Python, not wrapped in braces",
}

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lam", "μ": "mu", "ν": "nu",
    "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi",
    "χ": "chi", "ψ": "psi", "ω": "omega", "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta",
    "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi", "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}


def character_hint(char: str, word: str = "") -> str | None:
    """A hint for a character the grammar cannot read; `word` is the run of letters it is in
    (for a non-ASCII name such as 'μ0' or 'café')."""
    if char in _CHARACTERS:
        return _CHARACTERS[char]
    if char.isalpha() or char.isdigit() or unicodedata.category(char).startswith("M"):
        ascii_word = "".join(_GREEK.get(c, c) for c in word) if word else ""
        suggestion = f": write '{ascii_word}' for '{word}'" if ascii_word.isascii() and \
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ascii_word) else ""
        return ("names are made of ASCII letters, digits and '_' (Python 3 allows other "
                "letters; this language does not)" + suggestion)
    if char.isspace():
        return f"this is the invisible character U+{ord(char):04X}: write an ordinary space"
    return None


# ---------------------------------------------------------------- distributions

def _squash(name: str) -> str:
    return name.lower().replace("_", "")


# Names other languages give to the distributions (Stan, R's d* functions, scipy.stats),
# where lower-casing and dropping underscores does not already find them.
_FOREIGN = {
    "norm": "Normal", "dnorm": "Normal", "gaussian": "Normal", "doubleexponential": "Laplace",
    "dlnorm": "LogNormal", "lnorm": "LogNormal", "dexp": "Exponential", "expon": "Exponential",
    "dgamma": "Gamma", "invgamma": "InverseGamma", "dbeta": "Beta", "dunif": "Uniform",
    "dweibull": "Weibull", "chisquare": "ChiSquared", "chi2": "ChiSquared",
    "dchisq": "ChiSquared", "dpois": "Poisson", "dbinom": "Binomial", "dbern": "Bernoulli",
    "negbinomial2": "NegativeBinomial", "negbinomial": "NegativeBinomial",
    "dnbinom": "NegativeBinomial", "nbinom": "NegativeBinomial", "ddirch": "Dirichlet",
    "dmultinom": "Multinomial", "multinormal": "MultivariateNormal",
    "dmnorm": "MultivariateNormal", "mvnormal": "MultivariateNormal",
    "lkjcorrcholesky": "LKJCholesky", "dcat": "Categorical",
}
# Stan's alternative parameterizations, spelled as a call of the language.
_FOREIGN_CALLS = {
    "poissonlog": "Poisson(log_rate=...)", "bernoullilogit": "Bernoulli(logits=...)",
    "binomiallogit": "Binomial(total_count, logits=...)",
    "categoricallogit": "Categorical(logits=...)",
    "multinormalcholesky": "MultivariateNormal(loc, scale_tril=...)",
}
_BY_SQUASHED = {_squash(name): name for name in DISTRIBUTIONS}


_STAN_SUFFIX = re.compile(r"_(lpdf|lpmf|lupdf|lupmf|rng|lcdf|lccdf|cdf)$")


def distribution_name(name: str) -> str | None:
    """The language's spelling of a distribution written as another language spells it:
    'normal' -> 'Normal', 'student_t' -> 'StudentT', 'dnorm' -> 'Normal',
    'bernoulli_logit' -> 'Bernoulli(logits=...)'; None when it is not one."""
    if name in DISTRIBUTIONS:
        return None
    squashed = _squash(_STAN_SUFFIX.sub("", name))
    return _BY_SQUASHED.get(squashed) or _FOREIGN.get(squashed) or _FOREIGN_CALLS.get(squashed)


def distribution_hint(name: str) -> str | None:
    """'did you mean 'Normal'? ...' for a distribution name in another language's spelling."""
    found = distribution_name(name)
    if found is None:
        return None
    if _STAN_SUFFIX.search(name):
        call = found if "(" in found else f"{found}(...)"
        return (f"Stan's {name}(y | ...) is written `y ~ {call}` here: the `~` adds the "
                "same term to the log density")
    if "(" in found:
        return f"did you mean {found}? (Stan's {name})"
    if _squash(name) == _squash(found):
        return f"did you mean '{found}'? distribution names are capitalized, as in NumPyro"
    return f"did you mean '{found}'? distributions have NumPyro's names here"


# ---------------------------------------------------------------- types

# Stan's and Python's type names -> this language's.
_TYPES = {
    "vector": "real[N]", "row_vector": "real[N]", "matrix": "real[N, K]", "array": "real[N]",
    "float": "real", "double": "real", "integer": "int", "bool": "int",
    "cov_matrix": "cov[K]", "corr_matrix": "corr_cholesky[K] (with LKJCholesky)",
    "cholesky_factor_corr": "corr_cholesky[K]", "probability": "unit",
    "positive_real": "positive",
}


def type_hint(name: str) -> str | None:
    """'write real[N] ...' for a type name of Stan or Python."""
    if name in _TYPES:
        return f"write {_TYPES[name]}: an array's shape follows its element type in brackets"
    return None


def angle_bounds(base: str, bounds: str, rest: str) -> tuple[str, str]:
    """A message and a hint for Stan's `real<lower=0>` (`rest` is what follows the `>`,
    such as a shape `[N]`)."""
    element = base if base in ("real", "int") else "real"  # vector<lower=0>[N] is real
    shape = rest if rest.startswith("[") else ""
    bounds = re.sub(r"\s*=\s*", "=", bounds.strip())
    written = f"{element}({bounds}){shape}"
    message = f"bounds are written in parentheses, {written}, not <...>"
    named = {("lower=0",): "positive", ("lower=0", "upper=1"): "unit"}.get(
        tuple(b.strip() for b in bounds.split(",")))
    hint = f"write {written}"
    if named and element == "real":
        hint += f", or the type {named}{shape}"
    return message, hint


# ---------------------------------------------------------------- loops

def loop_hint(var: str, iterable: str) -> str:
    """How to write `for i in 1:N` (or `for i in N`, `for i in x`) as a loop over range."""
    iterable = iterable.strip()
    one_based = re.fullmatch(r"1\s*:\s*(.+)", iterable)
    interval = re.fullmatch(r"(.+?)\s*:\s*(.+)", iterable)
    if one_based:
        return (f"write `for {var} in range({one_based[1]}):`; indices are 0-based, so "
                f"range({one_based[1]}) runs {var} = 0 .. {one_based[1]} - 1")
    if interval:
        return (f"write `for {var} in range({interval[1]}, {interval[2]} + 1):` for the "
                f"same numbers (indices are 0-based)")
    return (f"write `for {var} in range(N):`, or `for {var} in range(a, b):`, and index "
            f"the array with {var}")
