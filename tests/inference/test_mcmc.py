"""The driver: reproducibility, no recompilation, chain methods and chunking agree."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.inference import sample_nuts


def _regression(x, data):
    mu = data["X"] @ x[:-1]
    sigma = jnp.exp(x[-1])
    return -0.5 * jnp.sum(((data["y"] - mu) / sigma) ** 2) - data["y"].shape[0] * x[-1] - 0.5 * jnp.sum(x**2)


def _data(seed, n=50, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    return {"X": X, "y": X @ np.arange(1.0, k + 1) + rng.normal(size=n)}


X0 = np.zeros((2, 4))
KW = dict(num_warmup=150, num_samples=100)




def test_same_seed_same_draws_and_new_seed_new_draws():
    a = sample_nuts(_regression, _data(0), X0, jax.random.key(0), **KW)
    b = sample_nuts(_regression, _data(0), X0, jax.random.key(0), **KW)
    c = sample_nuts(_regression, _data(0), X0, jax.random.key(1), **KW)
    np.testing.assert_array_equal(a.positions, b.positions)
    for name in a.stats:
        np.testing.assert_array_equal(a.stats[name], b.stats[name])
    assert not np.allclose(a.positions, c.positions)


@pytest.mark.parametrize("method", ["vectorized", "sequential", "parallel"])
def test_no_recompilation_on_new_seed_or_data(method, count_compiles):
    sample_nuts(_regression, _data(0), X0, jax.random.key(0), chain_method=method, **KW)
    with count_compiles() as compiles:
        r1 = sample_nuts(_regression, _data(1), X0, jax.random.key(7), chain_method=method, **KW)
        r2 = sample_nuts(_regression, _data(2), X0, jax.random.key(8), chain_method=method,
                         num_warmup=90, num_samples=230)
    assert compiles == []
    assert r1.compile_seconds == 0.0 and r2.compile_seconds == 0.0
    assert r2.positions.shape == (2, 230, 4)


def test_data_is_a_runtime_argument():
    # New data of the same shape changes the answer without recompiling: the posterior
    # mean of the coefficients follows the data.
    d1, d2 = _data(3), _data(4)
    d2 = {"X": d2["X"], "y": -d2["y"]}
    r1 = sample_nuts(_regression, d1, X0, jax.random.key(0), **KW)
    r2 = sample_nuts(_regression, d2, X0, jax.random.key(0), **KW)
    assert r1.positions[..., 2].mean() > 2 and r2.positions[..., 2].mean() < -2


def test_sequential_and_parallel_are_identical():
    a = sample_nuts(_regression, _data(0), X0, jax.random.key(3), chain_method="sequential", **KW)
    b = sample_nuts(_regression, _data(0), X0, jax.random.key(3), chain_method="parallel", **KW)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.step_size, b.step_size)


def test_vectorized_matches_sequential():
    # Same per-chain random streams; vmap only changes floating-point rounding (fusion and
    # reduction order, ~1e-16), which NUTS's discrete choices amplify only rarely, so a
    # short run agrees to rounding.
    kw = dict(num_warmup=0, num_samples=30)
    a = sample_nuts(_regression, _data(0), X0 + 0.1, jax.random.key(3), chain_method="sequential", **kw)
    b = sample_nuts(_regression, _data(0), X0 + 0.1, jax.random.key(3), chain_method="vectorized", **kw)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-9)
    np.testing.assert_array_equal(a.stats["n_steps"], b.stats["n_steps"])


def test_chunking_does_not_change_draws_and_reports_progress():
    calls = []
    a = sample_nuts(_regression, _data(0), X0, jax.random.key(5), chunk_size=64, **KW)
    b = sample_nuts(_regression, _data(0), X0, jax.random.key(5), chunk_size=37,
                    progress=lambda *args: calls.append(args), **KW)
    np.testing.assert_array_equal(a.positions, b.positions)
    warm = [c for c in calls if c[0] == "warmup"]
    samp = [c for c in calls if c[0] == "sampling"]
    assert [c[1] for c in warm] == [74, 148, 222, 296, 300] and all(c[2] == 300 for c in warm)
    assert [c[1] for c in samp] == [74, 148, 200] and all(c[2] == 200 for c in samp)
    assert calls.index(samp[0]) > calls.index(warm[-1])


def test_result_shapes_and_counts():
    r = sample_nuts(_regression, _data(0), X0, jax.random.key(0), **KW)
    assert r.positions.shape == (2, 100, 4)
    assert set(r.stats) == {"lp", "diverging", "tree_depth", "n_steps", "acceptance_rate", "energy", "step_size",
                            "reached_max_treedepth"}
    assert all(v.shape == (2, 100) for v in r.stats.values())
    assert r.complete is True
    assert r.step_size.shape == (2,) and r.inverse_mass_matrix.shape == (2, 4)
    assert r.n_grad_evals > r.stats["n_steps"].sum()  # warmup is included
    lp = np.array([[_regression(x, _data(0)) for x in chain[:3]] for chain in r.positions])
    np.testing.assert_allclose(r.stats["lp"][:, :3], lp, rtol=1e-10)


class _InterruptAt:
    """A progress callback that raises KeyboardInterrupt (as Ctrl-C would) at its n-th call of `phase`."""

    def __init__(self, phase, n):
        self.phase, self.n, self.calls = phase, n, []

    def __call__(self, phase, done, total, divergences):
        self.calls.append((phase, done))
        if phase == self.phase and sum(c[0] == phase for c in self.calls) == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("method", ["vectorized", "sequential", "parallel"])
def test_interrupt_during_sampling_returns_the_completed_draws(method):
    full = sample_nuts(_regression, _data(0), X0, jax.random.key(2), chain_method=method, chunk_size=40, **KW)
    stop = _InterruptAt("sampling", 2)
    part = sample_nuts(_regression, _data(0), X0, jax.random.key(2), chain_method=method, chunk_size=40,
                       progress=stop, **KW)
    assert full.complete and not part.complete
    # The interrupt came after the second sampling chunk had been recorded: 80 draws, and
    # the same ones as the uninterrupted run (the random stream does not depend on stopping).
    assert part.positions.shape == (2, 80, 4)
    np.testing.assert_array_equal(part.positions, full.positions[:, :80])
    for name, x in part.stats.items():
        np.testing.assert_array_equal(x, full.stats[name][:, :80])
    np.testing.assert_array_equal(part.step_size, full.step_size)
    assert part.n_grad_evals < full.n_grad_evals
    assert stop.calls[-1] == ("sampling", 160)  # no chunk ran after the interrupt


@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_interrupt_during_warmup_returns_no_draws(method):
    stop = _InterruptAt("warmup", 1)
    r = sample_nuts(_regression, _data(0), X0, jax.random.key(2), chain_method=method, chunk_size=40,
                    progress=stop, **KW)
    assert not r.complete
    assert r.positions.shape == (2, 0, 4)
    assert all(x.shape == (2, 0) for x in r.stats.values())
    assert [c[0] for c in stop.calls] == ["warmup"]


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test, whatever the process inherited. A pytest
    started in the background by a shell without job control (`cmd &` in a script) inherits
    SIGINT ignored, and Python then leaves it ignored: the signal these tests send would
    never arrive (both failed so, and looked flaky). The handler before is put back after."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_real_sigint_stops_threaded_chains_cleanly(python_sigint):
    # A real SIGINT sent while the worker threads are inside XLA: the main thread sees it
    # when it next runs Python (at a chunk boundary), the pool is drained, and the draws of
    # the whole chunks done so far come back. Should the run finish before the signal lands
    # (a slow machine), the KeyboardInterrupt is caught here and the test skipped.
    import os
    import signal
    import threading
    import time

    state = {"finished": False, "sent": False}

    def send():
        time.sleep(0.05)
        if not state["finished"]:
            state["sent"] = True
            os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=send)

    def progress(phase, done, total, divergences):
        if phase == "sampling" and not sender.is_alive() and not state["sent"] and done < total:
            sender.start()
        state["finished"] = phase == "sampling" and done == total

    threads_before = threading.active_count()
    kw = dict(num_warmup=100, num_samples=4000, chunk_size=20, chain_method="parallel")
    try:
        r = sample_nuts(_regression, _data(0), X0, jax.random.key(4), progress=progress, **kw)
        sender.join()
        time.sleep(0.01)  # a signal that arrived after the run would be raised here
    except KeyboardInterrupt:
        pytest.skip("the run ended before the signal arrived")
    assert state["sent"] and not r.complete
    n = r.positions.shape[1]
    assert 0 < n < 4000 and n % 20 == 0
    full = sample_nuts(_regression, _data(0), X0, jax.random.key(4), **kw)
    np.testing.assert_array_equal(r.positions, full.positions[:, :n])
    assert threading.active_count() == threads_before  # no worker left running


def test_a_sigint_whose_keyboard_interrupt_was_lost_still_stops_the_run(python_sigint):
    # Python runs the handler at the main thread's next bytecode, which may be inside a
    # finalizer or C++ that drops the KeyboardInterrupt: here a callback swallows it. The
    # run must still stop at the chunk boundary, and the default handler be back after it.
    import signal

    swallowed = []

    def progress(phase, done, total, divergences):
        if phase == "sampling" and not swallowed:
            try:
                signal.raise_signal(signal.SIGINT)   # handled before raise_signal returns
            except KeyboardInterrupt:
                swallowed.append(done)

    kw = dict(num_warmup=40, num_samples=200, chunk_size=20, chain_method="sequential")
    r = sample_nuts(_regression, _data(0), X0, jax.random.key(4), progress=progress, **kw)
    assert swallowed and not r.complete and r.positions.shape[1] == 20
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_auto_runs_chains_one_after_another_on_a_process_given_one_core():
    """"auto" counts the cores the process may use (taskset, a cpuset, a test worker), not
    the machine's: two threads on one core only take turns."""
    from pplc.inference import mcmc, nuts_programs

    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert mcmc.available_cores() == 1
        # (several JAX devices make "auto" shard the chains over them instead)
        expected = "sequential" if nuts_programs.chain_mesh(4) is None else "vectorized"
        assert nuts_programs.auto_method(4) == expected
    finally:
        os.sched_setaffinity(0, before)
    assert mcmc.available_cores() == len(before)
