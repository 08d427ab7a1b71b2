"""Predictive draws and pointwise log-likelihood of observations that a summed-out discrete
latent took into its sum (issue 13 item 4): a mixture's and a hidden Markov model's `y`
get a posterior_predictive and a log_likelihood group, against closed forms and brute-force
enumeration, and arviz.loo / arviz.compare run on them."""

from __future__ import annotations

import itertools
import warnings

import arviz as az
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import pplc
from pplc.inference.summed_out_likelihood import chain_leave_one_out

MIXTURE = """\
data N: int
data y: real[N]
mu: ordered[2] ~ Normal(0, 5)
w: simplex[2] ~ Dirichlet(ones(2))
for n in range(N):
    z[n] ~ Categorical(w)
    y[n] ~ Normal(mu[z[n]], 1.0)
"""

HMM = """\
data T: int
data y: real[T]
mu: ordered[2] ~ Normal(0, 3)
sigma ~ HalfNormal(1)
stay ~ Beta(5, 1)
P = [[stay, 1 - stay], [1 - stay, stay]]
z[0] ~ Categorical([0.5, 0.5])
for t in range(1, T):
    z[t] ~ Categorical(P[z[t - 1]])
for t in range(T):
    y[t] ~ Normal(mu[z[t]], sigma)
"""


def _posterior_at(model, params, draws=300):
    """A 'posterior' whose every draw is one point (no sampling: the values are known)."""
    u = np.asarray(model.unconstrain(params))
    return model._posterior(np.broadcast_to(u, (2, draws, u.size)), {}, 0, 0.0, 0.0,
                            {"seed": 5})


