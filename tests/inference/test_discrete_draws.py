"""Summed-out discrete latents drawn back jointly (pplc/inference/discrete.py): a hidden
Markov chain's paths by forward filtering-backward sampling, a mixture's assignments from
their exact conditionals, both checked against brute-force enumeration of every value.

How the checks are sized. Given the continuous parameters, the drawn paths are independent
draws (fresh uniforms for each draw), so their counts over the K^T paths are multinomial:
a chi-square test over the paths whose expected count is at least 5, the rest pooled into
one cell, must not reject at the 0.1% level. The mean number of switches of N independent
paths has Monte Carlo standard error sd(S) / sqrt(N), with sd(S) the enumeration's; a
difference of 4 standard errors is failed (a false alarm about once in 16,000 runs, and the
seeds are fixed). Independent per-time draws, the bug this replaces, miss both by far:
on the sticky chain below they switch 1.78 times per path against 0.59 for joint paths,
about 100 standard errors away.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import pplc
from pplc.inference.discrete import draw_categorical, forward_filter_backward_sample
from pplc.passes.marginalize import chain_term

K, T = 3, 6
P = np.array([[0.9, 0.07, 0.03], [0.05, 0.9, 0.05], [0.03, 0.07, 0.9]])   # sticky
P0 = np.array([0.4, 0.3, 0.3])
MU = np.array([-1.0, 0.0, 1.0])
SD = 0.8
Y = np.array([-0.9, -0.2, -0.6, 0.4, 0.9, 0.3])   # ambiguous: each z[t] alone is uncertain

# Every parameter is data: the posterior over paths is exact. `s` is there so that NUTS has
# something to sample; it is independent of the chain.
HMM_KNOWN = """\
data T: int
data y: real[T]
data P: simplex[3, 3]
data p0: simplex[3]
data mu: real[3]
s ~ Normal(0, 1)
z[0] ~ Categorical(p0)
for t in range(1, T):
    z[t] ~ Categorical(P[z[t - 1]])
for t in range(T):
    y[t] ~ Normal(mu[z[t]], 0.8)
"""
HMM_DATA = {"T": T, "y": Y.tolist(), "P": P.tolist(), "p0": P0.tolist(), "mu": MU.tolist()}


def enumerate_paths(log_initial, log_transition, log_emission):
    """Every path of a chain and its posterior probability: log_transition is (K, K) or
    (T - 1, K, K), [.., j, k] = log p(z[t] = k | z[t - 1] = j)."""
    T, K = log_emission.shape
    log_transition = np.broadcast_to(log_transition, (T - 1, K, K))
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    steps = np.arange(T - 1)
    joint = log_initial[paths[:, 0]] + log_emission[np.arange(T), paths].sum(1) \
        + log_transition[steps, paths[:, :-1], paths[:, 1:]].sum(1)
    return paths, np.exp(joint - logsumexp(joint))


def switches(paths):
    return (np.diff(paths, axis=-1) != 0).sum(-1)


def path_codes(paths, K):
    """Each path as one integer, in the order of `enumerate_paths`."""
    return paths @ (K ** np.arange(paths.shape[-1] - 1, -1, -1))


def chi_square(drawn_codes, probabilities):
    """Pearson's statistic over the cells with expected count >= 5, the rest pooled into
    one; (statistic, degrees of freedom, p-value)."""
    n = len(drawn_codes)
    counts = np.bincount(drawn_codes, minlength=len(probabilities))
    expected = n * probabilities
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expected = np.append(expected[big], expected[~big].sum())
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = len(observed) - 1
    return statistic, dof, float(stats.chi2.sf(statistic, dof))


def check_paths(drawn, paths, weights, label):
    """The drawn paths (N, T) follow the enumeration: chi-square and mean switches."""
    n = len(drawn)
    statistic, dof, p_value = chi_square(path_codes(drawn, paths.max() + 1), weights)
    exact = float(weights @ switches(paths))
    sd = float(np.sqrt(weights @ (switches(paths) - exact) ** 2))
    mean = float(switches(drawn).mean())
    print(f"{label}: chi-square {statistic:.1f} on {dof} dof, p = {p_value:.3f}; "
          f"switches per path {mean:.3f} drawn, {exact:.3f} exact (MC se {sd / np.sqrt(n):.3f})")
    assert p_value > 1e-3, (label, statistic, dof, p_value)
    assert abs(mean - exact) < 4 * sd / np.sqrt(n), (label, mean, exact)
    return statistic, p_value, mean, exact


def test_forward_filter_backward_sample_matches_enumeration():
    """Time-varying transitions, a batch of different chains at once (leading axes), K = 2
    and T = 5: each chain's drawn paths follow its own posterior over the 2^5 paths."""
    rng = np.random.default_rng(0)
    K2, T2, copies = 2, 5, 8000
    chains = []
    for _ in range(3):
        initial = np.log(rng.dirichlet(np.ones(K2)))
        transition = np.log(rng.dirichlet(np.ones(K2) * 0.5, size=(T2 - 1, K2)))
        emission = rng.normal(0, 1.5, size=(T2, K2))
        chains.append((initial, transition, emission))
    stacked = [np.stack([np.broadcast_to(c[i], (copies,) + c[i].shape) for c in chains], 1)
               for i in range(3)]   # (copies, 3 chains, ...)
    drawn = forward_filter_backward_sample(*stacked, np.random.default_rng(1))
    assert drawn.shape == (copies, 3, T2) and drawn.dtype == np.int64
    for c, (initial, transition, emission) in enumerate(chains):
        paths, weights = enumerate_paths(initial, transition, emission)
        check_paths(drawn[:, c], paths, weights, f"chain {c}")


