"""The ArviZ output: groups, dimension names read off the model, and ArviZ's own functions
(LOO, BFMI, summary, plots) on it; the netCDF the command line writes; the DataTree that
ArviZ >= 1 uses, built here by forcing the version check."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

import pplc
from pplc.inference import summary

ROOT = Path(__file__).resolve().parents[2]
EIGHT_SCHOOLS = ROOT / "examples" / "eight_schools"

NESTED = """\
data N: int
data M: int
data w: real[M]
data g: int(lower=0, upper=M - 1)[N]
for i in range(N):
    for j in range(M):
        b[i, j] ~ Normal(0, 1)
u: real[M] ~ Normal(0, 1)
q: real[3] ~ Normal(0, 1)
for s in range(N - 1):
    d[s] = b[s + 1, 0] - b[s, 0]
for s in range(N - 2):
    e[s] = b[s + 2, 0] - b[s, 0]
row = b @ w
twice = 2 * d
picked = u[g]
scaled = exp(b) * 2
mixed = b + transpose(b)
"""

CORRELATED = """\
data K: int
data N: int
data y: real[N, K]
L: corr_cholesky[K] ~ LKJCholesky(K, 2.0)
sd: positive[K] ~ HalfNormal(1)
mu: real[K] ~ Normal(0, 5)
for n in range(N):
    y[n] ~ MultivariateNormal(mu, scale_tril=diag(sd) @ L)
