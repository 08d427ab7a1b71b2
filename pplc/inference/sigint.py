"""Ctrl-C during a sampler run is never lost, even when Python loses its KeyboardInterrupt.

Python runs a SIGINT's handler in the main thread at its next bytecode, wherever that is:
inside a finalizer or a garbage-collector callback, where the KeyboardInterrupt is printed as
"Exception ignored" and dropped (seen in the `pplc` command, pplc/interrupts.py). The sampler
would then run on to the end as if the key had not been pressed. So while a run's chunks go,
a handler that also counts the signal replaces Python's default one; the driver looks at the
count at each chunk boundary and stops there as a KeyboardInterrupt would have.

Only Python's own default handler is replaced, and only from the main thread: a program that
installed its own (the `pplc` command's `pplc.interrupts`, a notebook kernel's) keeps it, as a
library must leave a program's signals alone. The default one is back when the run ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupts:
    """How many SIGINTs arrived during the run (0 where the program's handler was kept)."""

    def __init__(self, raising: bool = True) -> None:
        self.count = 0
        self.raising = raising

    def _handler(self, signum, frame) -> None:
        self.count += 1
        if self.raising:
            raise KeyboardInterrupt


@contextmanager
def counted_interrupts(raising: bool = True) -> Iterator[Interrupts]:
    """`raising=False`: the signal is only counted, for a run of several processes whose
    driver stops at a chunk boundary agreed by all of them (inference/mcmc.py)."""
    record = Interrupts(raising)
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield record
        return
    signal.signal(signal.SIGINT, record._handler)
    try:
        yield record
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
