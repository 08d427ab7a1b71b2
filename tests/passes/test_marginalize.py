"""The marginalization pass: discrete latents summed out, checked by brute-force enumeration."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import pplc
from pplc.errors import PplcError
from pplc.ir.graph import Kind
from pplc.ir.printer import format_graph

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"

MIXTURE = """\
data N: int
data y: real[N]
mu: ordered[2] ~ Normal(0, 5)
w ~ Beta(2, 2)
for n in range(N):
    z[n] ~ Bernoulli(w)
    y[n] ~ Normal(mu[z[n]], 1.0)
"""
Y = [-1.2, 0.3, 2.9, 3.4]


def test_the_graph_after_the_pass():
    model = pplc.compile(MIXTURE).condition({"N": 4, "y": Y})
    graph = model.graph
    assert graph["z"].kind is Kind.DETERMINISTIC and graph["z"].marginalized
    assert graph["y"].kind is Kind.DATA  # its only piece moved into the factor
    assert graph["marginal@z"].kind is Kind.FACTOR
    text = format_graph(graph)
    assert "factor logsumexp([logp(0 | Bernoulli(w)) + logp(y[n] | Normal(mu[0], 1.0)), " \
           "logp(1 | Bernoulli(w)) + logp(y[n] | Normal(mu[1], 1.0))])    for n in range(N)" \
        in text
    assert model.param_names == ["mu[0]", "mu[1]", "w"]
    assert "z: summed out over its 2 values with y" in graph.notes[0].message


def test_marginal_density_equals_brute_force_enumeration():
    """log p(y, mu, w) = log sum over all 2^N assignments of p(y, z, mu, w)."""
    model = pplc.compile(MIXTURE).condition({"N": 4, "y": Y})
    y = np.array(Y)
    rng = np.random.default_rng(0)
    for _ in range(4):
        mu = np.sort(rng.normal(0, 2, size=2))
        w = rng.uniform(0.1, 0.9)
        prior = stats.norm(0, 5).logpdf(mu).sum() + stats.beta(2, 2).logpdf(w)
        joint = []
        for z in itertools.product([0, 1], repeat=4):
            z = np.array(z)
            joint.append(np.sum(stats.bernoulli(w).logpmf(z))
                         + np.sum(stats.norm(mu[z], 1.0).logpdf(y)))
        expected = prior + logsumexp(joint)
        got = float(model.log_density({"mu": mu, "w": w}))
        assert got == pytest.approx(expected, rel=1e-12)
        # The recorded conditional: P(z[n] = 1 | y, mu, w), exact by Bayes' rule.
        u = model.unconstrain({"mu": mu, "w": w})
        log_probs = np.asarray(model.constrain(u)["z"])
        one = w * stats.norm(mu[1], 1).pdf(y)
        exact = one / (one + (1 - w) * stats.norm(mu[0], 1).pdf(y))
        np.testing.assert_allclose(np.exp(log_probs[:, 1]), exact, rtol=1e-10)


def test_categorical_with_three_components():
    source = """\
data N: int
data y: real[N]
data p: simplex[3]
mu: ordered[3] ~ Normal(0, 5)
for n in range(N):
    z[n] ~ Categorical(p)
    y[n] ~ Normal(mu[z[n]], 0.5)
