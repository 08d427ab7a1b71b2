"""How a run of several processes stops: a signal to one process, a process that dies,
and what is refused before a process joins.

Each case was a hang or a C++ abort before (measured, two processes over loopback):
- SIGTERM to one process was taken by JAX's preemption service and ignored: the run went
  on to its end;
- Ctrl-C in one process stopped that one at its next chunk while the other waited in the
  next chunk's collectives: both hung 5 minutes (JAX's shutdown barrier), then aborted
  with a C++ stack trace (status -6);
- a process killed mid-run left the other with "internal error ... a bug in pplc", then
  a minute in the shutdown barrier, then an abort;
- process 0 refusing its existing --output did so after joining, so the others waited
  30 s for it and reported an internal error.

The runs sample test_faults' two-parameter model with its extern function (`marker.f`),
which prints RUNNING from inside the compiled sampler once sampling is under way (after
MARK_AT = 3000 density evaluations; the warmup of 10 iterations of at most 8 steps takes
fewer), the signal is sent then, and the draws (100000 asked) cannot finish first.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults import EXTERNS, MODEL   # the model with test_faults' RUNNING marker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def work(tmp_path):
    (tmp_path / "m.ppl").write_text(MODEL)
    (tmp_path / "d.json").write_text(json.dumps({"N": 7, "y": [0.1, 0.2, 0.3, -0.4, 0.5, 0.0, 0.9]}))
    (tmp_path / "marker.py").write_text(EXTERNS)
    return tmp_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(work: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": f"{work}{os.pathsep}{ROOT}", "PYTHONUNBUFFERED": "1",
            "MARK_AT": "3000", "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=1", **extra}


def _sample(work: Path, port: int, process_id: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pplc.cli", "sample", str(work / "m.ppl"), "--data",
            str(work / "d.json"), "--extern", "f=marker:f", "--shard-data", "--chains", "2",
            "--warmup", "10", "--max-tree-depth", "3", "--draws", "100000", "--quiet",
            "--no-cache", "--metric", "diag", "--coordinator", f"127.0.0.1:{port}",
            "--num-processes", "2", "--process-id", str(process_id), *extra]


def _run_and_signal(work: Path, victim: int, signum: int, timeout: float = 240):
    """Two processes; once one of them prints RUNNING (sampling is under way), `signum` to
    process `victim`. [(status, stdout, stderr)] by process id, and the seconds from the
    signal until both had ended."""
    port = _free_port()
    procs = [subprocess.Popen(_sample(work, port, i, "--output", str(work / f"out{i}.nc")),
                              cwd=ROOT, env=_env(work), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(2)]
    try:
        deadline = time.monotonic() + timeout
        while True:   # the marker prints in the process that runs the callback
            line = procs[0].stdout.readline()
            assert line, procs[0].stderr.read()[-2000:]
            if line == "RUNNING\n":
                break
            assert time.monotonic() < deadline, "the run never started sampling"
        procs[victim].send_signal(signum)
        sent = time.monotonic()
        ended = [(p.wait(timeout), *p.communicate()) for p in procs]
        return ended, time.monotonic() - sent
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _clean(stderr: str) -> None:
    for sign in ("Traceback", "internal error", "Check failure", "Fatal Python error"):
        assert sign not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_sigterm_to_one_process_stops_every_process_at_one_iteration_keeping_the_draws(work):
    import pplc

    (first, second), seconds = _run_and_signal(work, 1, signal.SIGTERM)
    assert first[0] == 130 and second[0] == 143, (first[2][-2000:], second[2][-2000:])
    assert second[2].splitlines() == [   # at once, then when the run stopped
        "terminated: every process of the run stops at the end of the current chunk of "
        "iterations (once more to stop this process now)",
        "terminated: every process of the run stopped at the same iteration; process 0 "
        "keeps the draws"], second[2]
    assert first[2].startswith("stopped, as another process of the run was interrupted: "
                               "keeping the "), first[2]
    assert "marked incomplete" in first[2]
    _clean(first[2])
    _clean(second[2])
    assert seconds < 60   # one chunk, not JAX's 5-minute shutdown barrier
    fit = pplc.load(work / "out0.nc")
    assert 0 < fit.num_draws < 100000 and fit.attrs["complete"] == 0
    assert not (work / "out1.nc").exists()


@pytest.mark.slow
def test_a_process_killed_mid_run_stops_the_other_with_an_error_saying_so(work):
    (first, second), seconds = _run_and_signal(work, 1, signal.SIGKILL)
    assert second[0] == -signal.SIGKILL
    assert first[0] == 1, first[2][-2000:]
    assert first[2].startswith("error: process 0 of 2 lost another process of the run, which "
                               "stopped (an error, a signal or a crash), and stops too: "), first[2]
    assert "hint: the reason is in the other processes' output" in first[2]
    _clean(first[2])
    assert seconds < 60   # at once, not after JAX's heartbeat timeout and an abort
    assert not (work / "out0.nc").exists()


def test_process_0_refuses_its_existing_output_before_the_others_wait_for_it(work):
    (work / "out.nc").write_text("an earlier fit\n")
    started = time.monotonic()
    done = subprocess.run(_sample(work, _free_port(), 0, "--output", str(work / "out.nc")),
                          cwd=ROOT, env=_env(work), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: '{work / 'out.nc'}' already exists"), done.stderr
    assert time.monotonic() - started < 30   # not after the join's 60-s wait for process 1
    assert (work / "out.nc").read_text() == "an earlier fit\n"


def test_jax_share_binary_between_hosts_is_refused_not_a_hang(work):
    done = subprocess.run(_sample(work, _free_port(), 0), cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env=_env(work, JAX_SHARE_BINARY_BETWEEN_HOSTS="true"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.startswith("error: pplc's runs of several processes cannot use "
                                  "JAX_SHARE_BINARY_BETWEEN_HOSTS"), done.stderr
    assert "hint: unset JAX_SHARE_BINARY_BETWEEN_HOSTS" in done.stderr
    _clean(done.stderr)