def test_one_step_chain_and_extreme_terms():
    """T = 1 draws z[0] from its posterior alone; terms of -1000 (long chains' scale) do not
    underflow the filter."""
    rng = np.random.default_rng(2)
    emission = np.array([[0.0, np.log(3.0)]])
    drawn = forward_filter_backward_sample(np.zeros((4000, 2)), np.zeros((4000, 2, 2)),
                                           np.broadcast_to(emission, (4000, 1, 2)), rng)
    assert drawn.shape == (4000, 1)
    assert abs(drawn.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 4000)
    long = np.full((2, 400, 2), -1000.0)
    long[..., 1] = -1001.0
    drawn = forward_filter_backward_sample(np.zeros((2, 2)), np.log(np.full((2, 2, 2), 0.5)),
                                           long, rng)
    assert drawn.shape == (2, 400) and set(np.unique(drawn)) <= {0, 1}


def test_hmm_paths_drawn_with_nuts_are_joint_posterior_draws():
    """The whole pipeline: NUTS on a model whose chain has known parameters, the chain
    summed out, paths drawn back for every draw; against all 3^6 paths."""
    model = pplc.compile(HMM_KNOWN).condition(HMM_DATA)
    note = model.graph.notes[0].message
    assert "drawn jointly by forward filtering-backward sampling" in note
    assert "smoothed marginal" in note
    posterior = model.sample(chains=2, warmup=200, draws=2500, seed=0)
    z = posterior["z"]
    assert z.shape == (2, 2500, T) and z.dtype == np.int64
    assert not any("@" in name for name in posterior.draws)   # the chain's terms are internal
    paths, weights = enumerate_paths(np.log(P0), np.log(P),
                                     stats.norm(MU, SD).logpdf(Y[:, None]))
    check_paths(z.reshape(-1, T), paths, weights, "HMM through NUTS")
    # z_prob is the smoothed marginal P(z[t] = k | y): every draw the same here.
    marginals = np.stack([(weights[:, None] * (paths == k)).sum(0) for k in range(K)], -1)
    np.testing.assert_allclose(posterior["z_prob"][0, 0], marginals, rtol=1e-9, atol=1e-12)


HMM_LATENT = """\
data T: int
data y: real[T]
data P: real[5, 3, 3]
data p0: simplex[3]
mu: ordered[3] ~ Normal(0, 3)
sigma ~ HalfNormal(1)
z[0] ~ Categorical(p0)
for t in range(1, T):
    z[t] ~ Categorical(P[t - 1, z[t - 1]])
for t in range(T):
    y[t] ~ Normal(mu[z[t]], sigma)
"""


