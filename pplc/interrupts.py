"""Ctrl-C and SIGTERM in the `pplc` command: never a traceback, an abort or a lost signal.

Two regimes, switched by the CLI:

- Before the sampler's first chunk of iterations (importing JAX, checking, compiling),
  there is nothing to keep: the signal ends the process at once with one line and exit
  status 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). Python's own handler cannot
  do this: it runs only when the main thread next executes Python, so a signal during a
  60-second XLA compilation waited for it; a KeyboardInterrupt raised inside a garbage
  collector callback is printed as "Exception ignored" and the run went on to exit 0; and
  one raised while the interpreter finalizes, with threads still importing, could abort
  it. So the signal is also written to a wakeup pipe (`signal.set_wakeup_fd`, done in C
  the moment it arrives) that a watcher thread reads: it prints the line and calls
  `os._exit`, whatever the main thread is doing. Nothing is half-written: files are
  written through a temporary name (`pplc.files`), and none is written yet.
- While sampling (`keep_draws`), the signal raises KeyboardInterrupt in the main thread,
  which the sampler catches at its next chunk boundary to return the draws so far,
  marked incomplete (`pplc.inference.mcmc`). The signal is also recorded, and `check`
  (called by the CLI's progress callback after each chunk) raises KeyboardInterrupt
  again should the first one have been swallowed; the exit status says it either way.

- In a run of several processes (`defer`, once the process joined), the signal stops
  nothing by itself: it is recorded, and the sampler's processes agree at each chunk
  boundary to stop together (`check`, inference/mcmc.py), process 0 keeping the draws. One
  process leaving alone would leave the others waiting in the next chunk's collectives
  (measured before: both processes hung 5 minutes, then aborted). A second signal ends the
  process at once, as before the first chunk.

The Python API installs none of this: a library must not take a program's signals. (While
its chunks run, the sampler only puts a counting twin of Python's default SIGINT handler
in place of that default, so that a lost KeyboardInterrupt still stops it: inference/sigint.py.)
"""

from __future__ import annotations

import os
import signal
import threading

_MESSAGES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
_state = {"signal": None, "keep_draws": False, "deferred": False, "count": 0}
_exiting = threading.Lock()


def install() -> None:
    """Take SIGINT and SIGTERM for the command's lifetime (main thread only)."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for signum in _MESSAGES:
        signal.signal(signum, _handler)
    threading.Thread(target=_watch, args=(read,), daemon=True, name="pplc-signals").start()


def _watch(read: int) -> None:
    while True:
        data = os.read(read, 64)
        if not data:
            return
        for signum in data:
            if signum in _MESSAGES:
                _state["signal"] = _state["signal"] or signum
                _state["count"] += 1   # here only: the handler sees the same signal
                if _state["deferred"]:
                    if _state["count"] > 1:
                        exit_now(signum)
                    os.write(2, f"{_MESSAGES[signum]}: every process of the run stops at the "
                                "end of the current chunk of iterations (once more to stop "
                                "this process now)\n".encode())
                elif not _state["keep_draws"]:
                    exit_now(signum)


def _handler(signum, frame) -> None:
    _state["signal"] = _state["signal"] or signum
    if _state["deferred"]:
        return   # the watcher counts it; the sampler's processes agree to stop (`check`)
    if not _state["keep_draws"]:
        exit_now(signum)
    raise KeyboardInterrupt


def exit_now(signum: int) -> None:
    """One line, then the process ends with 128 + signum (no finalization to abort).

    Never returns. The handler (main thread) and the watcher thread both come here for one
    signal; the one that comes second waits for the first to end the process: were the
    main thread to go on and raise KeyboardInterrupt inside an extension module's import
    meanwhile, it could crash the process (seen: status -11 after the line)."""
    if _exiting.acquire(blocking=False):
        try:
            os.write(2, f"{_MESSAGES.get(signum, 'interrupted')}\n".encode())
        finally:
            os._exit(128 + signum)
    threading.Event().wait()


def defer() -> None:
    """A run of several processes: a first signal is only recorded, for the processes to
    stop together at a chunk boundary (`check`); a second one ends this process at once."""
    _state["deferred"] = True


def keep_draws() -> None:
    """From now on a signal stops the sampler at its next chunk, keeping the draws."""
    _state["keep_draws"] = True


def check() -> None:
    """Raise KeyboardInterrupt if a signal came (and was perhaps swallowed) since `install`."""
    if _state["signal"] is not None:
        raise KeyboardInterrupt


def received() -> int | None:
    """The first signal received, or None."""
    return _state["signal"]
