"""The reparameterization pass: the graph before and after, the decision, and posteriors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pplc
from pplc.ir.graph import Kind
from pplc.ir.printer import format_graph

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"

EIGHT = """\
data J: int
data y: real[J]
data sigma: positive[J]
mu ~ Normal(0, 5)
tau ~ HalfCauchy(5)
for j in range(J):
    {decorator}theta[j] ~ Normal(mu, tau)
    y[j] ~ Normal(theta[j], sigma[j])
"""
EIGHT_DATA = {"J": 8, "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
              "sigma": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]}


def hierarchical(groups: int, per_group: int, seed: int = 0) -> tuple[str, dict]:
    source = """\
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
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    alpha = rng.normal(1.0, 1.5, size=groups)
    y = rng.normal(alpha[g], 1.0)
    return source, {"N": len(g), "G": groups, "g": g.tolist(), "y": y.tolist()}


def test_weakly_informed_latent_is_noncentered_in_the_graph():
    model = pplc.compile(EIGHT.format(decorator="")).condition(EIGHT_DATA)
    graph = model.graph
    assert graph["theta"].kind is Kind.DETERMINISTIC
    raw = graph["theta_std"]
    assert raw.kind is Kind.LATENT and raw.internal
    text = format_graph(graph)
    assert "theta_std[j] ~ Normal(loc=0.0 * mu + 0.0 * tau, scale=1.0)    for j in range(J)" \
        in text
    assert "theta[j] = mu + tau * theta_std[j]    for j in range(J)" in text
    assert set(graph.parents("theta")) == {"J", "mu", "tau", "theta_std"}
    (note,) = [n for n in graph.notes if n.pass_name == "reparameterize"]
    assert note.span.line == 7 and note.message.startswith("theta: noncentered — prior scale tau")
    # Draws stay in the user's parameterization: theta is recorded, theta_std is not.
    assert model.lowered.recorded_names == ["mu", "tau", "theta"]


def test_the_rewrite_preserves_the_posterior_density():
    """p_nc(z) = p_c(mu + tau z) * tau^J: the rewritten density equals the centered one plus
    the log-Jacobian of z -> theta, at random points."""
    centered = pplc.compile(EIGHT.format(decorator="")).condition(
        EIGHT_DATA, disabled_passes=("reparameterize",))
    noncentered = pplc.compile(EIGHT.format(decorator="")).condition(EIGHT_DATA)
    rng = np.random.default_rng(0)
    for _ in range(5):
        mu, tau, z = rng.normal(), rng.gamma(2.0), rng.normal(size=8)
        theta = mu + tau * z
        lp_c = float(centered.log_density({"mu": mu, "tau": tau, "theta": theta}))
        lp_nc = _sampler_density(noncentered, {"mu": mu, "tau": tau, "theta_std": z})
        assert lp_nc == pytest.approx(lp_c + 8 * np.log(tau), rel=1e-10)


def _sampler_density(model, values) -> float:
    """The density NUTS samples (the rewritten model's), at constrained values of its own
    latents (theta_std included), without the constraint transforms' Jacobians."""
    lowered = model.lowered
    u = lowered.unconstrain(values, model.data)
    _, log_jacobian = lowered._values(u, model.data)
    return float(lowered.log_density(u, model.data) - log_jacobian)


def test_decorators_override_the_choice():
    model = pplc.compile(EIGHT.format(decorator="@centered\n    ")).condition(EIGHT_DATA)
    assert model.graph["theta"].kind is Kind.LATENT
    assert [n.message for n in model.graph.notes if n.pass_name == "reparameterize"] == \
        ["theta: centered — as written (@centered)"]
    source, data = hierarchical(groups=5, per_group=200)
    source = source.replace("    alpha[k] ~", "    @noncentered\n    alpha[k] ~")
    model = pplc.compile(source).condition(data)
    assert model.graph["alpha"].kind is Kind.DETERMINISTIC


def test_strongly_informed_latent_stays_centered():
    source, data = hierarchical(groups=5, per_group=200)
    model = pplc.compile(source).condition(data)
    assert model.graph["alpha"].kind is Kind.LATENT
    (note,) = [n for n in model.graph.notes if n.pass_name == "reparameterize"]
    assert note.message.startswith("alpha: centered — the 200 observations per element")


def test_other_latents_are_left_alone():
    source = """\
data N: int
data y: real[N]
mu ~ Normal(0, 5)
phi ~ Uniform(-1, 1)
x[0] ~ Normal(mu, 1)
for t in range(1, N):
    x[t] ~ Normal(phi * x[t - 1], 1)
s: positive ~ Normal(mu, 1)
y ~ Normal(x, s)
"""
    model = pplc.compile(source).condition({"N": 3, "y": [0.1, 0.2, 0.3]})
    # An autoregression and a narrowed type are not candidates.
    assert not [n for n in model.graph.notes if n.pass_name == "reparameterize"]
    assert model.graph["x"].kind is Kind.LATENT and model.graph["s"].kind is Kind.LATENT


