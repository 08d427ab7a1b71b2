"""The graph IR: one node per variable, plates as attributes, order-free, cycles refused."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from pplc.errors import PplcError
from pplc.frontend.parser import parse
from pplc.ir.build import build_graph
from pplc.ir.graph import Kind
from pplc.ir.printer import format_graph

HIER = """\
data N: int
data G: int
data g: int[N]
data y: real[N]
mu ~ Normal(0, 5)
tau ~ HalfNormal(2)
sigma ~ HalfNormal(2)
for k in range(G):
    alpha[k] ~ Normal(mu, tau)
for n in range(N):
    y[n] ~ Normal(alpha[g[n]], sigma)
"""


def hier_data(n: int, groups: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, size=n)
    return {"N": n, "G": groups, "g": g.tolist(), "y": rng.normal(g, 1.0).tolist()}


def test_one_node_per_variable_and_plates_as_attributes():
    graph = build_graph(parse(HIER))
    assert sorted(graph.dag.nodes) == ["G", "N", "alpha", "g", "mu", "sigma", "tau", "y"]
    alpha = graph["alpha"]
    assert alpha.kind is Kind.LATENT
    assert [p.index for p in alpha.plates] == ["k"]
    assert graph["y"].kind is Kind.OBSERVED
    assert set(graph.parents("y")) == {"N", "alpha", "g", "sigma"}
    assert set(graph.parents("alpha")) == {"G", "mu", "tau"}


def test_graph_size_does_not_grow_with_data():
    small = pplc.compile(HIER).condition(hier_data(10))
    large = pplc.compile(HIER).condition(hier_data(100_000))
    assert small.graph.dag.number_of_nodes() == large.graph.dag.number_of_nodes()
    assert small.graph.dag.number_of_edges() == large.graph.dag.number_of_edges()


def test_lowered_program_size_does_not_grow_with_data():
    """A loop over N becomes one vectorized operation: the jaxpr has as many equations for
    N = 10 as for N = 100000."""
    sizes = []
    for n in (10, 100_000):
        model = pplc.compile(HIER).condition(hier_data(n))
        grad = jax.value_and_grad(model.lowered.log_density)
        jaxpr = jax.make_jaxpr(grad)(jnp.zeros(model.dim), model.data)
        sizes.append(len(jaxpr.jaxpr.eqns))
    assert sizes[0] == sizes[1]


def test_statement_order_does_not_matter():
    """Every permutation of a model's top-level statements has the same graph and density."""
    statements = ["data J: int", "data y: real[J]", "tau ~ HalfCauchy(5)",
                  "theta = mu + tau * z", "z: real[J] ~ Normal(0, 1)", "mu ~ Normal(0, 5)",
                  "y ~ Normal(theta, 2.0)"]
    data = {"J": 3, "y": [1.0, -2.0, 0.5]}
    reference = None
    for permutation in itertools.islice(itertools.permutations(statements), 0, 5040, 97):
        model = pplc.compile("\n".join(permutation) + "\n").condition(data)
        values = {"mu": 0.3, "tau": 1.7, "z": np.array([0.1, -0.4, 2.0])}
        result = (sorted(model.graph.dag.edges), float(model.log_density(values)))
        if reference is None:
            reference = result
        assert result[0] == reference[0]
        assert result[1] == pytest.approx(reference[1], rel=1e-12)


def test_cycle_is_an_error_naming_the_variables():
    with pytest.raises(PplcError) as info:
        pplc.compile("a = b + 1\nb = c * 2\nc = a - 1\nx ~ Normal(a, 1)\n")
    assert "cycle: a -> b -> c -> a" in info.value.render() or \
        "cycle: a -> c -> b -> a" in info.value.render()


def test_recursive_and_mutual_dependence_through_observed_values_is_no_cycle():
    """GARCH: sigma[t] reads y[t - 1] and y ~ Normal(mu, sigma): values of y are data."""
    source = """\
data T: int
data y: real[T]
mu ~ Normal(0, 1)
a ~ Uniform(0, 1)
sigma[0] = 1.0
for t in range(1, T):
    sigma[t] = sqrt(0.1 + a * (y[t - 1] - mu) ** 2 + 0.5 * sigma[t - 1] ** 2)
y ~ Normal(mu, sigma)
"""
    y = np.array([0.1, -0.3, 0.2, 0.5])
    model = pplc.compile(source).condition({"T": 4, "y": y.tolist()})
    assert model.graph["sigma"].recursive
    assert model.graph.order().index("y") < model.graph.order().index("sigma")
    # The recurrence (a lax.scan) gives the same density as a plain loop.
    mu, a = 0.2, 0.6
    sigma = [1.0]
    for t in range(1, 4):
        sigma.append(np.sqrt(0.1 + a * (y[t - 1] - mu) ** 2 + 0.5 * sigma[-1] ** 2))
    sigma = np.array(sigma)
    expected = (-0.5 * mu**2 - 0.5 * np.log(2 * np.pi)            # mu ~ Normal(0, 1)
                + 0.0                                                # a ~ Uniform(0, 1)
                + np.sum(-0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma)
                         - 0.5 * np.log(2 * np.pi)))
    assert float(model.log_density({"mu": mu, "a": a})) == pytest.approx(expected, rel=1e-12)


def test_observed_or_latent_is_decided_by_the_data():
    source = "mu ~ Normal(0, 1)\nx ~ Normal(mu, 1)\n"
    model = pplc.compile(source)
    assert model.condition({"x": 1.0}).graph["x"].kind is Kind.OBSERVED
    prior = model.condition({})
    assert prior.unoptimized_graph["x"].kind is Kind.LATENT and prior.dim == 2


def test_printer_shows_kinds_parents_and_plates():
    text = format_graph(build_graph(parse(HIER, "hier.ppl")))
    assert text.splitlines()[0] == "# hier.ppl: 8 nodes, 8 edges"
    assert "latent        alpha    <- G, mu, tau" in text
    assert "alpha[k] ~ Normal(mu, tau)    for k in range(G)    # line 9" in text
    assert "observed      y: real[N]    <- N, alpha, g, sigma" in text
