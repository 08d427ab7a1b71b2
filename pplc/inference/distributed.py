"""Joining a run of several processes (and hosts) with JAX's own runtime, `jax.distributed`.

Why JAX's and not ours: `jax.distributed.initialize` connects the processes through a
coordinator, after which `jax.devices()` lists every process's devices and one `jit`
program runs SPMD on all of them, XLA inserting the collectives (on CPU through gloo).
The data placement (inference/sharding.py) then builds each split array from the rows
its process's devices hold, and the sampler runs the same program in every process: the
parameters and the chains' states are replicated, so each process ends with the same
draws, and only process 0 (`is_lead`) writes them and prints the summary.

It must run before JAX starts a backend (before any array is made), so the CLI calls it
first thing; from Python `Model.condition(data, distributed=pplc.Distributed(...))` joins
before it makes anything (JAX spells it `jax.distributed.initialize(coordinator_address,
num_processes, process_id)`: the same three values, here one object).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

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
    joined = (coordinator, num_processes, process_id)
    if _JOINED:
        if _JOINED[0] != joined:
            raise error(f"this process already joined a run ({_describe(*_JOINED[0])}); "
                        f"it cannot join another ({_describe(*joined)})")
        return
    if process_id != 0:
        _wait_for(coordinator, timeout)
    import jax
    if jax.config.jax_share_binary_between_hosts:
        raise error("pplc's runs of several processes cannot use JAX_SHARE_BINARY_BETWEEN_HOSTS "
                    "(jax_share_binary_between_hosts): JAX sends an executable only when "
                    "process 0 missed its own compile cache, so the other processes, each "
                    "with its own cache, wait for one that never comes",
                    hint="unset JAX_SHARE_BINARY_BETWEEN_HOSTS; each process compiles its "
                         "own program")
    # the CPU client's collectives across processes (the default has none); GPUs use NCCL
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service takes SIGTERM (and then ignores it): pplc stops the run on
    # it instead, every process at the same chunk (inference/mcmc.py, pplc/interrupts.py)
    jax.config.update("jax_enable_preemption_service", False)
    done = threading.Event()
    threading.Thread(target=_watch, args=(done, coordinator, num_processes, process_id,
                                          timeout), daemon=True).start()
    try:
        # JAX's own deadline later than the watch's: it ends in an abort, not an exception
        jax.distributed.initialize(coordinator_address=coordinator,
                                   num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=int(timeout) + WATCH_MARGIN)
    except Exception as e:   # noqa: BLE001 (JAX raises several kinds; all mean: not joined)
        raise error(f"process {process_id} of {num_processes} could not join the run at "
                    f"coordinator {coordinator} within {timeout} s: {e}".splitlines()[0],
                    hint="start process 0 (the coordinator) on that host and port, and "
                         "every process with the same --coordinator and --num-processes") \
            from None
    finally:
        done.set()
    _JOINED.append(joined)


_JOINED: list = []   # the run this process joined (one per process: JAX allows one)
WATCH_MARGIN = 30    # seconds between the watch's error and JAX's own abort


def joined() -> tuple[str, int, int] | None:
    """(coordinator, number of processes, this process's id) of the run this process
    joined, or None: without importing JAX (conditioning asks, pplc/row_shares.py)."""
    return _JOINED[0] if _JOINED else None


def _describe(coordinator, num_processes, process_id) -> str:
    return f"coordinator {coordinator}, process {process_id} of {num_processes}"


def _watch(done: threading.Event, coordinator: str, num_processes: int, process_id: int,
           timeout: float) -> None:
    """End the process with an error if the run is not complete after `timeout` seconds.

    JAX's `initialize` waits in C++ until every process has registered with the
    coordinator, then aborts the process (a fatal error and a C++ stack trace); it does
    not say how many had come. This thread says instead what was waited for, where, and
    for how long, and exits with status 1 (the main thread is inside JAX's C++ call and
    cannot be interrupted, so the exit is `os._exit`)."""
    if done.wait(timeout):
        return
    role = "the coordinator, " if process_id == 0 else ""
    message = error(f"process {process_id} ({role}at {coordinator}) waited {timeout:g} s "
                    f"for all {num_processes} processes of the run to join; not all did "
                    "(JAX does not say which)",
                    hint=f"start every process 0..{num_processes - 1} with the same "
                         f"--coordinator {coordinator} and --num-processes {num_processes}")
    sys.stdout.flush()
    print(message.render(), file=sys.stderr, flush=True)
    os._exit(1)


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


def any_process(flag: bool) -> bool:
    """Whether `flag` is true in any process of the run: the sampler's agreement to stop
    at a chunk boundary (a signal reaches one process; every process must stop at the
    same chunk, or the others wait in the next chunk's collectives for ever)."""
    from jax.experimental import multihost_utils
    return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())


# What JAX's errors say when another process of the run is gone (gloo's sockets, the
# coordination service): its peer crashed, was killed, or stopped with an error of its own.
_LOST = ("gloo", "connection reset by peer", "connection closed by peer", "broken pipe",
         "coordination service", "heartbeat")


def lost_peer(exc: BaseException):
    """A PplcError for a JAX error that means another process of the run is gone, or None.

    Not a pplc bug, which is what any other exception is reported as: the message says
    that this process stops because another did, and where to look for why."""
    if not _JOINED or _JOINED[0][1] < 2:
        return None
    text = str(exc)
    if not any(sign in text.lower() for sign in _LOST):
        return None
    _, num_processes, process_id = _JOINED[0]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return error(f"process {process_id} of {num_processes} lost another process of the run, "
                 f"which stopped (an error, a signal or a crash), and stops too: {first}",
                 hint="the reason is in the other processes' output (the first of them to "
                      "stop)")


@contextmanager
def naming_lost_peers() -> Iterator[None]:
    """Within: an error of JAX's that means another process of the run is gone is raised as
    `lost_peer`'s PplcError (chained to JAX's), for the Python API as for the CLI."""
    try:
        yield
    except Exception as exc:   # noqa: BLE001 (JAX's runtime errors have no public class)
        lost = lost_peer(exc)
        if lost is None:
            raise
        raise lost from exc


def peer_gone(exc: BaseException) -> bool:
    """Whether a lost peer's error says its connection was closed, i.e. that process is no
    more: JAX's shutdown barrier at exit would then wait for it until the heartbeat timeout
    and abort (a C++ stack trace), so the CLI leaves without it (`os._exit`). A peer that
    never came to the collectives (a deadline) may instead be alive at that barrier, which
    only completes if this process reaches it too."""
    text = str(exc).lower()
    return any(sign in text for sign in _GONE)


# gloo's words (tcp/pair.cc) for a socket whose other end is closed: a read that gets
# ECONNRESET or end of file, a write that gets EPIPE
_GONE = ("connection reset by peer", "connection closed by peer", "broken pipe")


def process_id(given: int | None) -> int | None:
    """This process's id in the run as `initialize` will take it (given, or JAX's
    environment variable), before joining: None if neither says."""
    return given if given is not None else _int_env(ENV[2])


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def check_distributed(shard_data: bool, chain_method: str, chains: int = 1) -> str:
    """What a run of several processes needs from `sample`, and the chain method it runs:
    the data split over all the processes' devices (otherwise each would hold all of it,
    and nothing is gained), and the chains' programs called in the same order in every
    process (threads would interleave the collectives differently, and hang).

    Vectorized chains run on a mesh whose every chain row crosses all the processes
    (inference/sharding.py `Placement.make`: 2 chains on 2 processes of 2 devices are 2
    chains x 2 data devices, one of each process), so each process holds the same rows
    for every chain, and each chunk's draws come back replicated to every process
    (mcmc.py), which reads them all: `auto` runs them so."""
    if not shard_data:
        raise error("a run of several processes samples with the data split: add "
                    "--shard-data (sample(shard_data=True))")
    if chain_method == "parallel":
        raise error("chain_method 'parallel' (threads) cannot run across processes",
                    hint="use vectorized or sequential (auto picks vectorized)")
    return "vectorized" if chain_method == "auto" else chain_method


@dataclass(frozen=True)
class Distributed:
    """The run of several processes (and hosts) this process joins: JAX's
    `jax.distributed.initialize(coordinator_address, num_processes, process_id)` as one
    object, for `Model.condition(data, distributed=...)`. A value left None comes from
    JAX's environment variables (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
    `JAX_PROCESS_ID`), as on the command line. `timeout`: seconds to wait for the
    coordinator and then for every process to join, after which the process ends with an
    error saying where it waited (docs/scaling.md)."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout: float = DEFAULT_TIMEOUT

    def join(self) -> None:
        """Join the run (once per process; joining the same run again does nothing)."""
        initialize(self.coordinator, self.num_processes, self.process_id, self.timeout)

    @property
    def is_lead(self) -> bool:
        """Whether this process is the one that writes (process 0)."""
        return is_lead()


def check_same_data(names, data: Mapping[str, Any], split: Mapping[str, int], what: str,
                    model_text: str) -> None:
    """Refuse a run whose processes were given different models or data.

    Every process must sample the same model on the same data: a process whose data file
    differs (another version on one host) would otherwise add its partial sums to the
    others' and give a posterior of no data set. Each process hashes the model's text,
    the sizes and shapes, and each data array: a replicated array whole; a split one
    whole where the process holds it in memory, or, read by row range (pplc/rowfiles.py),
    the file's size and the array's shape and type (the rows themselves are read by one
    process each, so no process can compare them). The hashes are gathered over the
    run's own collective (one all-gather of 32 bytes per array) and compared with
    process 0's; every process then refuses with the names of the arrays that differ and
    the processes where they do."""
    import jax
    from jax.experimental import multihost_utils
    names = sorted(names)
    digests = np.zeros((len(names) + 1, 32), np.uint8)
    digests[0] = np.frombuffer(hashlib.sha256(model_text.encode()).digest(), np.uint8)
    for i, name in enumerate(names, 1):
        digests[i] = np.frombuffer(_digest(data.get(name), name in split), np.uint8)
    model = multihost_utils.process_allgather(digests[0])
    if (model != model[0]).any():
        far = [p for p in range(len(model)) if (model[p] != model[0]).any()]
        raise error(f"the model differs between the processes of the run: process(es) "
                    f"{', '.join(map(str, far))} compiled another model text than process 0",
                    hint="give every process the same model file")
    gathered = np.asarray(multihost_utils.process_allgather(digests[1:]))
    differing = {names[i]: [p for p in range(gathered.shape[0])
                            if (gathered[p, i] != gathered[0, i]).any()]
                 for i in range(len(names))}
    differing = {k: v for k, v in differing.items() if v}
    if differing:
        listed = "; ".join(f"'{k}' on process(es) {', '.join(map(str, v))}"
                           for k, v in differing.items())
        raise error(f"the data differ between the processes of the run (this is process "
                    f"{jax.process_index()}): {listed} differ from process 0's, in {what}",
                    hint="give every process the same data file (the same version on "
                         "every host)")


def _digest(value, split: bool) -> bytes:
    """What a process can say of a data array without reading others' rows."""
    h = hashlib.sha256()
    if value is None:
        return h.digest()
    if getattr(value, "digest", None) is not None:   # a run's own rows (pplc/row_shares.py)
        return value.digest
    h.update(repr((tuple(np.shape(value)), str(np.dtype(value.dtype)
                                               if hasattr(value, "dtype")
                                               else np.asarray(value).dtype))).encode())
    if getattr(value, "by_rows", False):   # read by row range: the file, not the rows
        h.update(str(os.path.getsize(value.path)).encode())
    elif not (split and hasattr(value, "addressable_shards")
              and not value.is_fully_addressable):
        h.update(np.ascontiguousarray(np.asarray(value)).view(np.uint8).reshape(-1))   # no copy
    return h.digest()
