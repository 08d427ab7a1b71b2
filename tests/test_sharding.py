"""Data split across devices (--shard-data): the plan's decision, and the same log density,
gradient and posterior as one device.

The number of JAX devices is fixed when JAX starts, so the checks that need several
devices run this file as a script in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=N (4 and 8 virtual CPU devices), which
prints its measurements as JSON; the tests assert on them. Every data size here (1001,
1003, 203 rows) divides neither 4 nor 8, so the padded rows are always exercised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.passes import HIER_LOGISTIC_SOURCE   # a loop over the rows

ROOT = Path(__file__).resolve().parents[1]
HIER = ROOT / "examples" / "hierarchical_logistic" / "model.ppl"
MIXTURE = ROOT / "examples" / "gaussian_mixture" / "model.ppl"

GROUPED = """
data N: int
data G: int
data g: int(lower=0, upper=G - 1)[N]
data y: real[N]
mu ~ Normal(0, 1)
tau ~ HalfNormal(1)
sigma ~ HalfNormal(1)
for j in range(G):
    alpha[j] ~ Normal(mu, tau)
for n in range(N):
    y[n] ~ Normal(alpha[g[n]], sigma)
"""

RECURRENCE = """
data T: int
data x: real[T]
data y: real[T]
phi ~ Uniform(-1, 1)
sigma ~ HalfNormal(1)
m[0] = x[0]
for t in range(1, T):
    m[t] = phi * m[t - 1] + x[t]
for t in range(T):
    y[t] ~ Normal(m[t], sigma)
"""

HMM = """
data T: int
data y: real[T]
data P: simplex[2, 2]
p0: simplex[2] ~ Dirichlet(ones(2))
mu: ordered[2] ~ Normal(0, 5)
sigma ~ HalfNormal(2)
z[0] ~ Categorical(p0)
for t in range(1, T):
    z[t] ~ Categorical(P[z[t - 1]])
for t in range(T):
    y[t] ~ Normal(mu[z[t]], sigma)
