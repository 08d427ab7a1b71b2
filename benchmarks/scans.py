"""Recurrences' gradients by scan strategy, beside NumPyro's, in one process (issue 16 item 4).

    python -m benchmarks.scans [--rounds 5] [--quick]

Two models: the user-written forward algorithm of a two-state HMM over T = 416 steps
(`HMM`, a log-semiring matrix recurrence) and the noncentered stochastic volatility
example over T = 500 (a linear recurrence, the suite's data). Each pplc row is the same
conditioned model with its recurrence's strategy set by hand in the plan:

  general       the whole expression evaluated per step (the scan before scan_forms.py)
  sequential    the form's parts computed at every step at once, then a sequential scan
                (unrolled x1, x2, x4, x8)
  parallel      the same parts, then a parallel prefix scan (lax.associative_scan)

and the NumPyro rows are the model as a NumPyro user writes it (a `lax.scan` carrying
the previous row). Every figure is µs per value-and-gradient in a long compiled loop, the
min and median of `--rounds` interleaved rounds (`measure`); benchmarks/scans.md has a run
and its reading.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.gradfloor import gradient_loop

ROOT = Path(__file__).resolve().parents[1]

HMM = """\
data T: int
data y: real[T]

def normal_lpdf(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - log(scale) - 0.5 * log(2 * pi)

mu: ordered[2] ~ Normal(0, 3)
sigma ~ HalfNormal(2)
p1 ~ Beta(2, 2)
p2 ~ Beta(2, 2)
for k in range(2):
    alpha[0, k] = log(0.5) + normal_lpdf(y[0], mu[k], sigma)
log_Gamma = log(stack([stack([p1, 1 - p1]), stack([1 - p2, p2])]))
for t in range(1, T):
    for k in range(2):
        alpha[t, k] = logsumexp(alpha[t - 1] + log_Gamma[:, k]) + normal_lpdf(y[t], mu[k], sigma)
factor logsumexp(alpha[T - 1])
"""


def hmm_data(T: int = 416, seed: int = 0) -> dict:
    """A two-state chain staying put with probability 0.9, emissions N(-1 or 1, 0.7)."""
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.random(T) < 0.1) % 2
    return {"T": T, "y": (np.where(z == 0, -1.0, 1.0) + rng.normal(0, 0.7, T)).tolist()}


def numpyro_hmm(T, y):
    """The same density as HMM, written for NumPyro: emissions vectorized, then a scan."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp
    from numpyro.distributions import constraints

    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    numpyro.factor("mu_prior", dist.Normal(0.0, 3.0).log_prob(mu).sum())
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    p1 = numpyro.sample("p1", dist.Beta(2.0, 2.0))
    p2 = numpyro.sample("p2", dist.Beta(2.0, 2.0))
    log_gamma = jnp.log(jnp.array([[p1, 1 - p1], [1 - p2, p2]]))
    emission = dist.Normal(mu, sigma).log_prob(jnp.asarray(y)[:, None])

    def step(alpha, e):
        return logsumexp(alpha[:, None] + log_gamma, axis=0) + e, None

    alpha, _ = jax.lax.scan(step, jnp.log(0.5) + emission[0], emission[1:])
    numpyro.factor("forward", logsumexp(alpha))


def _variants(model, key) -> dict:
    """The conditioned model's lowered model under each strategy (a plan set by hand)."""
    lowered = model.lowered

    def with_scan(**fields):
        scan = replace(lowered.plan.scans[key], **fields)
        return replace(lowered, plan=replace(lowered.plan,
                                             scans={**lowered.plan.scans, key: scan}))

    from pplc.backends import scan_forms

    scan = lowered.plan.scans[key]
    form = scan_forms.form_of(key[0], lowered.graph[key[0]].pieces[key[1]], scan.axis,
                              scan.lags)
    out = {"pplc general (per-step expression)": with_scan(form="", parallel=False, unroll=1)}
    for unroll in (1, 2, 4, 8):
        out[f"pplc {form}, sequential x{unroll}"] = with_scan(form=form, parallel=False,
                                                              unroll=unroll)
    out[f"pplc {form}, parallel prefix"] = with_scan(form=form, parallel=True, unroll=1)
    out["pplc as planned"] = lowered
    return out


def _numpyro_density(model_fn, kwargs):
    import jax
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), model_fn, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    return (lambda x, _: -info.potential_fn(unravel(x))), np.full(flat.shape[0], 0.1)