def test_time_varying_chain_with_latent_parameters():
    """Transitions that change with t are recorded per step; with latent mu and sigma,
    the paths drawn at one point of them follow the exact conditional p(z | mu, sigma, y)."""
    P_t = np.stack([P, P.T / P.T.sum(1, keepdims=True), P, np.full((3, 3), 1 / 3), P])
    model = pplc.compile(HMM_LATENT).condition(
        {"T": T, "y": Y.tolist(), "P": P_t.tolist(), "p0": P0.tolist()})
    mu, sigma = np.array([-1.1, 0.1, 0.9]), 0.7
    u = np.asarray(model.unconstrain({"mu": mu, "sigma": sigma}))
    # The transitions read only data: computed once, with the data, one matrix per step.
    # The emissions read mu and sigma: recorded with each draw.
    assert np.shape(model.data[chain_term("z", "transition")]) == (T - 1, K, K)
    assert np.shape(model.constrain(u)[chain_term("z", "emission")]) == (T, K)
    positions = np.broadcast_to(u, (2, 4000, u.size))
    posterior = model._posterior(positions, {}, 0, 0.0, 0.0, {"seed": 3})
    paths, weights = enumerate_paths(np.log(P0), np.log(P_t),
                                     stats.norm(mu, sigma).logpdf(Y[:, None]))
    check_paths(posterior["z"].reshape(-1, T), paths, weights, "time-varying HMM")
    np.testing.assert_allclose(posterior["mu"][0, 0], mu, rtol=1e-12)


MIXTURE = """\
data N: int
data y: real[N]
mu: ordered[3] ~ Normal(0, 5)
w: simplex[3] ~ Dirichlet(ones(3))
for n in range(N):
    z[n] ~ Categorical(w)
    y[n] ~ Normal(mu[z[n]], 1.0)
"""


def test_mixture_assignments_are_joint_draws():
    """A mixture's assignments, drawn each from its own conditional, follow the joint
    conditional p(z[0..N) | mu, w, y) over all 3^5 assignments: each z[n] enters the
    density only through its own terms, so they are independent given the parameters."""
    y = np.array([-2.1, -0.4, 0.3, 1.8, 2.6])
    model = pplc.compile(MIXTURE).condition({"N": 5, "y": y.tolist()})
    assert "independent given the parameters" in model.graph.notes[0].message
    mu, w = np.array([-2.0, 0.0, 2.0]), np.array([0.3, 0.3, 0.4])
    u = np.asarray(model.unconstrain({"mu": mu, "w": w}))
    posterior = model._posterior(np.broadcast_to(u, (2, 4000, u.size)), {}, 0, 0.0, 0.0,
                                 {"seed": 4})
    # The joint conditional by enumeration: every assignment of the 5 points.
    paths = np.array(list(itertools.product(range(3), repeat=5)))
    joint = np.log(w)[paths].sum(1) + stats.norm(mu[paths], 1.0).logpdf(y).sum(1)
    weights = np.exp(joint - logsumexp(joint))
    statistic, dof, p_value = chi_square(path_codes(posterior["z"].reshape(-1, 5), 3), weights)
    print(f"mixture: chi-square {statistic:.1f} on {dof} dof, p = {p_value:.3f}")
    assert p_value > 1e-3


def test_draw_categorical_normalizes_and_never_goes_past_the_last_value():
    rng = np.random.default_rng(5)
    log_probs = np.array([[np.log(0.2), np.log(0.8)], [0.0, -np.inf]]) + 7.0   # unnormalized
    drawn = draw_categorical(np.broadcast_to(log_probs, (20000, 2, 2)), rng)
    assert drawn.shape == (20000, 2) and np.all(drawn[:, 1] == 0)
    assert abs(drawn[:, 0].mean() - 0.8) < 4 * np.sqrt(0.16 / 20000)


def test_a_chain_without_its_terms_is_not_drawn_silently_as_if_joint():
    """Drawn from draws that lack the chain's terms (made by another pplc, say), the paths
    can only come from the per-time marginals: a warning says they are not joint."""
    from pplc.inference.discrete import draw_summed_out

    model = pplc.compile(HMM_KNOWN).condition(HMM_DATA)
    log_probs = np.broadcast_to(np.asarray(model.data["z"]), (1, 50, T, K))
    with pytest.warns(UserWarning, match="'z' is drawn element by element from its "
                                         "marginals, not jointly"):
        draws = draw_summed_out(model.graph, {"z": log_probs}, {}, (1, 50),
                                np.random.default_rng(0))
    assert draws["z"].shape == (1, 50, T) and draws["z_prob"].shape == (1, 50, T, K)
