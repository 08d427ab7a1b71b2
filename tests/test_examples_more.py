"""The other examples LANGUAGE.md lists: each runs end to end and gets one known number right.

Tolerances: a posterior mean checked against an exact or quadrature reference must agree
within 4 Monte Carlo standard errors (MCSE = sd / sqrt(ESS_bulk)); a true value used to
simulate the data must lie in a central posterior interval, 90% for one parameter and
widened by Bonferroni when several are checked together (k parameters, each in its central
1 - 0.10 / k interval, keep the family's miss rate at or below 10% for data simulated at
random). Every data.json that simulate.py made is checked to be what simulate.py makes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

import pplc
from pplc.errors import PplcError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SAMPLING = dict(chains=4, warmup=500, draws=500, seed=0)


def _simulator(name: str):
    """examples/NAME/simulate.py as a module, after checking that it makes data.json."""
    folder = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"simulate_{name}", folder / "simulate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads((folder / "data.json").read_text()) == json.loads(
        json.dumps(module.simulate())), f"{name}/data.json is not what simulate.py makes"
    return module


def _sample(name: str, model: str = "model.ppl", **overrides):
    folder = EXAMPLES / name
    options = {**SAMPLING, **overrides}
    return pplc.compile(folder / model).condition(folder / "data.json").sample(**options)


def _inside_central(draws: np.ndarray, value: float, mass: float) -> tuple[bool, tuple]:
    lo, hi = np.quantile(np.asarray(draws).ravel(), [(1 - mass) / 2, (1 + mass) / 2])
    return bool(lo < value < hi), (float(lo), float(hi))


def _near_reference(got: dict, mean: float, sd: float) -> bool:
    return abs(got["mean"] - mean) < 4 * sd / np.sqrt(got["ess_bulk"])


def test_eight_schools_matches_posteriordb_and_is_noncentered_automatically():
    """posteriordb's reference posterior for eight schools (same priors) has mu's mean 4.41
    and sd 3.31; its own Monte Carlo error is negligible against ours."""
    folder = EXAMPLES / "eight_schools"
    conditioned = pplc.compile(folder / "model.ppl").condition(folder / "data.json")
    notes = [note.message for note in conditioned.graph.notes]
    assert any(message.startswith("theta: noncentered") for message in notes), notes
    summary = conditioned.sample(**SAMPLING).summary()
    assert _near_reference(summary["mu"], 4.41, 3.31), summary["mu"]


def test_three_line_matches_a_quadrature_posterior():
    """The posterior of (mu, sigma) by brute-force quadrature on a grid over (mu, log sigma),
    with the model's own priors (sigma ~ LogNormal(0, 5) is Normal(0, 5) on log sigma).
    201 x 201 points, ~1/10 of a posterior sd apart, over +-9 sds or more: a 601 x 601 grid
    gives the same means and sds to 1e-11 (at 100x the CPU)."""
    data = json.loads((EXAMPLES / "three_line" / "data.json").read_text())
    x = np.asarray(data["x"])
    mu = np.linspace(x.mean() - 3, x.mean() + 3, 201)
    log_sigma = np.linspace(np.log(x.std()) - 1.2, np.log(x.std()) + 1.2, 201)
    m, ls = np.meshgrid(mu, log_sigma, indexing="ij")
    logp = (stats.norm.logpdf(m, 0, 10) + stats.norm.logpdf(ls, 0, 5)
            + stats.norm.logpdf(x[None, None, :], m[..., None], np.exp(ls)[..., None]).sum(-1))
    weights = np.exp(logp - logp.max())
    weights /= weights.sum()
    summary = _sample("three_line").summary()
    for name, values in {"mu": m, "sigma": np.exp(ls)}.items():
        mean = np.sum(weights * values)
        sd = np.sqrt(np.sum(weights * (values - mean) ** 2))
        assert _near_reference(summary[name], mean, sd), (name, summary[name], mean, sd)


@pytest.mark.slow
def test_damped_oscillator_recovers_the_true_damping_and_frequency():
    """Two parameters checked together: each truth in its central 95% interval."""
    simulate = _simulator("damped_oscillator")
    posterior = _sample("damped_oscillator")
    assert int(np.sum(posterior.divergences)) == 0
    for name in ("zeta", "w"):
        ok, interval = _inside_central(posterior[name], simulate.TRUE[name], 0.95)
        assert ok, (name, simulate.TRUE[name], interval)


def test_drug_trial_recovers_the_treatment_effect():
    simulate = _simulator("drug_trial")
    posterior = _sample("drug_trial")
    ok, interval = _inside_central(posterior["effect"], simulate.TRUE["effect"], 0.90)
    assert ok, (simulate.TRUE["effect"], interval)


def _poisson_lognormal_reference(counts: np.ndarray) -> dict:
    """Posterior means and sds of A and B by quadrature: each count's marginal likelihood
    p(X | A, B) = E_z[Poisson(X | exp(A + B z))], z ~ Normal(0, 1), by 80-node Gauss-Hermite,
    then a 201 x 201 grid over (A, log B) with the priors A ~ Normal(0, 1) and
    B ~ LogNormal(0, 1) (Normal(0, 1) on log B). The grid spacing is ~1/8 of each posterior
    sd; a 401 x 401 grid gives the same means and sds to 3e-11 (and cost 10x the CPU)."""
    nodes, weights = special.roots_hermitenorm(80)
    log_w = np.log(weights / np.sqrt(2 * np.pi))
    a = np.linspace(-2.0, 3.0, 201)
    log_b = np.linspace(-6.0, 2.0, 201)
    aa, lb = np.meshgrid(a, log_b, indexing="ij")
    log_rate = aa[..., None] + np.exp(lb)[..., None] * nodes            # (A, B, node)
    rate = np.exp(log_rate)
    logp = stats.norm.logpdf(aa) + stats.norm.logpdf(lb)
    # Equal counts have equal marginal likelihoods: each distinct count once, times how
    # often it occurs (20 counts, 7 distinct: the same sum at a third of the CPU).
    for count, times in zip(*np.unique(counts, return_counts=True)):
        log_pois = count * log_rate - rate - special.gammaln(count + 1)
        logp = logp + times * special.logsumexp(log_pois + log_w, axis=-1)
    weights = np.exp(logp - logp.max())
    weights /= weights.sum()
    out = {}
    for name, values in {"A": aa, "B": np.exp(lb)}.items():
        mean = np.sum(weights * values)
        out[name] = (mean, np.sqrt(np.sum(weights * (values - mean) ** 2)))
    return out


@pytest.mark.slow
def test_poisson_lognormal_matches_a_quadrature_posterior():
    _simulator("poisson_lognormal")
    data = json.loads((EXAMPLES / "poisson_lognormal" / "data.json").read_text())
    reference = _poisson_lognormal_reference(np.asarray(data["X"]))
    summary = _sample("poisson_lognormal").summary()
    for name, (mean, sd) in reference.items():
        assert _near_reference(summary[name], mean, sd), (name, summary[name], mean, sd)


def _check_mixture_means(posterior, truth: list[float]) -> None:
    """K = 3 means checked together: each truth in its central 1 - 0.10 / 3 interval."""
    mu = np.asarray(posterior["mu"])
    for k, value in enumerate(truth):
        ok, interval = _inside_central(mu[..., k], value, 1 - 0.10 / len(truth))
        assert ok, (k, value, interval)


@pytest.mark.slow
def test_gaussian_mixture_with_latent_assignments():
    simulate = _simulator("gaussian_mixture")
    try:
        posterior = _sample("gaussian_mixture")
    except PplcError as exc:
        if "latent discrete" in str(exc.render()):
            pytest.xfail("needs discrete marginalization")
        raise
    _check_mixture_means(posterior, simulate.TRUE["mu"])


def test_gaussian_mixture_marginalized_by_hand():
    simulate = _simulator("gaussian_mixture")
    _check_mixture_means(_sample("gaussian_mixture", "model_logsumexp.ppl"),
                         simulate.TRUE["mu"])


def test_hierarchical_logistic_recovers_the_population_slopes():
    """K = 3 slopes checked together: each truth in its central 1 - 0.10 / 3 interval."""
    simulate = _simulator("hierarchical_logistic")
    beta = np.asarray(_sample("hierarchical_logistic")["beta"])
    for k, value in enumerate(simulate.TRUE["beta"]):
        ok, interval = _inside_central(beta[..., k], value, 1 - 0.10 / len(simulate.TRUE["beta"]))
        assert ok, (k, value, interval)


def test_linear_inverse_problem_matches_the_closed_form_posterior():
    """Every element's mean within 4 MCSE of the exact posterior mean, and its sd within
    4 sd / sqrt(2 ESS2) of the exact sd (the posterior is Gaussian), ESS2 the effective size
    of the squared deviations: the sd's standard error is sd / sqrt(2 ESS2), and NUTS's draws
    are antithetic for the mean, so the bulk ESS is ~2x ESS2 here (measured 0.44-0.48 for
    seeds 0-2) and would make the bound too tight. 24 checks at 4 sigma: a family
    false-alarm rate near 0.15%."""
    from pplc.inference.convergence import ess_mean

    simulate = _simulator("linear_inverse_problem")
    data = json.loads((EXAMPLES / "linear_inverse_problem" / "data.json").read_text())
    mean, cov = simulate.closed_form(data)
    sd = np.sqrt(np.diag(cov))
    fit = _sample("linear_inverse_problem")
    summary, x = fit.summary(), np.asarray(fit["x"])
    for i in range(len(mean)):
        got = summary[f"x[{i}]"]
        assert _near_reference(got, mean[i], sd[i]), (i, got, mean[i], sd[i])
        ess2 = ess_mean((x[..., i] - x[..., i].mean()) ** 2)
        assert abs(got["sd"] - sd[i]) < 4 * sd[i] / np.sqrt(2 * ess2), (i, got, ess2, sd[i])


@pytest.mark.slow
def test_stochastic_volatility_recovers_phi():
    """The model as LANGUAGE.md writes it (centered h). Its h is not noncentered by pplc,
    and phi and sigma mix slowly (R-hat about 1.2-1.4, bulk ESS 10-15 at this run length),
    so this is a coarse check; the noncentered test below is the reliable one."""
    simulate = _simulator("stochastic_volatility")
    posterior = _sample("stochastic_volatility")
    ok, interval = _inside_central(posterior["phi"], simulate.TRUE["phi"], 0.90)
    assert ok, (simulate.TRUE["phi"], interval)


@pytest.mark.slow
def test_stochastic_volatility_noncentered_by_hand_recovers_phi():
    simulate = _simulator("stochastic_volatility")
    posterior = _sample("stochastic_volatility", "model_noncentered.ppl")
    summary = posterior.summary()
    assert summary["phi"]["r_hat"] < 1.05, summary["phi"]
    ok, interval = _inside_central(posterior["phi"], simulate.TRUE["phi"], 0.90)
    assert ok, (simulate.TRUE["phi"], interval)
