"""`pplc fit --batch-size B` on data files whose arrays are memory-mapped, never read whole:
minibatch ADVI reads B rows a step and the control variate's passes read B rows at a time
(inference/minibatch.py `fit_streaming`), so peak memory is bounded by the batch, not by N.

Why its own reader beside datafiles.py: datafiles.py returns arrays in memory, which the
binding then checks value by value (touching every row of a mapping makes the page cache's
copy of the whole file resident in this process: ru_maxrss counts it), and its row-range
arrays (pplc/rowfiles.py `FileRows`, for a distributed run) read a range per call, while a
batch is B scattered rows: `np.memmap`s here are read by `BatchSource` (one pread a row)
and checked by `minibatch.check_rows`, a block of rows at a time, before the fit.

What is mapped: a `NAME.npy` given as --data or in a folder given as --data, the members
of an uncompressed `.npz` (`numpy.savez`: a stored member's bytes are a `.npy` file at an offset
of the archive), C-ordered and of at least one dimension. Everything else is read as
datafiles.py reads it (a compressed `.npz` member, a 0-d array such as a size, JSON and
CSV files), so sizes come from the files as usual (`--data sizes.json --data folder/`).
Only the arrays over the observations' plate are streamed; `fit_streaming` refuses a plate
array that is not mapped (say a compressed member), with what to do instead.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pplc.datafiles import read_data
from pplc.errors import Source, error
from pplc.rowfiles import npz_layout, npz_member


def mappable(paths: Sequence[str | Path]) -> bool:
    """Do the data files hold arrays this module maps (a folder, an .npz or an .npy)?"""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or ())
    return any(Path(p).is_dir() or Path(p).suffix.lower() in (".npz", ".npy") for p in paths)


def read_mapped(paths: Sequence[str | Path]) -> tuple[dict[str, Any], Source]:
    """The data files as name -> value, arrays memory-mapped where they can be (module
    docstring); a name given twice is refused, as datafiles.py refuses it."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            values = {p.stem: _map_npy(p) for p in sorted(path.glob("*.npy"))}
            if not values:
                raise error(f"data folder '{path}' holds no .npy files",
                            hint="give each array as NAME.npy (numpy.save) in the folder")
        elif path.suffix.lower() == ".npz" and path.exists():
            values = _map_npz(path)
        elif path.suffix.lower() == ".npy" and path.exists():
            values = {path.stem: _map_npy(path)}   # named by its stem, as datafiles.py
        else:
            values = read_data(path)[0]
        for name, value in values.items():
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()   # a size from an .npz: what fit_streaming reads as one
            if name in merged:
                raise error(f"data '{name}' is given in both {origin[name]} and {path}",
                            Source(str(path), ""), hint="give each name in one file only")
            merged[name], origin[name] = value, path
    return merged, Source(" + ".join(str(p) for p in paths), "")


def _map_npy(path: Path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise error(f"cannot read '{path}' as a .npy file: {exc}", Source(str(path), "")
                    ) from None
    return array if array.ndim and array.flags.c_contiguous else np.asarray(array)


def _map_npz(path: Path) -> dict[str, Any]:
    """An .npz archive's stored members mapped at their offsets, the others read whole."""
    try:
        return {name: npz_member(path, name) if where is None
                else np.memmap(path, where[2], "r", offset=where[0], shape=where[1])
                for name, where in npz_layout(path).items()}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise error(f"cannot read '{path}' as an .npz archive: {exc}", Source(str(path), "")
                    ) from None


def fit_mapped(model, data: dict[str, Any], batch_size: int, *, method: str, draws: int,
               seed: int, max_iterations: int | None):
    """Minibatch ADVI streamed from `data` (read_mapped's) -> a Posterior of one chain."""
    from pplc.inference.minibatch import fit_streaming

    started = time.perf_counter()
    family = "meanfield" if method == "advi" else "fullrank"
    options = {} if max_iterations is None else {"max_iterations": max_iterations}
    result, head = fit_streaming(model, data, batch_size, seed=seed, method=family,
                                 num_draws=draws, **options)
    setup = time.perf_counter() - started - result.seconds
    return head.posterior_of(result.draws[None], result.n_grad_evals, setup, result.seconds,
                             {"inference_method": method, "seed": seed,
                              "iterations": result.iterations,
                              "converged": int(result.converged), "batch_size": batch_size})
