"""A compilation cache that survives the process (JAX's persistent cache).

XLA compilation is most of what a user waits for on small and medium models (seconds,
against milliseconds of sampling). With the cache on, a second `pplc sample` of the same
model with new data of the same shapes loads the compiled programs from disk instead of
compiling them again. The cache lives under the user's cache folder
(`$XDG_CACHE_HOME/pplc/jax`, by default `~/.cache/pplc/jax`, or `$PPLC_CACHE_DIR`).

A warm XLA cache still leaves tracing and lowering, as long as the compile itself on small
models; so the samplers' executables are kept too, whole, in its `executables` folder, and
a second run loads them without tracing (`inference/programs.py`, `persist_executables`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pplc.jax_x64 import jax


def cache_dir() -> Path:
    if os.environ.get("PPLC_CACHE_DIR"):
        return Path(os.environ["PPLC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pplc" / "jax"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Turn JAX's persistent compilation cache on; returns the folder, or None if unusable."""
    folder = Path(path) if path else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every program, however quick to compile: the sampler's pieces are many and small.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder


def enable_executable_cache(path: str | Path | None = None) -> Path | None:
    """The compilation cache and whole executables beside it, both in a folder of this
    pplc's own (named by a hash of its source): what `pplc sample` and `fit` use. Returns
    the folder, or None if unusable.

    Why a folder per pplc: an executable that XLA's cache supplies cannot be written whole
    (`programs.compiled`), so after an upgrade a cache shared with the older pplc would
    keep supplying its programs and the new one would never keep an executable."""
    from pplc.inference import programs

    base = Path(path) if path else cache_dir()
    folder = enable_compilation_cache(base / programs.pplc_source_digest()[:16])
    if folder is not None:
        programs.persist_executables(folder / "executables")
    return folder
