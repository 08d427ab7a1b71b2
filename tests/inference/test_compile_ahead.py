"""The sampler's programs compiled ahead, on background threads (inference/nuts_programs.py,
`programs.compile_ahead`), while the starting points are found.

What must hold: the run uses the programs compiled ahead instead of compiling its own (the
keys agree: otherwise the work ahead is wasted CPU and the run is no sooner), the draws are
the same bits as without compiling ahead, and a program that fails to compile ahead raises
its error where the run asks for it.
"""

import threading

import jax
import numpy as np
import pytest

import pplc
from pplc.inference import programs
from pplc.inference.mcmc import sample_nuts
from pplc.inference.nuts_programs import compile_ahead

MODEL = """
data N: int
data y: real[N]
mu ~ Normal(0, 5)
sigma ~ HalfNormal(2)
z ~ Normal(0, 1)
y ~ Normal(mu + z, sigma)
"""
DATA = {"N": 5, "y": [0.3, -1.2, 2.2, 0.4, 1.1]}


def density(x, data):
    return -0.5 * ((x - data["mu"]) ** 2).sum()


def _compiled_during(run) -> tuple[int, object]:
    """(executables compiled or loaded whole from disk while `run()` ran, its result):
    another test may have turned `programs.persist_executables` on for this process. The
    background threads are waited for before and after: what `run()` started is counted
    whole, and nothing another test started."""
    def made():
        while running := [t for t in threading.enumerate() if t.name == "pplc-compile-ahead"]:
            for thread in running:
                thread.join()
        return sum(programs.counts().values())
    before = made()
    out = run()
    return made() - before, out


@pytest.mark.parametrize("metric, method", [("diag", "parallel"), ("dense", "sequential"),
                                            ("low-rank", "vectorized")])
def test_a_run_uses_the_programs_compiled_ahead_and_compiles_nothing_more(metric, method):
    settings = dict(num_warmup=120, num_samples=30, chain_method=method, metric=metric)
    data = {"mu": np.arange(3.0)}
    starts = np.random.default_rng(1).uniform(-2, 2, (2, 3))
    key = jax.random.PRNGKey(3)

    def own(x, d):   # a fresh function: nothing of it in the cache yet
        return density(x, d)

    ahead, _ = _compiled_during(lambda: compile_ahead(own, data, 2, 3, key, **settings))
    # the chunk program, and the window-end update for a dense or low-rank metric
    assert ahead == (1 if metric == "diag" else 2)
    more, result = _compiled_during(lambda: sample_nuts(own, data, starts, key, **settings))
    assert more == 0
    plain = sample_nuts(lambda x, d: density(x, d), data, starts, key, **settings)
    np.testing.assert_array_equal(result.positions, plain.positions)
    np.testing.assert_array_equal(result.step_size, plain.step_size)


def test_sample_compiles_the_same_programs_with_or_without_compiling_ahead(monkeypatch):
    """`ConditionedModel.sample` asks for exactly the programs the run then uses (the
    sampler's, and the constraining of its draws): as many programs compiled as with
    nothing compiled ahead, and the same draws."""
    def run():
        fit = pplc.compile(MODEL).condition(DATA)
        return _compiled_during(lambda: fit.sample(chains=2, warmup=150, draws=40, seed=2,
                                                   progress=False))

    with_ahead, posterior = run()
    monkeypatch.setattr("pplc.conditioned.compile_ahead", lambda *a, **k: None)
    monkeypatch.setattr("pplc.fit_matching.FitMatching._constrain_ahead", lambda *a, **k: None)
    without, plain = run()
    assert with_ahead == without
    for name in ("mu", "sigma", "z"):
        np.testing.assert_array_equal(posterior.draws[name], plain.draws[name])


def test_programs_compile_on_their_own_thread_and_the_caller_waits_for_them():
    names, gate = [], threading.Event()

    def build():
        names.append(threading.current_thread().name)
        gate.wait(30)   # still compiling when `compiled` asks for it
        return lambda x: x * 2.0

    def key_fn(x):
        return x

    programs.compile_ahead(key_fn, ("twice",), build, np.zeros(3))
    threading.Timer(0.2, gate.set).start()
    executable, waited = programs.compiled(key_fn, ("twice",), lambda: pytest.fail("compiled again"),
                                           np.zeros(3))
    assert names == ["pplc-compile-ahead"] and waited > 0.1
    np.testing.assert_array_equal(executable(np.ones(3)), 2.0 * np.ones(3))
    again, seconds = programs.compiled(key_fn, ("twice",), lambda: pytest.fail("compiled again"),
                                       np.zeros(3))
    assert again is executable and seconds == 0.0


def test_an_error_compiling_ahead_is_raised_where_the_program_is_asked_for_and_not_kept():
    def key_fn(x):
        return x

    def broken():
        raise ValueError("no such program")

    programs.compile_ahead(key_fn, ("broken",), broken, np.zeros(2))
    with pytest.raises(ValueError, match="no such program"):
        programs.compiled(key_fn, ("broken",), broken, np.zeros(2))
    executable, _ = programs.compiled(key_fn, ("broken",), lambda: lambda x: x + 1.0, np.zeros(2))
    np.testing.assert_array_equal(executable(np.zeros(2)), np.ones(2))