"""

NO_PLATE = """
data y: real
mu ~ Normal(0, 1)
y ~ Normal(mu, 1)
"""


def models():
    """(name, model, data) of the four models checked."""
    import pplc
    rng = np.random.default_rng(7)
    n, groups = 1001, 20
    hier = {"N": n, "G": groups, "K": 3, "g": rng.integers(0, groups, n),
            "X": rng.normal(size=(n, 3)), "y": rng.integers(0, 2, n)}
    grouped = {"N": n, "G": groups, "g": rng.integers(0, groups, n),
               "y": rng.normal(size=n)}
    t = 203
    recurrence = {"T": t, "x": rng.normal(size=t), "y": rng.normal(size=t)}
    mixture = {"N": 1003, "K": 3, "y": np.concatenate(
        [rng.normal(-3, 1, 500), rng.normal(0, 1, 300), rng.normal(4, 1, 203)])}
    return [("hierarchical_logistic", pplc.compile(HIER), hier),
            ("grouped", pplc.compile(GROUPED), grouped),
            ("recurrence", pplc.compile(RECURRENCE), recurrence),
            ("mixture", pplc.compile(MIXTURE), mixture)]


# ---------------------------------------------------------------- the plan (one device)
def test_the_plan_splits_the_observations_and_keeps_recurrences_whole():
    plans = {name: model.condition(data).lowered.plan.sharding
             for name, model, data in models()}
    assert plans["hierarchical_logistic"].size == "N"
    assert dict(plans["hierarchical_logistic"].axes) == {"g": 0, "X": 0, "y": 0}
    assert dict(plans["grouped"].axes) == {"g": 0, "y": 0}
    assert dict(plans["mixture"].axes) == {"y": 0}
    recurrence = plans["recurrence"]
    assert dict(recurrence.axes) == {"y": 0}
    assert "x" in recurrence.whole and "recurrence on line 9" in recurrence.whole["x"]
    # Loops that read the split arrays row by row are said to be: split too where the
    # devices divide the rows, gathered otherwise.
    assert plans["hierarchical_logistic"].by_row == {}
    assert plans["grouped"].by_row == {"g": 12, "y": 12}
    assert plans["mixture"].by_row == {"y": 13}
    assert "g, y read row by row in a loop (line 12): split too where the devices divide " \
        "N = 1001, else gathered onto every device" in plans["grouped"].describe()


def test_a_summed_out_markov_chain_keeps_its_observations_whole():
    import pplc
    from pplc.errors import PplcError
    model = pplc.compile(HMM).condition({"T": 11, "y": np.zeros(11),
                                         "P": [[0.9, 0.1], [0.2, 0.8]]})
    sharding = model.lowered.plan.sharding
    assert (sharding.size, dict(sharding.axes)) == ("T", {})
    assert sharding.whole["y"].startswith("read by the forward algorithm of the summed-out "
                                          "Markov chain 'z' (line 8)")
    with pytest.raises(PplcError, match="cannot split the data across devices: split along "
                                        "T = 11: nothing; y kept whole"):
        model.sample(chains=1, warmup=10, draws=10, shard_data=True, progress=False)


def test_ir_plan_and_explain_report_the_sharding():
    data = str(HIER.parent / "data.json")
    run = lambda *a: subprocess.run([sys.executable, "-m", "pplc.cli", *a], cwd=ROOT,
                                    capture_output=True, text=True, timeout=120)
    plan = run("ir", "--plan", str(HIER), "--data", data)
    assert plan.returncode == 0, plan.stderr
    assert "# data sharding (--shard-data): split along N = 1000: g (axis 0), X (axis 0), " \
           "y (axis 0)" in plan.stdout
    explain = run("explain", str(HIER), "--data", data)
    assert "model.ppl:8:31: with --shard-data: split along N = 1000" in explain.stdout


def test_a_model_with_nothing_to_split_is_refused_with_its_reason(tmp_path):
    import pplc
    from pplc.errors import PplcError
    model = pplc.compile(NO_PLATE).condition({"y": 0.5})
    assert model.lowered.plan.sharding.size is None
    with pytest.raises(PplcError, match="cannot split the data across devices: nothing to "
                                        "split: no observed array runs over a data size"):
        model.sample(chains=1, warmup=10, draws=10, shard_data=True, progress=False)


def test_the_command_line_refuses_at_the_observation(tmp_path):
    (tmp_path / "m.ppl").write_text(NO_PLATE.lstrip())
    (tmp_path / "d.json").write_text('{"y": 0.5}')
    done = subprocess.run([sys.executable, "-m", "pplc.cli", "sample", "m.ppl", "--data",
                           "d.json", "--shard-data", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    assert "m.ppl:3:1: error: shard_data: cannot split" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_auto_splits_only_where_a_devices_share_pays_for_the_collective():
    from pplc.backends.sharding import AUTO_MIN_BYTES_PER_DEVICE, Sharding
    from pplc.errors import PplcError
    from pplc.inference.sharding import should_split
    big = Sharding("N", 10**6, None, {"y": 0}, nbytes=16 * AUTO_MIN_BYTES_PER_DEVICE)
    assert [big.auto(d) for d in (1, 2, 4, 16, 17)] == [False, True, True, True, False]
    assert "auto splits over 2 to 16 devices (64 MiB to split, 4 MiB a device" \
        in big.describe()
    small = Sharding("N", 1000, None, {"y": 0}, nbytes=8000)
    assert not small.auto(8) and "auto keeps the data whole" in small.describe()
    assert should_split(True, small, 1) and not should_split(False, big, 8)
    assert should_split("auto", big, 4) and not should_split("auto", small, 4)
    assert not should_split("auto", Sharding(None, 0, None), 4)   # nothing to split: no error
    with pytest.raises(PplcError, match="shard_data must be True, False or 'auto', not 'yes'"):
        should_split("yes", big, 4)
    # The plan measures what it would split: hierarchical logistic's 1001 rows of g, X, y.
    name, model, data = models()[0]
    sharding = model.condition(data).lowered.plan.sharding
    assert sharding.nbytes == 1001 * (8 + 3 * 8 + 8)


def test_the_command_line_takes_shard_data_alone_or_auto():
    from pplc.cli import build_parser
    from pplc.errors import PplcError
    parse = lambda *a: build_parser().parse_args(["sample", "m.ppl", "--data", "d", *a])
    assert parse().shard_data is False
    assert parse("--shard-data").shard_data is True
    assert parse("--shard-data", "auto").shard_data == "auto"
    assert build_parser().parse_args(["sample", "m.ppl", "--shard-data", "--data", "d"]
                                     ).shard_data is True
    with pytest.raises(PplcError, match="invalid choice: 'yes'"):
        parse("--shard-data", "yes")


# ---------------------------------------------------------------- several devices
def run_on_devices(devices: int, *what: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, __file__, *what], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("devices", [4, 8])
def test_log_density_and_gradient_equal_one_devices(devices):
    results = run_on_devices(devices, "density")
    assert results["devices"] == devices
    for name, r in results["models"].items():
        # The same terms summed in another order: rounding only (~1e-16 relative).
        assert r["value_rel"] <= 1e-12, (name, r)
        assert r["grad_rel"] <= 1e-12, (name, r)
        # The split arrays really are split: each device holds ceil(rows / devices).
        for array, (shard_rows, rows) in r["shards"].items():
            assert shard_rows == -(-rows // devices), (name, array, shard_rows, rows)
    # A whole-array statement (`y ~ Bernoulli(logits=a[g] + X @ beta)`) runs split: no
    # floating-point row of the data crosses devices, only partial sums (of the density
    # and of the gradient: 1 + 20 + 3 values). The integer group index g is gathered whole
    # by XLA's partitioning of the gradient's scatter into `a` (4 bytes a row).
    hier = results["models"]["hierarchical_logistic"]["collectives"]
    assert all(n < 1001 for op, kind, n in hier if kind == "f64"), hier


def test_loops_over_rows_split_without_moving_rows_when_the_devices_divide_them():
    # 1000 rows on 4 devices, loops that read y[n], X[n], g[n] and alpha[g[n]]: the rows
    # are mapped along the loop (backends/rows.py), so XLA's partitioner splits the loop
    # like a whole-array statement: only partial sums (of the density and of the gradient:
    # at most G = 20 values) cross devices, no row of the data. 1001 rows (the density
    # test above) are read by gathers instead, exact too.
    results = run_on_devices(4, "even")
    for name, r in results.items():
        assert r["value_rel"] <= 1e-12 and r["grad_rel"] <= 1e-12, (name, r)
        assert r["collectives"], name   # the split did happen
        assert all(n <= 20 for op, kind, n in r["collectives"]), (name, r["collectives"])


def test_sample_with_auto_splits_large_data_and_keeps_small_data_whole():
    # 4 devices; the threshold lowered (the subprocess side) so that 1001 rows count as
    # large at 2000 bytes a device and as small at 10^6: sample() hands the split to NUTS
    # in the first case only.
    r = run_on_devices(4, "auto")
    assert r == {"large": {"g": 0, "y": 0}, "small": None}, r


@pytest.mark.slow
def test_posterior_of_hierarchical_logistic_matches_the_unsharded_run():
    r = run_on_devices(4, "posterior")
    # Same seed, but NUTS is chaotic: summation order changes the path after a few
    # iterations, so the two runs are compared as independent runs: the difference of two
    # means, each with its Monte Carlo standard error, within 4 standard errors of the
    # difference (a 6e-5 chance per parameter of failing if both are right).
    for name, (mean_a, se_a, mean_b, se_b) in r.items():
        assert abs(mean_a - mean_b) <= 4 * np.hypot(se_a, se_b), (name, r[name])


@pytest.mark.slow
def test_every_chain_method_samples_with_split_data():
    # 8 devices, 2 chains: vectorized on a (chain 2 x data 4) mesh; sequential and
    # parallel on the (data 8) mesh. Short runs: that they run and give finite draws (the
    # posterior itself is compared above, the meshes below). Here and in the posterior
    # and end-to-end runs metric diag: the split is the point, and the diagonal program
    # compiles faster than the low-rank one auto picks (25 parameters).
    r = run_on_devices(8, "methods")
    assert r == {m: [2, 30, True] for m in ("vectorized", "sequential", "parallel")}, r


@pytest.mark.slow
def test_pplc_sample_shard_data_end_to_end(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pplc.cli", "sample", str(HIER), "--data",
                           str(HIER.parent / "data.json"), "--shard-data", "--chains", "2",
                           "--warmup", "50", "--draws", "50", "--metric", "diag", "--quiet",
                           "--summary", str(tmp_path / "s.json")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "beta[2]" in done.stdout
    assert (tmp_path / "s.json").exists()


def test_the_data_axis_gets_at_least_two_devices_and_chains_what_divides_the_rest():
    from pplc.inference.sharding import chain_and_data_shape
    assert chain_and_data_shape(8, 2, batched=True) == (2, 4)
    assert chain_and_data_shape(8, 4, batched=True) == (4, 2)
    assert chain_and_data_shape(4, 4, batched=True) == (2, 2)
    assert chain_and_data_shape(4, 3, batched=True) == (1, 4)
    assert chain_and_data_shape(4, 1, batched=True) == (1, 4)
    assert chain_and_data_shape(8, 4, batched=False) == (1, 8)
    assert chain_and_data_shape(1, 4, batched=True) == (1, 1)


# ---------------------------------------------------------------- the subprocess side
def _density() -> dict:
    import jax
    from pplc.inference.sharding import Placement, sharded_value_and_grad
    out = {}
    for name, model, data in models():
        conditioned = model.condition(data)
        axes = dict(conditioned.lowered.plan.sharding.axes)
        u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.5
        value, grad = conditioned.value_and_grad(u)
        split = sharded_value_and_grad(conditioned._log_density, conditioned.data, axes)
        value_s, grad_s = split(u)
        placed = Placement.make(axes, conditioned.data).place(conditioned.data)
        shards = {a: (placed[a].addressable_shards[0].data.shape[axes[a]],
                      int(np.shape(conditioned.data[a])[axes[a]])) for a in axes}
        out[name] = {"value_rel": float(abs(value - value_s) / abs(value)),
                     "grad_rel": float(np.max(np.abs(grad - grad_s)) / np.max(np.abs(grad))),
                     "shards": shards, "collectives": _collectives(split, u)}
    return {"devices": len(jax.devices()), "models": out}


def _collectives(split, u) -> list[tuple[str, str, int]]:
    """(op, element type, elements) of each collective of the split program that
    `split(u)` ran (its text, not a second compilation of it)."""
    import re
    text = split.compiled_text(u)
    out = []
    for op, shapes in re.findall(r"= (.*?) (all-gather|all-reduce|all-to-all|"
                                 r"collective-permute|reduce-scatter)\(", text):
        for kind, dims in re.findall(r"(\w+)\[([\d,]*)\]", op):
            out.append((shapes, kind, int(np.prod([int(d) for d in dims.split(",") if d]))))
    return out




def _even() -> dict:
    """The loop forms at 1000 rows (divided by 4 devices): equality and collectives."""
    import pplc
    from pplc.inference.sharding import sharded_value_and_grad
    rng = np.random.default_rng(7)
    n, groups = 1000, 20
    cases = {"loop logistic": (HIER_LOGISTIC_SOURCE, {
                 "N": n, "G": groups, "K": 3, "g": rng.integers(0, groups, n),
                 "X": rng.normal(size=(n, 3)), "y": rng.integers(0, 2, n)}),
             "grouped": (GROUPED, {"N": n, "G": groups, "g": rng.integers(0, groups, n),
                                   "y": rng.normal(size=n)})}
    out = {}
    for name, (source, data) in cases.items():
        conditioned = pplc.compile(source).condition(data)
        axes = dict(conditioned.lowered.plan.sharding.axes)
        u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.5
        value, grad = conditioned.value_and_grad(u)
        split = sharded_value_and_grad(conditioned._log_density, conditioned.data, axes)
        value_s, grad_s = split(u)
        out[name] = {"value_rel": float(abs(value - value_s) / abs(value)),
                     "grad_rel": float(np.max(np.abs(grad - grad_s)) / np.max(np.abs(grad))),
                     "collectives": _collectives(split, u)}
    return out


def _auto() -> dict:
    import pplc.backends.sharding as plan_sharding
    import pplc.conditioned
    from pplc.errors import InternalError

    class Handed(Exception):
        pass

    def handed(*args, shard_data=None, **kwargs):
        raise Handed(shard_data)

    pplc.conditioned.sample_nuts = handed   # what sample() would run, not the run
    name, model, data = models()[1]
    conditioned = model.condition(data)
    out = {}
    for label, threshold in (("large", 2000), ("small", 10**6)):
        plan_sharding.AUTO_MIN_BYTES_PER_DEVICE = threshold
        try:
            conditioned.sample(chains=1, warmup=10, draws=10, progress=False,
                               shard_data="auto")
        except InternalError as exc:   # the public method wraps what it did not expect
            assert isinstance(exc.__cause__, Handed), exc
            out[label] = exc.__cause__.args[0]
    return out


def _posterior() -> dict:
    import arviz
    name, model, data = models()[0]
    conditioned = model.condition(data)
    runs = [conditioned.sample(chains=4, warmup=300, draws=300, seed=3, progress=False,
                               chain_method="vectorized", shard_data=shard, metric="diag")
            for shard in (False, True)]
    out = {}
    for var in ("mu_a", "sigma_a", "beta"):
        draws = [np.asarray(p[var]).reshape(4, 300, -1) for p in runs]
        for k in range(draws[0].shape[-1]):
            row = []
            for d in draws:
                row += [float(d[..., k].mean()),
                        float(np.ravel(arviz.mcse(d[..., k]))[0])]   # shape (1,) in ArviZ 0.23
            out[f"{var}[{k}]"] = row
    return out


def _methods() -> dict:
    name, model, data = models()[1]
    conditioned = model.condition(data)
    out = {}
    for method in ("vectorized", "sequential", "parallel"):
        posterior = conditioned.sample(chains=2, warmup=30, draws=30, seed=0, progress=False,
                                       chain_method=method, shard_data=True, metric="diag")
        draws = np.asarray(posterior["alpha"])
        out[method] = [draws.shape[0], draws.shape[1], bool(np.isfinite(draws).all())]
    return out


if __name__ == "__main__":
    print(json.dumps({"density": _density, "posterior": _posterior, "even": _even,
                      "auto": _auto,
                      "methods": _methods}[sys.argv[1]]()))