"""
    p = np.array([0.2, 0.5, 0.3])
    model = pplc.compile(source).condition({"N": 3, "y": [-2.0, 0.1, 2.2], "p": p.tolist()})
    mu = np.array([-2.0, 0.0, 2.0])
    y = np.array([-2.0, 0.1, 2.2])
    per_point = logsumexp(np.log(p)[None, :] + stats.norm(mu[None, :], 0.5).logpdf(y[:, None]),
                          axis=1)
    expected = stats.norm(0, 5).logpdf(mu).sum() + per_point.sum()
    assert float(model.log_density({"mu": mu})) == pytest.approx(expected, rel=1e-12)


def test_matches_the_hand_written_conformance_mixture():
    folder = CONFORMANCE / "low_dim_gauss_mix-low_dim_gauss_mix"
    if not folder.exists():
        pytest.skip(f"{CONFORMANCE} is absent")
    marginalized = pplc.compile(folder / "model_marginalized.ppl").condition(folder / "data.json")
    literal = pplc.compile(folder / "model.ppl").condition(folder / "data.json")
    assert marginalized.param_names == literal.param_names
    rng = np.random.default_rng(1)
    for _ in range(3):
        u = rng.normal(size=literal.dim)
        assert float(marginalized.unconstrained_log_density(u)) == pytest.approx(
            float(literal.unconstrained_log_density(u)), rel=1e-12)


def test_infinite_support_latent_is_a_compile_error_at_its_line():
    with pytest.raises(PplcError) as info:
        pplc.compile("rate ~ Gamma(2, 1)\nk ~ Poisson(rate)\nx ~ Normal(k, 1)\n") \
            .condition({"x": 1.0})
    head = info.value.render().splitlines()[0]
    assert head.startswith("<model>:2:1: error: 'k' is a latent discrete variable with "
                           "infinite support (Poisson)")


def _hmm_brute_force(y, mu, log_p0, log_P, sd):
    """Sum over all K^T paths, and the exact marginals P(z_t = k | y)."""
    K, T = len(log_p0), len(y)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    joint = np.array([log_p0[z[0]] + sum(log_P[z[t - 1], z[t]] for t in range(1, T))
                      + stats.norm(mu[z], sd).logpdf(y).sum() for z in paths])
    weights = np.exp(joint - logsumexp(joint))
    marginals = np.stack([(weights[:, None] * (paths == k)).sum(0) for k in range(K)], -1)
    return logsumexp(joint), marginals


def test_hidden_markov_chain_by_the_forward_algorithm():
    """z[t] ~ Categorical(P[z[t - 1]]): the forward algorithm's marginal likelihood and the
    forward-backward marginals equal brute-force enumeration over all 3^6 paths."""
    source = """\
data T: int
data y: real[T]
data P: simplex[3, 3]
data p0: simplex[3]
mu: ordered[3] ~ Normal(0, 3)
z[0] ~ Categorical(p0)
for t in range(1, T):
    z[t] ~ Categorical(P[z[t - 1]])
for t in range(T):
    y[t] ~ Normal(mu[z[t]], 0.7)
"""
    P = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    p0 = np.array([0.5, 0.3, 0.2])
    y = np.array([-1.5, -1.1, 0.2, 0.4, 2.1, 1.7])
    model = pplc.compile(source).condition({"T": 6, "y": y.tolist(), "P": P.tolist(),
                                            "p0": p0.tolist()})
    assert "a Markov chain over 3 states" in model.graph.notes[0].message
    mu = np.array([-1.2, 0.3, 1.9])
    log_lik, marginals = _hmm_brute_force(y, mu, np.log(p0), np.log(P), 0.7)
    expected = stats.norm(0, 3).logpdf(mu).sum() + log_lik
    assert float(model.log_density({"mu": mu})) == pytest.approx(expected, rel=1e-12)
    u = model.unconstrain({"mu": mu})
    np.testing.assert_allclose(np.exp(np.asarray(model.constrain(u)["z"])), marginals,
                               rtol=1e-9, atol=1e-12)


def test_unsupported_shapes_say_why():
    """A discrete latent read other than element by element is not summed out: the error
    says why, at the statement."""
    source = """\
data N: int
data y: real[N]
for n in range(N):
    z[n] ~ Bernoulli(0.5)
for n in range(N):
    y[n] ~ Normal(sum(z), 1)
