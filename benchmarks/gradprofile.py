"""Where a gradient's time goes: one model's bare value-and-gradient, pplc against NumPyro,
with the data as runtime arguments and as compile-time constants.

    python -m benchmarks.gradprofile hier_logistic_5000_G50 [more models...]
    python -m benchmarks.gradprofile --forms    # the two lowering comparisons below

pplc passes data to its compiled programs at run time (one program for every data set of the
same shapes); NumPyro's potential closes over them, so XLA sees them as constants and can fold
whatever depends on the data alone (support checks, casts, index arithmetic). This script
separates the two effects: for each model it times, in one process and interleaved,

  pplc (runtime data)      what pplc's sampler pays per gradient
  pplc (data as constants) the same density with the data closed over
  NumPyro (constants)      what NumPyro's sampler pays
  NumPyro (runtime data)   NumPyro's model with its data passed as arguments

each with `gradfloor.calibrated_in_loop_seconds` (best of several runs), plus the number of
HLO instructions XLA keeps after optimization.

`--forms` times, in pure JAX, two ways of writing the same density where pplc's lowering and
NumPyro's differ (results.md, "Profiling notes"): a Bernoulli-logit likelihood as NumPyro
writes it against pplc's `log_sigmoid` form, and a first-order recurrence as a scan whose
carry is the whole array (pplc's) against one carrying the previous element only.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def _hlo_size(jax, fn, *args) -> int:
    text = jax.jit(jax.value_and_grad(fn)).lower(*args).compile().as_text()
    return sum(1 for line in text.splitlines() if " = " in line)


def profile(name: str, folder: Path) -> dict:
    import jax
    import numpy as np
    from numpyro.infer.util import initialize_model
    from jax.flatten_util import ravel_pytree

    import pplc
    from benchmarks import gradfloor, suite
    from benchmarks.numpyro_models import model_and_kwargs

    spec = suite.SPEC_BY_NAME[name]
    data_path = spec.make_data(folder, False)
    cm = pplc.compile(spec.ppl).condition(str(data_path))
    x0 = np.full(cm.dim, 0.1)
    pplc_runtime = cm.lowered.log_density
    const_data = jax.tree_util.tree_map(np.asarray, cm.data)

    def pplc_const(x, _):
        return cm.lowered.log_density(x, const_data)

    model, kwargs = model_and_kwargs(spec.numpyro, json.loads(Path(data_path).read_text()))
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)

    def numpyro_const(x, _):
        return -info.potential_fn(unravel(x))

    from numpyro.infer.util import potential_energy

    def numpyro_runtime(x, data):
        return -potential_energy(model, (), data, unravel(x))

    y0 = np.full(flat.shape[0], 0.1)
    runtime_kwargs = {k: (jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v)
                      for k, v in kwargs.items()}
    static = {k: v for k, v in runtime_kwargs.items() if not hasattr(v, "shape")}
    arrays = {k: v for k, v in runtime_kwargs.items() if hasattr(v, "shape")}

    def numpyro_runtime_arrays(x, arrays):
        return numpyro_runtime(x, {**arrays, **static})

    cases = {"pplc (runtime data)": (pplc_runtime, x0, cm.data),
             "pplc (data as constants)": (pplc_const, x0, None),
             "NumPyro (constants)": (numpyro_const, y0, None),
             "NumPyro (runtime data)": (numpyro_runtime_arrays, y0, arrays)}
    out = {}
    for label, (fn, x, data) in cases.items():
        times = [gradfloor.calibrated_in_loop_seconds(fn, x, data) for _ in range(3)]
        out[label] = {"grad_us": min(times) * 1e6, "hlo_instructions": _hlo_size(jax, fn, x, data)}
    return out


def bernoulli_forms(n: int = 5000, groups: int = 50, k: int = 5) -> dict[str, float]:
    """µs per value-and-gradient of sum log Bernoulli(y | logits = a[g] + X beta), 3 ways."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks import gradfloor

    rng = np.random.default_rng(0)
    data = {"X": jnp.asarray(rng.normal(size=(n, k))), "g": jnp.asarray(rng.integers(0, groups, n)),
            "y": jnp.asarray((rng.random(n) < 0.5).astype(np.int64))}

    def logits(x, d):
        return x[:groups][d["g"]] + d["X"] @ x[groups:]

    def numpyro_form(x, d):  # -binary_cross_entropy_with_logits
        z, y = logits(x, d), d["y"].astype(float)
        return -jnp.sum(jnp.clip(z, 0) + jnp.log1p(jnp.exp(-jnp.abs(z))) - z * y)

    def log_sigmoid_form(x, d):  # pplc's lowering: log_sigmoid(+-z), support masks
        z, y = logits(x, d), d["y"].astype(float)
        ok = (y == 0) | (y == 1)
        lp = jax.nn.log_sigmoid(jnp.where(jnp.where(ok, y, 0.0) == 1, z, -z))
        return jnp.sum(jnp.where(ok, lp, -jnp.inf))

    def linear_only(x, d):
        return jnp.sum(logits(x, d))

    x0 = np.full(groups + k, 0.1)
    forms = {"NumPyro's form": numpyro_form, "pplc's log_sigmoid form": log_sigmoid_form,
             "gather + matvec alone": linear_only}
    return {label: 1e6 * min(gradfloor.calibrated_in_loop_seconds(f, x0, data)
                             for _ in range(3)) for label, f in forms.items()}


