"""A pytest plugin that records what each test costs in CPU, for benchmarks/suite_time.md.

Wall time means nothing on the shared two-core machine the suite is tuned on (issue 16,
item 7), so this records per test (setup + call + teardown): the CPU seconds of the pytest
process (all its threads) and of the child processes it waited for (`pplc` commands), the
XLA compilations JAX announced (count and seconds; a program loaded from the persistent
cache announces one too, so the cache hits are counted beside them) and the wall seconds.
One JSON line per test, plus a "<session>" line with what the process spent before its
first test (imports, collection), appended to the file named by PPLC_TEST_PROFILE.

Off unless asked for: `PYTHONPATH=tests PPLC_TEST_PROFILE=out.jsonl python -m pytest
-p cpu_profile -p no:xdist tests/runtime`; benchmarks/suite_profile.py sums the lines.
"""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

_COMPILE = "/jax/core/compile/backend_compile_duration"
_HIT = "/jax/compilation_cache/cache_hits"
_now = {"compiles": 0, "compile_s": 0.0, "hits": 0}
_programs: dict[str, list] = {}   # program name -> [compilations, CPU s] in the current test
_session = {"written": False}


def _on_duration(event, duration, **kwargs):
    if event == _COMPILE:
        _now["compiles"] += 1
        _now["compile_s"] += duration


def _on_event(event, **kwargs):
    if event == _HIT:
        _now["hits"] += 1


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _write(row: dict) -> None:
    with open(os.environ["PPLC_TEST_PROFILE"], "a") as out:
        out.write(json.dumps(row) + "\n")


def pytest_configure(config):
    import jax
    from jax._src import dispatch

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    jax.monitoring.register_event_listener(_on_event)
    dispatch.log_elapsed_time = _by_program(dispatch.log_elapsed_time, dispatch.BACKEND_COMPILE_EVENT)


def _by_program(log_elapsed_time, compile_event):
    """JAX's timing context manager, also adding each XLA compilation's process CPU seconds
    to its program's name (jit(run_chain), ...): which programs the suite's compile time is."""

    class Timed:
        def __init__(self, fmt, fun_name, event=None):
            self.inner = log_elapsed_time(fmt, fun_name=fun_name, event=event)
            self.name = fun_name if event == compile_event else None

        def __enter__(self):
            self.cpu = time.process_time()
            return self.inner.__enter__()

        def __exit__(self, *exc):
            if self.name is not None:
                entry = _programs.setdefault(self.name, [0, 0.0])
                entry[0] += 1
                entry[1] += time.process_time() - self.cpu
            return self.inner.__exit__(*exc)

    return Timed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _session["written"]:
        _session["written"] = True
        _write({"test": "<session>", "cpu": time.process_time(), "child_cpu": _children_cpu(),
                **_now})
    before = dict(_now)
    _programs.clear()
    cpu, child, wall = time.process_time(), _children_cpu(), time.perf_counter()
    yield
    _write({
        "test": item.nodeid,
        "cpu": round(time.process_time() - cpu, 3),
        "child_cpu": round(_children_cpu() - child, 3),
        "wall": round(time.perf_counter() - wall, 3),
        "compiles": _now["compiles"] - before["compiles"],
        "compile_s": round(_now["compile_s"] - before["compile_s"], 3),
        "hits": _now["hits"] - before["hits"],
        "programs": {name: [n, round(cpu, 3)] for name, (n, cpu) in _programs.items()},
    })