def cases(quick: bool = False) -> dict:
    """model -> {label: (log density(x, data), x0, data)}."""
    import json
    import tempfile

    import pplc
    from benchmarks import datasets
    from benchmarks.numpyro_models import model_and_kwargs

    out = {}
    data = hmm_data(60 if quick else 416)
    hmm = pplc.compile(HMM).condition(data)
    rows = {label: (lowered.log_density, np.full(hmm.dim, 0.1), lowered.runtime_data())
            for label, lowered in _variants(hmm, ("alpha", 1)).items()}
    rows["NumPyro (scan carrying the row)"] = _numpyro_density(numpyro_hmm, data) + (None,)
    out[f"HMM forward algorithm, 2 states, T = {data['T']}"] = rows

    with tempfile.TemporaryDirectory() as tmp:
        path = datasets.write_stochastic_volatility_data(Path(tmp) / "sv.json",
                                                         t=50 if quick else 500)
        sv_data = json.loads(path.read_text())
        sv = pplc.compile((ROOT / "examples" / "stochastic_volatility" /
                           "model_noncentered.ppl").read_text()).condition(str(path))
    rows = {label: (lowered.log_density, np.full(sv.dim, 0.1), lowered.runtime_data())
            for label, lowered in _variants(sv, ("h", 1)).items()}
    model, kwargs = model_and_kwargs("stochastic_volatility_noncentered", sv_data)
    rows["NumPyro (scan carrying h[t - 1])"] = _numpyro_density(model, kwargs) + (None,)
    out[f"stochastic volatility (noncentered), T = {sv_data['T']}"] = rows
    return out


def measure(rounds: int, quick: bool = False, target_s: float = 0.08) -> dict:
    """model -> {label: (min, median) µs per value-and-gradient over interleaved rounds}.

    Each round times one long loop per row (about `target_s`) and divides by its length:
    a call's fixed cost is a few µs in 0.08 s. (gradfloor's difference of two loop lengths,
    each the best of 5, comes out too low whenever load slowed the short loop's best more
    than the long one's: on a loaded machine its figures swung by 2x between rows of the
    same program.)"""
    import time

    import jax
    import jax.numpy as jnp

    table = cases(quick)
    prepared, times = {}, {}
    for model, rows in table.items():
        for label, (fn, x0, data) in rows.items():
            loop, x0 = gradient_loop(fn), jnp.asarray(x0)
            jax.block_until_ready(loop(x0, data, 10))
            start = time.perf_counter()
            jax.block_until_ready(loop(x0, data, 200))
            n = max(200, int(200 * target_s / (time.perf_counter() - start)))
            prepared[(model, label)] = (loop, x0, data, n)
    for _ in range(rounds):
        for key, (loop, x0, data, n) in prepared.items():
            start = time.perf_counter()
            jax.block_until_ready(loop(x0, data, n))
            times.setdefault(key, []).append(1e6 * (time.perf_counter() - start) / n)
    best: dict = {m: {} for m in table}
    for (model, label), us in times.items():
        best[model][label] = (min(us), float(np.median(us)))
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="small T, one round (a smoke test)")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    best = measure(1 if args.quick else args.rounds, args.quick)
    for model, rows in best.items():
        reference = next(us[0] for label, us in rows.items() if label.startswith("NumPyro"))
        print(f"## {model}\n\n| strategy | µs per gradient, min | median | min / NumPyro's |"
              "\n|---|---:|---:|---:|")
        for label, (low, median) in rows.items():
            print(f"| {label} | {low:.1f} | {median:.1f} | {low / reference:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