@pytest.mark.slow
def test_centered_eight_schools_samples_cleanly_and_matches_the_reference():
    folder = CONFORMANCE / "eight_schools-eight_schools_centered"
    if not folder.exists():
        pytest.skip(f"{CONFORMANCE} is absent")
    reference = json.loads((folder / "reference.json").read_text())["parameters"]
    model = pplc.compile(folder / "model.ppl").condition(folder / "data.json")
    posterior = model.sample(chains=4, warmup=1000, draws=1000, seed=1)
    summary = posterior.summary()
    for name, ref in reference.items():
        # The bounds: means within 0.15 reference sd, sds within 15% (> 4 MCSE at
        # the ESS above 2000 that the noncentered form reaches here).
        assert abs(summary[name]["mean"] - ref["mean"]) < 0.15 * ref["sd"], name
        assert abs(summary[name]["sd"] - ref["sd"]) < 0.15 * ref["sd"], name
    # Stray divergences, counted as a rate: with the step-size schedule of commit 5547e91
    # (dual averaging restarted after the first metric window only, as nutpie does; 1.2-1.8x
    # the ESS per gradient on 7 of 9 suite models) and the `auto` metric, seeds 0-5 give
    # 3, 1, 3, 3, 6, 3 in 4000 draws (Stan's restarts gave 2, 0, 2, 1, 1, 1; NumPyro
    # 0, 0, 0, 0, 0, 1; nutpie about 3). The acceptance once asked for 0 at a picked seed;
    # the bound is 10 in 4000 (0.25%). Divergences are reported to the user either way.
    assert posterior.divergences <= 10
    # As written, without the pass, the funnel shows: divergences and low ESS for tau.
    plain = pplc.compile(folder / "model.ppl").condition(
        folder / "data.json", disabled_passes=("reparameterize",)).sample(seed=1)
    # With the auto metric and nutpie's step-size schedule the centered funnel diverges
    # less often than it did (4 at seed 1, was > 10); what tells the forms apart is tau's
    # ESS, less than half the noncentered form's.
    assert plain.divergences > 0
    assert plain.summary()["tau"]["ess_bulk"] < summary["tau"]["ess_bulk"] / 2


@pytest.mark.slow
def test_centered_choice_is_at_least_as_efficient_when_data_are_strong():
    """With 200 observations per group the centered form (kept by the pass) gets at least
    the ESS per gradient of the forced-noncentered one (ESS per gradient, not per second,
    so the comparison does not depend on machine load). 4 chains x (500 + 500) suffice:
    measured, the centered form gets 25x the forced one's ESS per gradient at this length
    (26x at 1000 + 1000); the smallest ESS is then ~350, whose estimate errs by tens of
    percent, nowhere near a factor of 25."""
    source, data = hierarchical(groups=5, per_group=200)
    run = dict(seed=2, warmup=500, draws=500)
    kept = pplc.compile(source).condition(data).sample(**run)
    forced = pplc.compile(source.replace("    alpha[k] ~", "    @noncentered\n    alpha[k] ~")
                          ).condition(data).sample(**run)

    def ess_per_grad(posterior):
        return min(s["ess_bulk"] for s in posterior.summary().values()) / posterior.n_grad_evals

    assert ess_per_grad(kept) >= ess_per_grad(forced)


def test_user_values_map_through_a_noncentered_rewrite():
    """log_density(params) is the density of the model as written, and unconstrain
    computes theta_std = (theta - mu) / tau (log theta for LogNormal) from the user's theta,
    so constrain(unconstrain(params)) == params."""
    from scipy import stats

    model = pplc.compile(EIGHT.format(decorator="")).condition(EIGHT_DATA)
    assert any(v.internal for v in model.graph.variables())     # the pass did noncenter
    theta = np.linspace(-1.0, 2.0, 8)
    params = {"mu": 1.0, "tau": 2.0, "theta": theta}
    expected = (stats.norm(0, 5).logpdf(1.0) + stats.halfcauchy(scale=5).logpdf(2.0)
                + stats.norm(1.0, 2.0).logpdf(theta).sum()
                + stats.norm(theta, EIGHT_DATA["sigma"]).logpdf(EIGHT_DATA["y"]).sum())
    assert float(model.log_density(params)) == pytest.approx(expected, rel=1e-12)
    back = model.constrain(model.unconstrain(params))
    np.testing.assert_allclose(back["theta"], theta, atol=1e-12)
    assert float(back["tau"]) == pytest.approx(2.0, rel=1e-12)

    lognormal = """\
data J: int
data y: real[J]
mu ~ Normal(0, 1)
s ~ HalfNormal(1)
for j in range(J):
    @noncentered
    r[j] ~ LogNormal(mu, s)
    y[j] ~ Normal(r[j], 10)
"""
    model = pplc.compile(lognormal).condition({"J": 3, "y": [1.0, 2.0, 3.0]})
    r = np.array([0.5, 1.5, 4.0])
    back = model.constrain(model.unconstrain({"mu": 0.2, "s": 0.7, "r": r}))
    np.testing.assert_allclose(back["r"], r, rtol=1e-12)
    expected = (stats.norm(0, 1).logpdf(0.2) + stats.halfnorm(scale=1).logpdf(0.7)
                + stats.lognorm(s=0.7, scale=np.exp(0.2)).logpdf(r).sum()
                + stats.norm(r, 10).logpdf([1.0, 2.0, 3.0]).sum())
    assert float(model.log_density({"mu": 0.2, "s": 0.7, "r": r})) == pytest.approx(expected, rel=1e-12)


def test_a_long_chain_of_latents_is_conditioned_without_recursion():
    """The pass reads sizes from the shaped graph: a 600-long chain a[i] ~ Normal(a[i-1], 1)
    written as separate variables used to exhaust Python's recursion guessing shapes."""
    lines = ["data y: real[3]", "a0 ~ Normal(0, 1)"]
    lines += [f"a{i} ~ Normal(a{i - 1}, 1)" for i in range(1, 600)]
    lines.append("y ~ Normal(a599, 1)")
    model = pplc.compile("\n".join(lines) + "\n").condition({"y": [0.1, 0.2, 0.3]})
    assert model.dim == 600
