"""Settings for the whole test session, and for the `pplc` processes that tests start.

`make test` must finish in 10 minutes on two cores (issue 16, item 7); XLA compilation is
a third of the suite's time. These settings do not change what any test computes:

* One persistent XLA compilation cache for the session, in a temporary folder that the
  pytest-xdist workers and the `pplc` processes they start share (`PPLC_CACHE_DIR`, made by
  the controller before it starts the workers, which inherit it). Most tests build their
  model afresh, so JAX's in-memory cache, keyed by the Python function, misses; the disk
  cache, keyed by the program's text, finds a program that another test, worker or
  process compiled before, as a user's second `pplc sample` would. The tests also leave
  the user's own cache (~/.cache/pplc) alone and cannot read a stale one. Measured by CPU
  time (benchmarks/suite_time.md): 8% less on passes/test_marginalize.py, 4% less on
  test_log_density_oracle.py.
  Safe to share: a cache entry is keyed by the program, the JAX/XLA versions and flags, so
  a loaded executable is the one a compile would give; JAX writes entries without a lock,
  but a half-written entry fails to decompress and JAX compiles instead (with a warning).
  A program loaded from the cache still emits JAX's compile event, so the tests that count
  compilations keep counting (inference/test_count_compiles.py).
  PPLC_TEST_NO_CACHE=1 runs without it; set PPLC_CACHE_DIR yourself to keep one across
  sessions.
* PPLC_TEST_PIN=1 puts each xdist worker, and every process it starts, on its own share of
  the cores (its affinity); pplc's "auto" chain method then runs a worker's chains one
  after another instead of two threads per worker contending for the same two cores. A
  chain's draws do not depend on the chain method. Off by default: it saved no CPU time in
  our measurement, and on a machine shared with other work a pinned worker cannot move off
  a busy core.
* The longest tests start first (`pytest_collection_modifyitems`): those in LONGEST by
  their measured cost, then the other tests marked slow, then the rest in file order.
  `make test` runs `pytest -n 2 --dist worksteal`: each worker starts on half of that
  order and a worker that runs out takes half of what the other has not started, from its
  end (the shortest tests). So no worker starts a 3-minute test while the other is nearly
  done, which the default `--dist load` allowed: it hands out runs of consecutive tests
  in file order, and the slowest tests (conformance, build, the benchmark harness, the ODE
  example) sat together three quarters of the way in. Under `--dist load` the order is
  left alone: there longest-first would give one worker all of them in its first run.
"""

from __future__ import annotations

import os
import shutil
import tempfile

# CPU seconds of the longest tests (test + children), from the fifth session's whole-suite
# profile and the helpers' per-file reruns after their cuts (benchmarks/suite_time.md);
# a node id prefix matches each parametrized case. Only the order depends on these.
LONGEST = {
    "tests/test_benchmarks_smoke.py::test_whole_quick_run_with_numpyro": 90,
    "tests/test_distributed.py::test_four_processes_from_python_": 62,
    "tests/test_distributed.py::test_two_processes_write_the_draws_": 50,
    "tests/test_distributed.py::test_vectorized_chains_across_processes_": 39,
    "tests/test_build_command.py::test_language_features_": 26,
    "tests/test_conformance.py::test_reproduces_reference_posterior[gp_pois_regr-": 22,
    "tests/test_build_command.py::test_every_example_module_": 22,
    "tests/passes/test_partial_noncentering.py::test_radon_style_groups_": 21,
    "tests/test_build_command.py::test_every_conformance_module_": 20,
    "tests/test_sharding.py::test_posterior_of_hierarchical_logistic_": 20,
    "tests/test_distributed.py::test_each_process_reads_and_holds_": 20,
    "tests/passes/test_marginalize.py::test_marginalized_mixture_reproduces_": 19,
    "tests/test_conformance.py::test_reproduces_reference_posterior[kidiq-": 16,
    "tests/passes/test_reparameterize.py::test_centered_choice_is_at_least_": 15,
    "tests/test_sharding.py::test_every_chain_method_samples_with_split_data": 14,
    "tests/inference/test_sbc.py::test_nuts_is_calibrated[hierarchical]": 13,
    "tests/test_examples_more.py::test_damped_oscillator_": 13,
    "tests/test_conformance.py::test_reproduces_reference_posterior[low_dim_gauss_mix-": 12,
    "tests/inference/test_sbc.py::test_nuts_is_calibrated[logistic]": 12,
    "tests/test_conformance.py::test_reproduces_reference_posterior[hudson_lynx_hare-": 11,
    "tests/inference/test_sbc.py::test_nuts_is_calibrated[normal]": 10,
}
SLOW_MARKED = 15   # a test marked slow takes more than ~10 s (pyproject.toml's markers)

_made: list[str] = []   # the cache folder this process made (the controller), to delete


def pytest_configure(config):
    _pin_worker()
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers)
        # Longest first helps --dist worksteal and a single process; under --dist load
        # (plain `pytest -n 2`) it would put all the longest tests in one worker's first
        # run of consecutive tests, so file order is kept there. Workers inherit this.
        longest_first = config.getoption("dist", default="no") in ("worksteal", "no")
        os.environ["PPLC_TEST_LONGEST_FIRST"] = "1" if longest_first else ""
    import pplc.jax_x64  # noqa: F401 - float64, as pplc computes, before any test builds an array

    if os.environ.get("PPLC_TEST_NO_CACHE"):
        return
    if not os.environ.get("PPLC_CACHE_DIR"):
        os.environ["PPLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="pplc-test-cache-")
        _made.append(os.environ["PPLC_CACHE_DIR"])
    from pplc.cache import enable_compilation_cache

    enable_compilation_cache()


def pytest_collection_modifyitems(config, items):
    """Longest first (see the module docstring); a stable sort keeps file order among the
    rest, so a module's tests stay together and its module-scoped fixtures are rarely
    built twice."""
    if os.environ.get("PPLC_TEST_LONGEST_FIRST"):
        items[:] = sorted(items, key=lambda item: -_expected_seconds(item))


def _expected_seconds(item) -> float:
    for prefix, seconds in LONGEST.items():
        if item.nodeid.startswith(prefix):
            return seconds
    return SLOW_MARKED if item.get_closest_marker("slow") else 0


def pytest_unconfigure(config):
    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)


def _pin_worker() -> None:
    """Worker i of n runs on every n-th of the cores this session may use, from the i-th."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")          # "gw0", "gw1", ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if (not os.environ.get("PPLC_TEST_PIN") or not worker.startswith("gw") or count < 2
            or not hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < count:
        return  # more workers than cores: the kernel shares them out best
    os.sched_setaffinity(0, cores[int(worker[2:]) % count::count])