def _predict_without_leaving_out(model, posterior, seed):
    """predictive(), which must not warn that it left an observation out (the log_prior
    group does warn: a summed-out latent's prior is in no single latent's prior)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predictive(posterior, seed=seed)
    said = [str(w.message) for w in caught]
    assert not [m for m in said if "predictive" in m or "pointwise" in m], said


def test_leave_one_out_of_a_chain_matches_enumeration_of_every_path():
    """log p(y[t] | y[-t]) = log p(y) - log p(y[-t]), each summed over all K^T paths:
    for K = 3, T = 5 with time-varying transitions and a batch of two draws."""
    rng = np.random.default_rng(1)
    K, T = 3, 5
    initial = np.log(rng.dirichlet(np.ones(K), size=2))
    transition = np.log(rng.dirichlet(np.ones(K), size=(2, T - 1, K)))
    emission = rng.normal(size=(2, T, K)) * 2
    got = chain_leave_one_out(initial, transition, emission)
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    for d in range(2):
        prior = initial[d][paths[:, 0]] + transition[d][np.arange(T - 1), paths[:, :-1],
                                                        paths[:, 1:]].sum(1)
        per_t = emission[d][np.arange(T), paths]                      # (paths, T)
        log_p = logsumexp(prior + per_t.sum(1))
        for t in range(T):
            without = logsumexp(prior + np.delete(per_t, t, axis=1).sum(1))
            np.testing.assert_allclose(got[d, t], log_p - without, rtol=1e-12)
    # A homogeneous chain's (K, K) transition gives the same as the matrix repeated.
    same = chain_leave_one_out(initial, transition[:, 0], emission)
    repeated = chain_leave_one_out(initial, np.repeat(transition[:, :1], T - 1, axis=1),
                                   emission)
    np.testing.assert_allclose(same, repeated, rtol=1e-12)


MIXTURE_Y = np.array([-2.1, -0.4, 0.3, 1.8, 2.6, 3.0])


@pytest.fixture(scope="module")
def mixture():
    """The mixture and its conditioned form on MIXTURE_Y, shared by the two mixture tests:
    the programs both run (constraining draws, predictive draws, log-likelihoods) are
    compiled once, not once a test (issue 16 item 7)."""
    model = pplc.compile(MIXTURE)
    return model, model.condition({"N": MIXTURE_Y.size, "y": MIXTURE_Y.tolist()})


def test_a_mixture_gets_its_marginal_pointwise_likelihood_and_replicates(mixture):
    y = MIXTURE_Y
    _, model = mixture
    mu, w = np.array([-1.5, 2.0]), np.array([0.35, 0.65])
    posterior = _posterior_at(model, {"mu": mu, "w": w}, draws=2000)
    _predict_without_leaving_out(model, posterior, seed=3)
    # log p(y[n] | mu, w) = log sum_k w_k N(y[n] | mu_k, 1), at every draw.
    exact = logsumexp(np.log(w) + stats.norm(mu, 1.0).logpdf(y[:, None]), axis=1)
    assert posterior.log_likelihood["y"].shape == (2, 2000, y.size)
    np.testing.assert_allclose(posterior.log_likelihood["y"][1, 7], exact, rtol=1e-12)
    # Replicates given each draw's z: y_rep[n] ~ Normal(mu[z[n]], 1). Their mean per n is
    # sum_k P(z[n] = k | y) mu_k; 4000 replicates of sd <= ~2.0 give a standard error of
    # <= 0.032, so 0.15 is > 4.5 se.
    replicates = posterior.posterior_predictive["y"]
    assert replicates.shape == (2, 2000, y.size)
    conditional = np.exp(np.log(w) + stats.norm(mu, 1.0).logpdf(y[:, None]) - exact[:, None])
    np.testing.assert_allclose(replicates.mean(axis=(0, 1)), conditional @ mu, atol=0.15)
    # The replicate follows its own draw's z (not the mixture's marginal): the residual
    # y_rep - mu[z] is N(0, 1) (sd within 5% over 12000 values: se of the sd ~0.65%).
    residual = replicates - mu[posterior["z"]]
    assert abs(residual.std() - 1.0) < 0.05
    idata = posterior.to_arviz()
    assert "y" in idata.log_likelihood and "y" in idata.posterior_predictive
    assert "y" in idata.observed_data


def test_a_hidden_markov_model_gets_leave_one_out_terms_and_arviz_compares_it():
    rng = np.random.default_rng(0)
    T = 30
    z = np.cumsum(rng.uniform(size=T) < 0.1) % 2
    y = np.where(z == 1, 2.0, -1.0) + rng.normal(size=T) * 0.7
    model = pplc.compile(HMM).condition({"T": T, "y": y.tolist()})
    # metric="diag" (both runs): the metric is not the point, and the diagonal program
    # compiles faster than the low-rank one auto picks for these models (issue 16 item 7)
    posterior = model.sample(chains=2, warmup=300, draws=300, seed=1, progress=False,
                             metric="diag")
    _predict_without_leaving_out(model, posterior, seed=2)
    log_lik = posterior.log_likelihood["y"]
    assert log_lik.shape == (2, 300, T) and np.isfinite(log_lik).all()
    assert posterior.posterior_predictive["y"].shape == (2, 300, T)
    # (The terms themselves are checked against enumeration of every path below.)
    idata = posterior.to_arviz()
    loo = az.loo(idata, var_name="y")
    assert np.isfinite(loo.elpd_loo)
    # A worse model (one state: a plain normal) must lose the comparison.
    plain = pplc.compile("data T: int\ndata y: real[T]\nm ~ Normal(0, 3)\ns ~ HalfNormal(1)\n"
                         "for t in range(T):\n    y[t] ~ Normal(m, s)\n").condition(
        {"T": T, "y": y.tolist()})
    fit = plain.sample(chains=2, warmup=300, draws=300, seed=1, progress=False, metric="diag")
    plain.predictive(fit)
    ranking = az.compare({"hmm": idata, "plain": fit.to_arviz()}, var_name="y")
    assert ranking.index[0] == "hmm"


def test_hmm_pointwise_terms_at_a_point_match_enumeration():
    """At known parameters, T = 6: every pointwise term against all 2^6 paths."""
    y = np.array([-0.9, -1.2, 2.1, 1.7, -0.3, 2.2])
    T = y.size
    model = pplc.compile(HMM).condition({"T": T, "y": y.tolist()})
    mu, sigma, stay = np.array([-1.0, 2.0]), 0.8, 0.85
    posterior = _posterior_at(model, {"mu": mu, "sigma": sigma, "stay": stay}, draws=50)
    model.predictive(posterior, seed=0)
    paths = np.array(list(itertools.product(range(2), repeat=T)))
    P = np.log([[stay, 1 - stay], [1 - stay, stay]])
    prior = np.log(0.5) + P[paths[:, :-1], paths[:, 1:]].sum(1)
    per_t = stats.norm(mu[paths], sigma).logpdf(y)
    log_p = logsumexp(prior + per_t.sum(1))
    exact = [log_p - logsumexp(prior + np.delete(per_t, t, axis=1).sum(1)) for t in range(T)]
    np.testing.assert_allclose(posterior.log_likelihood["y"][0, 3], exact, rtol=1e-10)


def test_a_mixture_predicts_new_units_from_the_mixture_and_a_chain_is_refused(mixture):
    """At new inputs (y left out), each new unit's assignment is drawn from its
    distribution given the draw: y_new ~ sum_k w_k Normal(mu_k, 1)."""
    model, fitted = mixture
    mu, w = np.array([-1.5, 2.0]), np.array([0.35, 0.65])
    posterior = _posterior_at(fitted, {"mu": mu, "w": w}, draws=2000)
    new = model.condition({"N": 4}).posterior_predictive(posterior, seed=1)["y"]
    assert new.shape == (2, 2000, 4)
    # 16000 values of a mixture of sd 1.95: the mean's se is 0.015 (0.08 is > 5 se); the
    # fraction below 0 (0.341) has se 0.0037 (0.02 is > 5 se).
    assert abs(new.mean() - w @ mu) < 0.08
    assert abs((new < 0).mean() - w @ stats.norm(mu, 1.0).cdf(0.0)) < 0.02
    # Not the fitted units' assignments: new units are not the old ones.
    chain = pplc.compile(HMM)
    fit = _posterior_at(chain.condition({"T": 4, "y": [0.1, 0.2, 1.9, 2.1]}),
                        {"mu": np.array([0.0, 2.0]), "sigma": 0.5, "stay": 0.9}, draws=10)
    with pytest.raises(pplc.PplcError, match="Markov chain 'z' it depends on would have to be "
                                             "simulated step by step"):
        chain.condition({"T": 3}).posterior_predictive(fit)
