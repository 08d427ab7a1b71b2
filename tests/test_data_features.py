"""Data features: missing entries imputed, index data range-checked, externs bound."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pplc
from pplc.ir.graph import Kind
from pplc.errors import PplcError

NORMAL = """\
data N: int
data y: real[N]
mu ~ Normal(0, 10)
sigma ~ HalfNormal(5)
y ~ Normal(mu, sigma)
"""


def test_missing_entries_of_a_sampled_array_are_latent():
    model = pplc.compile(NORMAL).condition({"N": 5, "y": [1.0, None, 3.0, float("nan"), 2.0]})
    assert model.param_names == ["y[1]", "y[3]", "mu", "sigma"]
    # The log density treats the imputed entries as draws from the same Normal.
    values = {"mu": 0.5, "sigma": 2.0, "y": np.array([0.3, -1.0])}
    full = np.array([1.0, 0.3, 3.0, -1.0, 2.0])
    expected = (stats.norm(0, 10).logpdf(0.5) + stats.halfnorm(scale=5).logpdf(2.0)
                + stats.norm(0.5, 2.0).logpdf(full).sum())
    assert float(model.log_density(values)) == pytest.approx(expected, rel=1e-10)


def test_imputed_values_are_recorded_with_the_draws():
    """With y[1] missing, its posterior predictive is Normal(mu, sigma): its mean is mu's."""
    model = pplc.compile(NORMAL).condition({"N": 4, "y": [1.0, None, 3.0, 2.0]})
    posterior = model.sample(chains=2, warmup=300, draws=500, seed=2)
    summary = posterior.summary()
    assert set(summary) == {"y[1]", "mu", "sigma"}
    assert posterior["y"].shape == (2, 500, 1)
    # E[y1] = E[mu]; MCSE of the difference is below sd(y1) / sqrt(ESS) (ESS >= 200 here).
    ess = summary["y[1]"]["ess_bulk"]
    assert abs(summary["y[1]"]["mean"] - summary["mu"]["mean"]) < 4 * summary["y[1]"]["sd"] / np.sqrt(ess)


def test_missing_entries_elsewhere_are_an_error():
    source = NORMAL.replace("data N: int", "data N: int\ndata w: real[N]").replace(
        "y ~ Normal(mu, sigma)", "y ~ Normal(mu + w, sigma)")
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"N": 2, "w": [1.0, None], "y": [1.0, 2.0]})
    assert "data 'w[1]' is missing (null or NaN), but 'w' has no distribution" in str(info.value)


def test_missing_entry_not_covered_by_a_distribution_is_an_error():
    source = """\
data T: int
data y: real[T]
phi ~ Normal(0, 1)
for t in range(1, T):
    y[t] ~ Normal(phi * y[t - 1], 1)
"""
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"T": 3, "y": [None, 1.0, 2.0]})
    assert "data 'y[0]' is missing, but no '~' statement covers that entry" in str(info.value)


def test_missing_discrete_entries_are_refused():
    source = "data N: int\ndata k: int[N]\nrate ~ Gamma(2, 1)\nk ~ Poisson(rate)\n"
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"N": 3, "k": [1, None, 2]})
    assert "cannot impute discrete values" in str(info.value)


def test_a_scalar_supplied_as_null_is_latent():
    model = pplc.compile("mu ~ Normal(0, 1)\nx ~ Normal(mu, 1)\n").condition({"x": None})
    assert [v.name for v in model.unoptimized_graph.of_kind(Kind.LATENT)] == ["mu", "x"]


HIERARCHICAL = """\
data N: int
data G: int
data g: int[N]
data y: real[N]
alpha: real[G] ~ Normal(0, 1)
for n in range(N):
    y[n] ~ Normal(alpha[g[n]], 1)
"""


@pytest.mark.parametrize("codes,bad", [([1, 2, 1], "= 2"), ([0, -1, 1], "= -1")])
def test_index_data_out_of_range_is_refused_before_compiling(codes, bad):
    with pytest.raises(PplcError) as info:
        pplc.compile(HIERARCHICAL).condition({"N": 3, "G": 2, "g": codes, "y": [0.0, 1.0, 2.0]})
    text = info.value.render()
    assert text.splitlines()[0].endswith(
        f"error: index g[n] {bad} is out of range for axis 0 of 'alpha', which has 2 elements "
        "(valid: 0 to 1)")
    assert ":7:25:" in text and "subtract 1" in text


def test_extern_functions_are_bound_from_python():
    source = "extern def shift(x, a)\ndata y: real[3]\nmu ~ Normal(0, 1)\n" \
             "y ~ Normal(shift(mu, 0.5), 1)\n"
    model = pplc.compile(source, externs={"shift": lambda x, a: x + jnp.sin(a)})
    conditioned = model.condition({"y": [0.1, 0.5, 0.9]})
    y = np.array([0.1, 0.5, 0.9])
    expected = stats.norm(0, 1).logpdf(0.2) + stats.norm(0.2 + np.sin(0.5), 1).logpdf(y).sum()
    assert float(conditioned.log_density({"mu": 0.2})) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"y": [0.1, 0.5, 0.9]})
    assert info.value.render().startswith("<model>:1:1: error: extern function 'shift' is not "
                                          "bound to a Python function")
    with pytest.raises(PplcError) as info:
        pplc.compile(source, externs={"shift": abs, "shfit": abs}).condition({"y": [0, 0, 0]})
    assert "no 'extern def shfit(...)'" in str(info.value)


def test_no_finite_starting_point_names_the_statement():
    """Data that no parameter value can explain: sampling stops before warmup with an error
    at the statement whose term is -inf everywhere."""
    source = "data y: real[3]\nmu ~ Normal(0, 1)\ns ~ HalfNormal(1)\ny ~ Uniform(mu, mu + s)\n"
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"y": [10.0, 20.0, 30.0]}).sample(
            chains=2, warmup=10, draws=10)
    head = info.value.render().splitlines()[0]
    assert head == ("<model>:4:1: error: no finite starting point after 100 tries: this "
                    "statement's term of the log density is -inf at the points tried")
