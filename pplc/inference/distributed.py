"""Joining a run of several processes (and hosts) with JAX's own runtime, `jax.distributed`.

Why JAX's and not ours: `jax.distributed.initialize` connects the processes through a
coordinator, after which `jax.devices()` lists every process's devices and one `jit`
program runs SPMD on all of them, XLA inserting the collectives (on CPU through gloo).
The data placement (inference/sharding.py) then builds each split array from the rows
its process's devices hold, and the sampler runs the same program in every process: the
parameters and the chains' states are replicated, so each process ends with the same
draws, and only process 0 (`is_lead`) writes them and prints the summary.

It must run before JAX starts a backend (before any array is made), so the CLI calls it
first thing; from Python call `initialize` before conditioning a model.
"""

from __future__ import annotations

import os
import socket
import time

from pplc.errors import error

ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
DEFAULT_TIMEOUT = 60   # seconds to wait for the coordinator and the other processes


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout: int = DEFAULT_TIMEOUT) -> None:
    """Connect this process to the run; missing values come from JAX's environment
    variables (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`). A
    coordinator that cannot be reached is an error naming it after `timeout` seconds."""
    env = os.environ
    coordinator = coordinator or env.get(ENV[0])
    num_processes = num_processes if num_processes is not None else _int_env(ENV[1])
    process_id = process_id if process_id is not None else _int_env(ENV[2])
    if not coordinator or num_processes is None or process_id is None:
        raise error("a distributed run needs --coordinator HOST:PORT, --num-processes P "
                    "and --process-id I (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                    "JAX_PROCESS_ID)")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise error(f"--process-id {process_id} is not in 0..{num_processes - 1} "
                    f"(--num-processes {num_processes})")
    if process_id != 0:
        _wait_for(coordinator, timeout)
    import jax
    # the CPU client's collectives across processes (the default has none); GPUs use NCCL
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator,
                                   num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=timeout)
    except Exception as e:   # noqa: BLE001 (JAX raises several kinds; all mean: not joined)
        raise error(f"process {process_id} of {num_processes} could not join the run at "
                    f"coordinator {coordinator} within {timeout} s: {e}".splitlines()[0],
                    hint="start process 0 (the coordinator) on that host and port, and "
                         "every process with the same --coordinator and --num-processes") \
            from None


def _wait_for(coordinator: str, timeout: float) -> None:
    """Wait until the coordinator accepts connections, or raise an error naming it: JAX's
    own wait ends by aborting the process (a C++ fatal error and a stack trace), not by
    an exception. Only a TCP connection is tried; JAX then connects itself."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise error(f"--coordinator {coordinator!r} is not HOST:PORT")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
            return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise error(f"no coordinator at {coordinator} after {timeout:g} s: {e}",
                            hint="start process 0 (the coordinator, which listens at that "
                                 "address) and check the host name and port") from None
            time.sleep(0.5)


def is_lead() -> bool:
    """Whether this process writes the output: process 0, or the only one."""
    import jax
    return jax.process_index() == 0


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def check_distributed(shard_data: bool, chain_method: str) -> None:
    """What a run of several processes needs from `sample`: the data split over all the
    processes' devices (otherwise each would hold all of it, and nothing is gained), and
    the chains' programs called in the same order in every process (threads would
    interleave the collectives differently, and hang)."""
    if not shard_data:
        raise error("a run of several processes samples with the data split: add "
                    "--shard-data (sample(shard_data=True))")
    if chain_method == "parallel":
        raise error("chain_method 'parallel' (threads) cannot run across processes",
                    hint="use vectorized or sequential (auto picks vectorized)")
