"""Each process of a distributed run reads, checks and holds only its own rows.

Why: in a run of P processes (pplc/inference/distributed.py) the placement builds each
split array from the rows of the process's own devices (inference/sharding.py), but
conditioning read, checked and converted every row in every process, so a process's
memory did not fall with P. Here, before the model is analysed, the arrays split along
the observations' plate are cut to the process's own rows (`process_rows`: the same rows
its devices will hold, whatever the chain method), from a file by row range
(pplc/rowfiles.py) or from an array read whole (JSON), which is then let go.

  * **Checks.** The model is checked on a *local* copy of the data: the plate's size is
    the process's row count and the split arrays are its rows. Every value check (indices
    in range, observations in their support, arguments, declared types as each block is
    read) runs there, on those rows only, and an element is named by its row in the whole
    array (`SharedBound.row_offsets`). The outcome is then combined over the run's own
    collective (`combined`): every process learns of a failure on any process and all
    raise the same located error, the first process's that failed; none is left waiting.
  * **The model.** The analysis, the passes and the lowering see stand-ins of the split
    arrays (each a row repeated, `np.broadcast_to`: the whole shape, one row of memory), so
    shapes, the plan and the compiled program are those of the whole data. Nothing reads
    a stand-in's values: the value checks skip them (`SharedBound.deferred`, done on the
    local copy), the per-group observation counts of the reparameterization pass are summed
    over the processes from each one's rows (`group_sizes.shared_rows`), and the runtime
    data hold each split array as its `LocalRows`, which the placement reads.

A split array is shared only when every array over the plate is split along its first
axis, has no missing entries and feeds no deterministic of data alone (those are computed
once from the whole array); otherwise the data stay whole in every process, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import networkx as nx
import numpy as np

from pplc.backends.data import BoundData
from pplc.errors import Diagnostic, PplcError, Span, error
from pplc.ir.graph import Graph


@dataclass(frozen=True)
class SharedBound(BoundData):
    """Bound data of a process in a run: `shares` the split arrays' own rows (the runtime
    data), `deferred` their names (their values are checked on the local copy, not here),
    `row_offsets` the first row of a local copy's arrays in the whole ones (for messages)."""

    shares: Mapping[str, "LocalRows"] = field(default_factory=dict)
    deferred: frozenset = frozenset()
    row_offsets: Mapping[str, int] = field(default_factory=dict)
    plate: str | None = None   # the plate's size, whose rows are shared


class LocalRows:
    """The rows [start, stop) of a split array that this process holds (and its last row
    where the process pads with it), with the whole array's `shape` and `dtype`: what the
    placement reads (inference/sharding.py `_split` asks for its devices' rows only)."""

    by_rows = True   # what the placement and the run's data check look for

    def __init__(self, name: str, shape, dtype, start: int, block: np.ndarray,
                 last: np.ndarray | None, digest: bytes, bytes_read: int = 0):
        self.name, self.shape, self.dtype = name, tuple(shape), np.dtype(dtype)
        self.start, self.block, self.last, self.digest = start, block, last, digest
        self.bytes_read = bytes_read   # read from the file (0: the array was read whole)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    stop = property(lambda self: self.start + len(self.block))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LocalRows({self.name}, rows {self.start}..{self.stop - 1} of {self.shape})"

    def rows(self, start: int, stop: int) -> np.ndarray:
        if start >= self.start and stop <= self.stop:
            return self.block[start - self.start:stop - self.start]
        if (start, stop) == (self.shape[0] - 1, self.shape[0]) and self.last is not None:
            return self.last[None]
        raise self._not_held(f"rows {start}..{stop - 1}")

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        first, rest = (index[0] if index else slice(None)), index[1:]
        if isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(self.shape[0])
            return self.rows(start, stop)[(slice(None), *rest)]
        raise self._not_held("an index other than a range of rows")

    def __array__(self, dtype=None, copy=None):
        raise self._not_held("the whole array")

    def _not_held(self, what: str) -> PplcError:
        return error(f"this process of the run holds rows {self.start}..{self.stop - 1} of "
                     f"'{self.name}' (of {self.shape[0]}), not {what}: only sampling with "
                     "the data split reads a run's data (docs/scaling.md)",
                     hint="fit, predict and evaluate the density in one process")


