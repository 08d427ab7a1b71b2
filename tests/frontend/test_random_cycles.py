"""Random variables whose distributions read each other in a cycle (issue 15).

`a ~ Normal(b, 1)` with `b ~ Normal(a, 1)` is no joint distribution: it is refused when
the model is built, with the chain of names. Cycles that are sound element by element
(GARCH, AR, ARMA, a recursion through a deterministic array, reads through a `def`) are
still accepted: only reads that tie each element to the same element or to all of them
count (ir/build.py `_element_reads`).
"""

from __future__ import annotations

import pytest

import pplc
from pplc.errors import PplcError

REFUSED = {
    "two latents": ("alpha ~ Normal(beta, 1)\nbeta ~ Normal(alpha, 1)\n",
                    "alpha -> beta -> alpha"),
    "itself": ("x: real ~ Normal(x, 1)\n", "'x' depends on itself: x -> x"),
    "same element in a loop": ("data T: int\nfor t in range(T):\n    x[t] ~ Normal(y[t], 1)\n"
                               "    y[t] ~ Normal(x[t], 1)\n", "x -> y -> x"),
    "through a reduction": ("data T: int\nfor t in range(T):\n    x[t] ~ Normal(m, 1)\n"
                            "m = 0.5 * sum(x)\n", "x -> m -> x"),
    "through an elementwise function": ("a ~ Normal(exp(b), 1)\nb ~ Normal(a, 1)\n",
                                        "a -> b -> a"),
    "through an index": ("data N: int\nmu ~ Normal(0, 1)\nfor n in range(N):\n"
                         "    z[n] ~ Normal(w[n], 1)\n    w[n] ~ Normal(z[n] + mu, 1)\n",
                         "z -> w -> z"),
    "through a support bound": ("a ~ Normal(b, 1)\nb: real(lower=a) ~ Normal(0, 5)\n",
                                "a -> b -> a"),
    "through a mean of a whole array": (
        "data N: int\ndata G: int\ndata g: int[N]\nfor j in range(G):\n"
        "    alpha[j] ~ Normal(mean(z), 1)\nfor n in range(N):\n"
        "    z[n] ~ Normal(alpha[g[n]], 1)\n", "alpha -> z -> alpha"),
    "a prior reading latent draws": ("data N: int\nmu ~ Normal(mean(y), 10)\n"
                                     "for n in range(N):\n    y[n] ~ Normal(mu, 1)\n",
                                     "mu -> y -> mu"),
}

ACCEPTED = {
    # Observed variables are fixed numbers: a prior that reads the data is a proper density
    # (Stan allows it), and so is an observation's distribution that reads the data.
    "a prior reading the data": "data N: int\ndata y: real[N]\nmu ~ Normal(mean(y), 10)\n"
                                "y ~ Normal(mu, 1)\n",
    "an observation reading the data": "data N: int\ndata y: real[N]\n"
                                       "y ~ Normal(mean(y), 1)\n",
    "a mean read by a piece that is not every piece": """\
data T: int
x[0] ~ Normal(mean(x[1:T]), 1)
for t in range(1, T):
    x[t] ~ Normal(0, 1)
""",
    "garch, vectorized": """\
data T: int
data y: real[T]
a ~ HalfNormal(1)
b ~ Beta(2, 2)
sigma[0] = 1.0
for t in range(1, T):
    sigma[t] = sqrt(a + b * y[t - 1] ** 2)
y ~ Normal(0, sigma)
""",
    "latent ar(1)": """\
data T: int
phi ~ Uniform(-1, 1)
x[0] ~ Normal(0, 1)
for t in range(1, T):
    x[t] ~ Normal(phi * x[t - 1], 1)
""",
    "state and its transform": """\
data T: int
x[0] ~ Normal(0, 1)
for t in range(1, T):
    x[t] ~ Normal(d[t - 1], 1)
for t in range(T):
    d[t] = tanh(x[t])
""",
    "arma(1,1)": """\
data T: int
data y: real[T]
mu ~ Normal(0, 10)
phi ~ Normal(0, 2)
theta ~ Normal(0, 2)
sigma ~ HalfCauchy(2.5)
nu[0] = mu + phi * mu
err[0] = y[0] - nu[0]
for t in range(1, T):
    nu[t] = mu + phi * y[t - 1] + theta * err[t - 1]
    err[t] = y[t] - nu[t]
factor sum(-0.5 * (err / sigma) ** 2 - log(sigma))
""",
    "shift through a def": """\
data T: int
def lag(v):
    return concat([0.0], v[0:len(v) - 1])
x: real[T] ~ Normal(lag(x), 1)
""",
    "a mixture's codes index the means": """\
data N: int
data y: real[N]
w ~ Dirichlet([1.0, 1.0])
mu: ordered[2] ~ Normal(0, 5)
for n in range(N):
    z[n] ~ Categorical(w)
    y[n] ~ Normal(mu[z[n]], 1)
""",
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_cycle_of_random_variables_is_refused_with_its_chain(name):
    source, words = REFUSED[name]
    with pytest.raises(PplcError) as info:
        pplc.compile(source)
    rendered = info.value.render()
    assert words in rendered.splitlines()[0], rendered
    assert "hint: a model is a directed acyclic graph" in rendered, rendered
    assert "Traceback" not in rendered


@pytest.mark.parametrize("name", ACCEPTED)
def test_cycles_that_are_sound_element_by_element_are_accepted(name):
    pplc.compile(ACCEPTED[name])


def test_pieces_that_tie_different_elements_are_no_cycle():
    # x[0] reads y[0], whose own piece reads nothing; y[t] reads x[t], whose piece reads
    # nothing: no element depends on itself.
    pplc.compile("""\
data T: int
x[0] ~ Normal(y[0], 1)
y[0] ~ Normal(0, 1)
for t in range(1, T):
    x[t] ~ Normal(0, 1)
    y[t] ~ Normal(x[t], 1)
""")


def test_one_piece_reading_its_own_elements_is_a_cycle():
    with pytest.raises(PplcError) as info:
        pplc.compile("data T: int\nx[0] ~ Normal(0, 1)\nfor t in range(1, T):\n"
                     "    x[t] ~ Normal(x[t], 1)\n")
    assert "'x' depends on itself: x -> x" in str(info.value)
