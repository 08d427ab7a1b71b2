"""Ahead-of-time compilation with a cache keyed on the log density and argument shapes.

Why our own cache: `jax.jit` caches on the identity of the function it wraps, and the
drivers build a fresh closure on every call; NumPyro's re-runs recompile for this reason
(docs/PERFORMANCE.md). Here the key is (the user's log density function, a tuple of static
settings, the shapes/dtypes/tree structure of every argument), so a re-run with a new seed,
new draws count or new data of the same shapes reuses the executable and compiles nothing.
The user's function is held weakly: dropping the model frees its executables.

Across processes (`persist_executables`, which `pplc sample`/`fit` turn on with the
compilation cache): a warm XLA cache still pays for tracing and lowering the sampler's
programs, about as long as compiling them. So an executable is also written to disk,
serialized, under a key naming everything it was built from: the log density's content
(`ContentKeyed`: its jaxpr's text and constants), the static settings, the arguments'
signature, pplc's own source, JAX's version and the devices. A later process with the
same key loads it and traces nothing. Whatever is not plainly named (a function without a
content key, settings that are not plain values, shardings, several processes) is never
written, and an unreadable entry is compiled anew: a miss costs time, never a wrong program.

Only an executable that XLA compiled is written, never one that a cache supplied: XLA's
persistent cache, or JAX's in-memory one handing back such a program. On CPU that copy no
longer holds its kernels' object code, and its serialized copy loads but fails when run
("Function wrapped_copy not found"). Two guards, each enough for it: JAX's events on the
compiling thread (a compile, and no cache hit), and, on CPU, object code in the bytes
themselves, which is checked again when an entry is read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Hashable

import jax
import numpy as np

_CACHE: "weakref.WeakKeyDictionary[Callable, dict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_FOLDER: list[Path] = []   # where executables persist; empty: nowhere
_COUNTS = {"compiled": 0, "loaded": 0}


def counts() -> dict[str, int]:
    """How many executables this process compiled (or had XLA's cache supply), and how
    many it loaded whole from disk (`persist_executables`)."""
    return dict(_COUNTS)


def _aval(x: Any) -> tuple:
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return ("key", x.shape, str(jax.random.key_impl(x)))
    a = x if hasattr(x, "dtype") else np.asarray(x)
    return (tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False)))


def signature(*args: Any) -> Hashable:
    """Tree structure plus (shape, dtype) of every leaf: what an executable is specialized on."""
    leaves, treedef = jax.tree.flatten(args)
    return (treedef, tuple(_aval(leaf) for leaf in leaves))


# For the initial points, a program run once per run: LLVM without optimization, which
# more than halves its compile (eight schools 1.5 -> 0.6 CPU-s). Its output is uniform draws
# (integer bit operations and an affine map, the same bits at any level: checked, and
# benchmarks/startup.md, session 10); the log density there is only tested for finiteness.
# Not for programs whose float results matter: the window-end update compiled so rounds
# differently (the same check), and a loop that runs long would run slower.
RUN_ONCE = {"xla_backend_optimization_level": 0}


def compiled(fn_key: Callable, static: Hashable, build: Callable[[], Callable], *args: Any,
             compiler_options: dict | None = None, **jit_options: Any):
    """Return (executable, compile seconds); compile seconds is 0.0 on a cache hit.

    `build()` returns the Python function to jit; it is only called on a miss.
    `jit_options` (e.g. in_shardings) go to `jax.jit`, `compiler_options` (e.g. RUN_ONCE)
    to XLA; `static` must name whatever in them changes the program.
    """
    key = (static, signature(*args))
    with _LOCK:
        per_fn = _CACHE.setdefault(fn_key, {})
        hit = per_fn.get(key)
    if hit is not None:
        return hit, 0.0
    start = time.perf_counter()
    path = None if jit_options else _disk_path(fn_key, static, key[1])
    executable = _load(path) if path is not None else None
    with _LOCK:
        _COUNTS["loaded" if executable is not None else "compiled"] += 1
    if executable is None:
        lowered = jax.jit(build(), **jit_options).lower(*args)
        seen = _compile_events()
        executable = lowered.compile(compiler_options)
        if path is not None and _freshly_compiled(seen):
            _store(path, executable)
    seconds = time.perf_counter() - start
    with _LOCK:
        per_fn[key] = executable
    return executable, seconds


class ContentKeyed:
    """A log density `fn(u, data)` that can name its own content, for the disk cache.

    The key is the text of its jaxpr at the shapes of `example_args()` plus the bytes of
    the constants it closes over: two functions with one key compute the same thing on
    arguments of those shapes. It is traced only when a disk key is first asked for.
    `fn` must not call back into Python (an extern's callback, say) with behaviour the
    jaxpr does not show: the face wraps only densities without externs.
    """

    def __init__(self, fn: Callable, example_args: Callable[[], tuple]):
        self.fn = fn
        self._example_args = example_args   # called only when a key is asked for
        self._key: str | None = None

    def __call__(self, *args: Any, **kwargs: Any):
        return self.fn(*args, **kwargs)

    def content_key(self) -> str:
        if self._key is None:
            avals = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype),
                                 self._example_args())
            closed = jax.make_jaxpr(self.fn)(*avals)
            digest = hashlib.sha256(str(closed.jaxpr).encode())
            for const in closed.consts:
                value = np.asarray(const)
                digest.update(repr((value.shape, str(value.dtype))).encode())
                digest.update(value.tobytes())
            self._key = digest.hexdigest()
        return self._key


def persist_executables(folder: str | Path | None) -> None:
    """Write compiled executables under `folder` and load them from there (None: stop)."""
    if not _LISTENING:
        jax.monitoring.register_event_listener(_on_event)
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        _LISTENING.append(True)
    _FOLDER[:] = [Path(folder)] if folder is not None else []


# What JAX did for the programs this thread asked it to compile. JAX reports both events
# synchronously on the compiling thread, so counting per thread is exact whatever other
# threads compile meanwhile. An executable that XLA's persistent cache supplied (its hit
# event), or that JAX's in-memory cache handed back without compiling (no backend-compile
# event: `jax.jit` of a function object it has lowered before, which may itself have come
# from XLA's cache, measured: then neither event fires), is not written.
_EVENTS = threading.local()
_LISTENING: list[bool] = []
_XLA_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def _on_event(event: str, **kwargs: Any) -> None:
    if event == _XLA_CACHE_HIT:
        _EVENTS.hits = getattr(_EVENTS, "hits", 0) + 1


def _on_duration(event: str, duration: float, **kwargs: Any) -> None:
    if event == _BACKEND_COMPILE:
        _EVENTS.compiles = getattr(_EVENTS, "compiles", 0) + 1


def _compile_events() -> tuple[int, int]:
    return getattr(_EVENTS, "compiles", 0), getattr(_EVENTS, "hits", 0)


def _freshly_compiled(before: tuple[int, int]) -> bool:
    """Whether XLA compiled, on this thread since `before`, and took nothing from a cache."""
    compiles, hits = _compile_events()
    return compiles > before[0] and hits == before[1]


def _plain(value: Any) -> bool:
    """Whether `repr(value)` names it completely (so it may be part of a disk key)."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


_SOURCE_DIGEST: list[str] = []


def pplc_source_digest() -> str:
    """A hash of every pplc source file: programs of another pplc are never reused."""
    if not _SOURCE_DIGEST:
        digest = hashlib.sha256()
        root = Path(__file__).resolve().parent.parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        _SOURCE_DIGEST.append(digest.hexdigest())
    return _SOURCE_DIGEST[0]


def _disk_path(fn_key: Callable, static: Hashable, arg_signature: Hashable) -> Path | None:
    content_key = getattr(fn_key, "content_key", None)
    if not _FOLDER or content_key is None or not _plain(static) or jax.process_count() > 1:
        return None
    import jaxlib
    devices = tuple((d.platform, d.device_kind) for d in jax.devices())
    named = repr((pplc_source_digest(), content_key(), static, arg_signature,
                  jax.__version__, jaxlib.__version__, devices,
                  os.environ.get("XLA_FLAGS", ""), bool(jax.config.jax_enable_x64)))
    return _FOLDER[0] / f"{hashlib.sha256(named.encode()).hexdigest()}.executable"


def _load(path: Path):
    """The executable stored at `path`, or None (absent, unreadable, of another jaxlib, or
    without its machine code)."""
    from jax.experimental import serialize_executable
    try:
        with open(path, "rb") as f:
            serialized, in_tree, out_tree = pickle.load(f)
        if not _holds_machine_code(serialized):
            return None
        return serialize_executable.deserialize_and_load(serialized, in_tree, out_tree)
    except Exception:   # noqa: BLE001 - any failure to load means: compile it anew
        return None


def _holds_machine_code(serialized: bytes) -> bool:
    """Whether a serialized executable carries its kernels' object code. XLA:CPU serializes
    a program it compiled with the ELF object files of its kernels; one that its persistent
    cache supplied has none left (measured: 0 of 12 such copies held one, every freshly
    compiled one did, and every copy without failed when run). A program with no kernel at
    all is refused too: it is cheap to compile. Other platforms serialize otherwise and
    rely on JAX's events alone (`_freshly_compiled`)."""
    return jax.default_backend() != "cpu" or b"\x7fELF" in serialized


def _store(path: Path, executable) -> None:
    """Write the executable atomically (a reader sees the whole file or none); a program
    that cannot be serialized, or a folder that cannot be written, is simply not stored."""
    from jax.experimental import serialize_executable
    try:
        serialized = serialize_executable.serialize(executable)
        if not _holds_machine_code(serialized[0]):
            return
        blob = pickle.dumps(serialized)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(blob)
        os.replace(partial, path)
    except Exception:   # noqa: BLE001
        return


def device_data(data: Any) -> Any:
    """Data as committed device arrays with strong dtypes, so shapes alone key the cache."""
    # (an array of which a run's process holds its own rows is placed by sharding.py)
    return jax.tree.map(lambda x: x if getattr(x, "by_rows", False)
                        else jax.device_put(np.asarray(x)), data)


def float_positions(value: Any, ndim: int, message: str) -> np.ndarray:
    """Starting positions as a floating array of `ndim` axes (integers become floats);
    ValueError(message) for another number of axes."""
    positions = np.asarray(value)
    if positions.ndim != ndim:
        raise ValueError(message)
    if not np.issubdtype(positions.dtype, np.floating):
        positions = positions.astype(jax.numpy.result_type(float))
    return positions