def in_run() -> bool:
    """Whether this process joined a run of several processes (read files by rows)."""
    from pplc.inference.distributed import joined
    return joined() is not None and joined()[1] > 1


def shared(graph: Graph, bind: Callable[[], BoundData], check: Callable[[BoundData], Any],
           source=None) -> BoundData:
    """`bind()`'s data as this process of a run holds them (`share_rows`); outside a run,
    `bind()`. In a run a refusal of the binding, and sizes or shapes that differ between
    the processes (another data file on one host), stop every process with the same error
    (`combined`), before anything else is gathered."""
    if not in_run():
        return bind()
    from pplc.jax_x64 import jax
    failure, bound = None, None
    try:
        bound = bind()
    except PplcError as exc:
        failure = exc
    combined(failure, graph, source, _sizes_key(bound) if bound is not None else b"")
    return share_rows(graph, bound, check, jax.process_index(), jax.process_count(),
                      jax.device_count())


def _sizes_key(bound: BoundData) -> bytes:
    """The sizes, and each array's shape and type: what every process must agree on
    before the plan, the counts and the program (all made from them) can agree."""
    return hashlib.sha256(repr((sorted(bound.sizes.items()), sorted(
        (k, tuple(np.shape(v)), str(np.dtype(v.dtype))) for k, v in bound.arrays.items())))
        .encode()).digest()


def counting(bound: BoundData):
    """The context in which the passes count observations per group: this process's rows
    summed over the run (`group_sizes.shared_rows`), or the data whole."""
    from pplc.passes.group_sizes import SharedRows, shared_rows
    shares = getattr(bound, "shares", None)
    if not shares:
        return shared_rows(None)
    any_share = next(iter(shares.values()))
    return shared_rows(SharedRows(bound.plate, any_share.start, any_share.stop,
                                  {n: s.block for n, s in shares.items()}, summed))


def summed(values: np.ndarray) -> np.ndarray:
    """`values` added over the processes of the run (one all-gather)."""
    from jax.experimental import multihost_utils
    values = np.asarray(values)
    return np.asarray(multihost_utils.process_allgather(values)).sum(axis=0).astype(
        values.dtype)


def share_rows(graph: Graph, bound: BoundData, check: Callable[[BoundData], Any],
               process: int, processes: int, devices: int) -> BoundData:
    """`bound` with the arrays split along the observations' plate cut to this process's
    rows (module docstring), after `check(local copy)` has passed in every process; or
    `bound` itself where nothing is shared. Every process must call it (it gathers)."""
    plan = _split_plan(graph, bound)
    if plan is None:
        return bound
    from pplc.inference.sharding import process_rows
    size, names = plan
    length = bound.sizes[size]
    start, stop, padding = process_rows(length, devices, process, processes)
    shares: dict[str, LocalRows] = {}
    failure: PplcError | None = None
    try:
        for name in names:
            value = bound.arrays[name]
            digest = _digest(value)
            block = np.array(value[start:stop])   # a file: only these rows (and checked)
            last = np.array(value[length - 1:length])[0] \
                if padding and stop <= start and length else None
            shares[name] = LocalRows(name, np.shape(value), block.dtype, start, block, last,
                                     digest, getattr(value, "bytes_read", 0))
        local = SharedBound({**bound.sizes, size: stop - start},
                            {**bound.arrays, **{n: s.block for n, s in shares.items()}},
                            bound.source, dict(bound.missing),
                            row_offsets={n: start for n in names})
        check(local)
    except PplcError as exc:
        failure = exc
    except Exception as exc:   # noqa: BLE001 (any failure must reach the gather below)
        failure = error(f"process {process} of the run could not read or check its rows "
                        f"{start}..{stop - 1}: {type(exc).__name__}: {exc}")
    combined(failure, graph, bound.source)
    arrays = dict(bound.arrays)
    for name, share in shares.items():
        row = share.block[0] if len(share.block) else share.last
        arrays[name] = np.broadcast_to(row, share.shape)   # the shape, one row of memory
    return SharedBound(dict(bound.sizes), arrays, bound.source, dict(bound.missing),
                       shares=shares, deferred=frozenset(shares), plate=size)