"""
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"N": 3, "y": [0.1, 0.9, 1.2]})
    assert "cannot be summed out: 'y' reads it inside different loops" in info.value.render() \
        or "reads it other than element by element" in info.value.render()


@pytest.mark.slow
def test_zero_inflated_poisson_fits():
    """A Poisson process switched off with probability 1 - pi: both true values inside
    their central 99% intervals (posteriors near-Gaussian here; two checks at 99% keep the
    family's miss rate below 2%)."""
    source = """\
data N: int
data y: int[N]
pi ~ Beta(1, 1)
lam ~ Gamma(2, 0.5)
for n in range(N):
    z[n] ~ Bernoulli(pi)
    y[n] ~ Poisson(lam * z[n])
"""
    rng = np.random.default_rng(7)
    z = rng.uniform(size=300) < 0.7
    y = np.where(z, rng.poisson(3.0, size=300), 0)
    posterior = pplc.compile(source).condition({"N": 300, "y": y.tolist()}) \
        .sample(chains=4, warmup=500, draws=500, seed=0)
    summary = posterior.summary()
    for name, truth in (("pi", 0.7), ("lam", 3.0)):
        assert abs(summary[name]["mean"] - truth) < 2.576 * summary[name]["sd"], summary[name]
    # Every observed non-zero count came from the Poisson process: its z is 1 in every draw.
    assert np.all(posterior["z"][..., y > 0] == 1)
    assert posterior.divergences == 0


@pytest.mark.slow
def test_marginalized_mixture_reproduces_the_reference_posterior():
    folder = CONFORMANCE / "low_dim_gauss_mix-low_dim_gauss_mix"
    if not folder.exists():
        pytest.skip(f"{CONFORMANCE} is absent")
    import json
    reference = json.loads((folder / "reference.json").read_text())["parameters"]
    posterior = pplc.compile(folder / "model_marginalized.ppl").condition(folder / "data.json") \
        .sample(chains=4, warmup=500, draws=1000, seed=0)
    summary = posterior.summary()
    for name, ref in reference.items():
        # The acceptance bounds of the conformance suite: means within 0.15 sd, sds 15%.
        assert abs(summary[name]["mean"] - ref["mean"]) < 0.15 * ref["sd"], name
        assert abs(summary[name]["sd"] - ref["sd"]) < 0.15 * ref["sd"], name
    assert posterior["z"].shape == (4, 1000, 1000) and posterior["z_prob"].shape[-1] == 2


# ------------------------------------------------------------ the number of values from shapes

HMM_STACKED = """\
data N: int
data K: int
data y: real[N]
theta1{T} ~ Dirichlet(ones(K))
theta2{T} ~ Dirichlet(ones(K))
theta = stack([theta1, theta2])
mu: ordered[K] ~ Normal(0, 5)
z[0] ~ Categorical(ones(K) / K)
for t in range(1, N):
    z[t] ~ Categorical(theta[z[t - 1]])
for t in range(N):
    y[t] ~ Normal(mu[z[t]], 1)
"""


@pytest.mark.parametrize("typed", [False, True], ids=["untyped", "simplex-typed"])
def test_hmm_with_states_from_data_equals_brute_force(typed):
    """The number of states comes from the shape analysis (K in the data, through
    `stack` and `theta[z[t - 1]]`), not from a guess at the text: the forward algorithm's
    density equals enumeration of all 2^6 paths."""
    source = HMM_STACKED.replace("{T}", ": simplex[K]" if typed else "")
    y = np.array([-1.0, -1.2, 2.0, 2.1, 1.9, -1.0])
    model = pplc.compile(source).condition({"N": 6, "K": 2, "y": y.tolist()})
    assert "a Markov chain over 2 states" in model.graph.notes[0].message
    rng = np.random.default_rng(5)
    for _ in range(3):
        P = rng.dirichlet([1, 1], size=2)
        mu = np.sort(rng.normal(0, 2, 2))
        log_lik, _ = _hmm_brute_force(y, mu, np.log([0.5, 0.5]), np.log(P), 1.0)
        prior = sum(stats.dirichlet([1, 1]).logpdf(p) for p in P) \
            + stats.norm(0, 5).logpdf(mu).sum()
        value = model.log_density({"theta1": P[0], "theta2": P[1], "mu": mu})
        assert float(value) == pytest.approx(prior + log_lik, rel=1e-10)


def test_mixture_weights_without_a_type_take_their_size_from_the_data():
    source = """\
data N: int
data K: int
data y: real[N]
w ~ Dirichlet(ones(K))
mu: ordered[K] ~ Normal(0, 5)
for n in range(N):
    z[n] ~ Categorical(w)
    y[n] ~ Normal(mu[z[n]], 0.5)
"""
    y = np.array([-2.0, 0.1, 2.2, 1.9])
    model = pplc.compile(source).condition({"N": 4, "K": 3, "y": y.tolist()})
    assert "summed out over its 3 values" in model.graph.notes[0].message
    w, mu = np.array([0.2, 0.5, 0.3]), np.array([-2.0, 0.0, 2.0])
    per_point = logsumexp(np.log(w)[None, :] + stats.norm(mu[None, :], 0.5).logpdf(y[:, None]),
                          axis=1)
    expected = stats.dirichlet(np.ones(3)).logpdf(w) + stats.norm(0, 5).logpdf(mu).sum() \
        + per_point.sum()
    assert float(model.log_density({"w": w, "mu": mu})) == pytest.approx(expected, rel=1e-10)


def test_the_pass_reads_the_number_of_values_from_the_shaped_graph():
    """The pass on a graph alone, no backend: it sums over as many values as the graph
    records, and without shapes bound it says the model is not conditioned."""
    from pplc.frontend.parser import parse
    from pplc.ir.build import build_graph
    from pplc.passes.marginalize import marginalize

    source = """\
data N: int
data y: real[N]
data p: real[N, 4]
for n in range(N):
    z[n] ~ Categorical(p[n])
    y[n] ~ Normal(z[n], 1)
"""
    graph = build_graph(parse(source), {"N", "y", "p"})
    unshaped = marginalize(graph)
    assert unshaped["z"].kind is Kind.LATENT
    assert "not conditioned on data" in unshaped.notes[0].message
    shaped = graph.conditioned({"N": 2}, {"N": (), "y": (2,), "p": (2, 4), "z": (2,)},
                               {}, {"z": 4})
    assert graph.states == {} and shaped.states == {"z": 4}   # a new graph
    summed = marginalize(shaped)
    assert summed["z"].marginalized and "summed out over its 4 values" in summed.notes[0].message


# ------------------------------------------------------------ several discrete latents

def test_two_latents_explaining_statements_of_one_variable():
    """z1 explains y[0..2), z2 explains y[2..4): each sum folds its own statement of y, and
    neither statement is left behind as an observation (the density is brute force's)."""
    source = """\
data y: real[4]
mu: real[2] ~ Normal(0, 3)
nu: real[2] ~ Normal(0, 3)
for n in range(2):
    z1[n] ~ Bernoulli(0.5)
    y[n] ~ Normal(mu[z1[n]], 1.0)
for m in range(2):
    z2[m] ~ Bernoulli(0.3)
    y[m + 2] ~ Normal(nu[z2[m]], 1.0)
"""
    y = np.array([0.1, 1.0, -2.0, 0.5])
    model = pplc.compile(source).condition({"y": y.tolist()})
    assert model.graph["z1"].marginalized and model.graph["z2"].marginalized
    assert model.graph["y"].kind is Kind.DATA
    mu, nu = np.array([0.0, 1.0]), np.array([-1.0, 0.5])
    expected = stats.norm(0, 3).logpdf(mu).sum() + stats.norm(0, 3).logpdf(nu).sum()
    for n in range(2):
        expected += logsumexp(np.log([0.5, 0.5]) + stats.norm(mu, 1).logpdf(y[n]))
        expected += logsumexp(np.log([0.7, 0.3]) + stats.norm(nu, 1).logpdf(y[n + 2]))
    assert float(model.log_density({"mu": mu, "nu": nu})) == pytest.approx(expected, rel=1e-12)


def test_one_statement_reading_two_discrete_latents_is_refused_with_the_reason():
    """Summing z1 and z2 out one at a time would make each sum read the other as a value;
    both are refused, each with the other's name, at its own statement."""
    source = """\
data N: int
data y: real[N]
mu: real[2] ~ Normal(0, 3)
nu: real[2] ~ Normal(0, 3)
for n in range(N):
    z1[n] ~ Bernoulli(0.5)
    z2[n] ~ Bernoulli(0.5)
    y[n] ~ Normal(mu[z1[n]] + nu[z2[n]], 1.0)
"""
    with pytest.raises(PplcError) as info:
        pplc.compile(source).condition({"N": 3, "y": [0.1, 1.0, -2.0]})
    text = info.value.render()
    assert "'z1' is a latent discrete variable (Bernoulli) that cannot be summed out: " \
           "'y' also reads 'z2'" in text
    assert "'y' also reads 'z1'" in text