Omega = L @ transpose(L)
"""

MISSING = """\
data N: int
data y: real[N]
mu ~ Normal(0, 10)
sigma ~ HalfNormal(5)
y ~ Normal(mu, sigma)
"""


@pytest.fixture(scope="module")
def eight_schools():
    model = pplc.compile(EIGHT_SCHOOLS / "model.ppl").condition(EIGHT_SCHOOLS / "data.json")
    # metric="diag": the output is the point, not the metric, and the diagonal program
    # compiles ~1.5 CPU-s faster than the low-rank one auto picks here (issue 16 item 7)
    posterior = model.sample(chains=2, warmup=300, draws=200, seed=2, metric="diag")
    model.predictive(posterior, seed=2)
    return model, posterior


def test_eight_schools_variables_over_the_schools_share_J(eight_schools):
    model, _ = eight_schools
    assert model.dims["theta"] == model.dims["y"] == model.dims["sigma"] == ["J"]
    assert model.dims["mu"] == model.dims["tau"] == []


def test_every_group_names_the_axes_after_the_model(eight_schools):
    _, posterior = eight_schools
    idata = posterior.to_arviz()
    assert set(idata.groups()) == {"posterior", "sample_stats", "observed_data",
                                   "posterior_predictive", "log_likelihood", "log_prior"}
    assert idata.posterior["theta"].dims == ("chain", "draw", "J")
    assert idata.observed_data["y"].dims == ("J",)
    assert idata.posterior_predictive["y"].dims == ("chain", "draw", "J")
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "J")
    np.testing.assert_array_equal(idata.posterior["J"], np.arange(8))
    np.testing.assert_array_equal(idata.observed_data["y"],
                                  [28, 8, -3, 7, -1, 1, 18, 12])
    assert set(idata.sample_stats.data_vars) == {
        "lp", "diverging", "tree_depth", "n_steps", "step_size", "energy",
        "acceptance_rate", "reached_max_treedepth"}
    assert idata.sample_stats["diverging"].dtype == bool


@pytest.mark.filterwarnings("ignore::matplotlib.MatplotlibDeprecationWarning")
def test_arviz_diagnostics_and_plots_run_on_the_output(eight_schools):
    import arviz as az
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, posterior = eight_schools
    idata = posterior.to_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # a Pareto k > 0.7 is possible here
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == 8
    bfmi = az.bfmi(idata)
    assert bfmi.shape == (2,) and np.all(np.isfinite(bfmi)) and np.all(bfmi > 0)
    table = az.summary(idata)
    assert {"mu", "tau", "theta[0]", "theta[7]"} <= set(table.index)
    # The same element names as pplc's own summary.
    assert set(table.index) == set(posterior.summary())
    az.plot_trace(idata, var_names=["mu", "tau", "theta"])
    az.plot_pair(idata, var_names=["mu", "tau"], divergences=True)
    plt.close("all")


def test_nested_loops_and_expressions_name_each_axis():
    model = pplc.compile(NESTED).condition(
        {"N": 4, "M": 4, "w": [0.1, 0.2, 0.3, 0.4], "g": [0, 3, 1, 1]})
    dims = model.dims
    assert dims["b"] == ["N", "M"]              # two loops over two sizes
    assert dims["d"] == ["s"]                   # a loop over N - 1: its variable
    assert dims["twice"] == ["s"]               # ... carried through an expression
    assert dims["e"] == ["e_dim_0"]             # `s` is already N - 1 long
    assert dims["row"] == ["N"]                 # b @ w
    assert dims["picked"] == ["N"]              # u[g]: the index's axis
    assert dims["scaled"] == ["N", "M"]         # element-wise
    # N == M here: b + transpose(b) pairs N with M, so neither name is right.
    assert dims["mixed"] == ["mixed_dim_0", "mixed_dim_1"]
    assert dims["q"] == ["q_dim_0"]             # a literal size
    assert dims["w"] == ["M"] and dims["g"] == ["N"]


def _posterior_at_random_points(model, chains, draws):
    """A Posterior of random points of the unconstrained space, as `sample` builds one from
    its draws (its draws constrained, the deterministics and the data added): the axes
    named in the output are the point of the tests that use it, not the sampler, and
    sampling compiled NUTS for each model, most of each test's CPU (issue 16 item 7; the
    covariance model's sample: 6.2 CPU-s of compiling and sampling). The eight schools
    fixture and the netCDF test read output that NUTS sampled."""
    u = np.random.default_rng(0).normal(size=(chains, draws, model.dim))
    return model._posterior(u, {}, 0, 0.0, 0.0, {"seed": 0})


def test_covariance_axes_get_two_distinct_names():
    rng = np.random.default_rng(0)
    model = pplc.compile(CORRELATED).condition(
        {"K": 3, "N": 20, "y": rng.normal(size=(20, 3))})
    assert model.dims["L"] == ["K", "K_bis"]
    assert model.dims["Omega"] == ["K", "K_bis"]
    assert model.dims["y"] == ["N", "K"]
    assert model.dims["mu"] == model.dims["sd"] == ["K"]
    posterior = _posterior_at_random_points(model, chains=1, draws=20)
    idata = posterior.to_arviz()
    assert idata.posterior["L"].dims == ("chain", "draw", "K", "K_bis")
    assert idata.observed_data["y"].dims == ("N", "K")


def test_a_declared_cov_type_and_a_summed_out_latent():
    source = ("data K: int\ndata N: int\ndata y: real[N]\n"
              "S: cov[K] ~ Normal(0, 1)\n"
              "p: simplex[K] ~ Dirichlet(ones(K))\nm: ordered[K] ~ Normal(0, 5)\n"
              "for n in range(N):\n    z[n] ~ Categorical(p)\n"
              "    y[n] ~ Normal(m[z[n]], 1)\n")
    model = pplc.compile(source).condition({"K": 2, "N": 5, "y": [0.1, 2.0, -1.0, 3.0, 0.5]})
    assert model.dims["S"] == ["K", "K_bis"]
    assert model.dims["z"] == ["N"]                       # the drawn values
    assert model.dims["z_prob"] == ["N", "z_value"]       # P(z[n] = value | rest)


def test_imputed_entries_have_their_own_axis():
    import arviz as az

    model = pplc.compile(MISSING).condition({"N": 5, "y": [1.0, None, 3.0, None, 2.0]})
    posterior = _posterior_at_random_points(model, chains=2, draws=50)
    model.predictive(posterior, seed=0)
    idata = posterior.to_arviz()
    assert idata.posterior["y"].dims == ("chain", "draw", "y_missing")
    assert list(idata.posterior["y_missing"].values) == ["1", "3"]
    assert idata.observed_data["y"].dims == ("N",)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "N")
    assert list(posterior.summary()) == ["mu", "sigma", "y[1]", "y[3]"]
    assert list(az.summary(idata).index) == ["mu", "sigma", "y[1]", "y[3]"]


def test_cli_netcdf_keeps_the_dims(tmp_path):
    """`pplc sample --output` through the CLI's main in this process: the file's dims are
    the point, and a process of its own cost ~10 CPU-s, mostly imports and compiling what
    this process has compiled already (issue 16 item 7); tests/test_cli.py runs the real
    command with --output."""
    import arviz as az

    from pplc.cli import main

    out = tmp_path / "draws.nc"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(["sample", str(EIGHT_SCHOOLS / "model.ppl"),
                       "--data", str(EIGHT_SCHOOLS / "data.json"), "--chains", "2",
                       "--warmup", "100", "--draws", "50", "--predict", "--output", str(out),
                       "--quiet", "--metric", "diag"])   # (as the fixture, for the same reason)
    assert status == 0, err.getvalue()
    idata = az.from_netcdf(out)
    assert idata.posterior["theta"].dims == ("chain", "draw", "J")
    assert idata.observed_data["y"].dims == ("J",)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "J")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # Pareto k, with only 100 draws
        assert np.isfinite(az.loo(idata).elpd_loo)


def test_datatree_for_arviz_1(eight_schools, monkeypatch, tmp_path):
    import xarray as xr

    _, posterior = eight_schools
    idata = posterior.to_arviz()
    monkeypatch.setattr(summary, "_arviz_major_version", lambda: 1)
    tree = posterior.to_arviz()
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == set(idata.groups())
    for group in idata.groups():
        expected = idata[group]
        got = tree[group].to_dataset()
        assert set(got.data_vars) == set(expected.data_vars), group
        for name in expected.data_vars:
            assert got[name].dims == expected[name].dims, (group, name)
            np.testing.assert_array_equal(got[name].values, expected[name].values)
    assert tree.attrs["inference_library"] == "pplc"
    path = tmp_path / "tree.nc"
    summary.write_netcdf(path, tree)
    with xr.open_datatree(path, engine="h5netcdf") as again:
        xr.testing.assert_identical(again, tree)