def _split_plan(graph: Graph, bound: BoundData) -> tuple[str, list[str]] | None:
    """(the plate's size, the arrays to share), or None to keep the data whole."""
    from pplc.backends import plan, sharding
    recurrences = {(n, i) for group in graph.groups() for n in group
                   for i in range(len(graph[n].pieces))}
    shapes = {k: tuple(np.shape(v)) for k, v in bound.arrays.items()}
    decided = sharding.decide(graph, shapes, bound.sizes, bound.arrays, (), recurrences)
    if decided.size is None or not decided.axes or decided.whole:
        return None
    names = sorted(decided.axes)
    if any(decided.axes[n] != 0 for n in names) or set(names) & set(bound.missing):
        return None
    made_from = set()
    for name in plan.data_only(graph, bound.missing):
        made_from |= nx.ancestors(graph.dag, name) if name in graph.dag else set()
    if made_from & set(names):
        return None
    return decided.size, names


def _digest(value) -> bytes:
    """What the run's data check (inference/distributed.py `check_same_data`) compares for
    a shared array: its shape and type, and the file's size for an array read by rows, its
    values for one read whole (every process has them now, and only now)."""
    h = hashlib.sha256(repr((tuple(np.shape(value)), str(np.dtype(value.dtype)))).encode())
    if getattr(value, "by_rows", False):
        h.update(str(os.path.getsize(value.path)).encode())
    else:
        h.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1))
    return h.digest()


# The most bytes of one process's error that are gathered (its text is cut beyond it).
ERROR_BYTES = 16384


def combined(failure: PplcError | None, graph: Graph, source, key: bytes = b"") -> None:
    """Raise, in every process, the error of the first process whose `failure` is not
    None, or, where none failed but the processes' `key`s (32 bytes) differ, an error
    naming the processes whose sizes or shapes differ from process 0's; return where
    neither. One all-gather of ERROR_BYTES per process over the run's collective, so a
    failure anywhere stops every process with the same message. `source`: the data's."""
    from jax.experimental import multihost_utils
    buffer = np.zeros(ERROR_BYTES, np.uint8)
    buffer[1:1 + len(key)] = np.frombuffer(key, np.uint8)
    if failure is not None:
        text = json.dumps([_encoded(d, graph, source) for d in failure.diagnostics]).encode()
        if len(text) > ERROR_BYTES - 34:   # keep the first diagnostic
            text = json.dumps([_encoded(failure.diagnostics[0], graph, source)])[
                :ERROR_BYTES - 34].encode()
        buffer[0] = 1
        buffer[33:33 + len(text)] = np.frombuffer(text, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(buffer))
    failed = [p for p in range(gathered.shape[0]) if gathered[p, 0]]
    if failed:
        raw = bytes(gathered[failed[0], 33:]).rstrip(b"\0").decode(errors="replace")
        try:
            diagnostics = [_decoded(d, graph, source) for d in json.loads(raw)]
        except ValueError:
            diagnostics = [Diagnostic(raw[:2000])]
        raise PplcError(diagnostics)
    differ = [p for p in range(gathered.shape[0])
              if (gathered[p, 1:33] != gathered[0, 1:33]).any()]
    if differ:
        raise error(f"the data's sizes or shapes differ between the processes of the run: "
                    f"process(es) {', '.join(map(str, differ))} differ from process 0's"
                    + (f", in {source.path}" if source is not None else ""),
                    hint="give every process the same data file (the same version on "
                         "every host)")


def _encoded(d: Diagnostic, graph: Graph, source) -> dict:
    where = ("model" if d.source is graph.source else
             "data" if source is not None and d.source is source else None)
    span = None if d.span is None else [d.span.line, d.span.column, d.span.end_line,
                                        d.span.end_column]
    return {"message": d.message, "where": where, "span": span if where else None,
            "hint": d.hint, "severity": d.severity}


def _decoded(d: Mapping, graph: Graph, data_source) -> Diagnostic:
    source = {"model": graph.source, "data": data_source}.get(d["where"])
    span = Span(*d["span"]) if d["span"] and source is not None else None
    return Diagnostic(d["message"], source, span, d["hint"], d["severity"])