def recurrence_forms(t: int = 500) -> dict[str, float]:
    """µs per value-and-gradient of the noncentered stochastic-volatility density with
    h[t] = mu + phi (h[t-1] - mu) + sigma z[t] as a scan, two ways."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from benchmarks import gradfloor

    def whole_array_carry(x):  # pplc's lowering: carry h, write h[t] with a scatter
        mu, phi, sigma, z = x[0], x[1], x[2], x[3:]
        h0 = jnp.zeros(t).at[0].set(mu + sigma / jnp.sqrt(1 - phi**2) * z[0])

        def body(h, i):
            return h.at[i].set(mu + phi * (h[i - 1] - mu) + sigma * z[i]), None

        return jax.lax.scan(body, h0, jnp.arange(1, t))[0]

    def previous_element_carry(x):  # NumPyro's: carry h[t-1], stack the outputs
        mu, phi, sigma, z = x[0], x[1], x[2], x[3:]
        h0 = mu + sigma / jnp.sqrt(1 - phi**2) * z[0]

        def body(prev, zi):
            h = mu + phi * (prev - mu) + sigma * zi
            return h, h

        return jnp.concatenate([h0[None], jax.lax.scan(body, h0, z[1:])[1]])

    def density(path):
        def logdensity(x, y):
            return -0.5 * jnp.sum(x[3:] ** 2) + jnp.sum(
                jax.scipy.stats.norm.logpdf(y, 0.0, jnp.exp(path(x) / 2)))
        return logdensity

    y = jnp.asarray(np.random.default_rng(0).normal(size=t))
    x0 = np.full(t + 3, 0.1)
    forms = {"whole-array carry + scatter (pplc)": whole_array_carry,
             "previous-element carry (NumPyro)": previous_element_carry}
    return {label: 1e6 * min(gradfloor.calibrated_in_loop_seconds(density(f), x0, y)
                             for _ in range(3)) for label, f in forms.items()}


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["hier_logistic_5000_G50"]
    import jax

    jax.config.update("jax_enable_x64", True)
    if names == ["--forms"]:
        for title, res in (("Bernoulli-logit likelihood, 5000 rows", bernoulli_forms()),
                           ("recurrence over T = 500", recurrence_forms())):
            print(f"## {title}")
            for label, us in res.items():
                print(f"  {label:36s} {us:10.2f} µs")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            res = profile(name, Path(tmp))
            print(f"## {name}")
            for label, r in res.items():
                print(f"  {label:28s} {r['grad_us']:10.2f} µs   {r['hlo_instructions']} HLO instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
