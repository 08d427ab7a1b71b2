"""Data in the formats users have: JSON, CSV and NumPy `.npz` files, several at once, and
pandas DataFrames in Python. Reading only; `pplc.backends.data.bind_data` then checks the
values against the model's declarations, whatever they came from.

- JSON: a JSON object of name -> value (`pplc.frontend.data_json.load_json`); its mistakes, and
  the binding's, are located in the file (line and column).
- CSV: a header row of names, then one row per record; each column is one array of the
  data (`y`, `x`, `group`), numbers, with empty cells or `NA` as missing entries. Text is
  refused: code categories as integers. Read with pandas (ArviZ already needs it).
- `.npz` (`numpy.savez`): each array under its name; object arrays are refused.
- `.npy` (`numpy.save`): one array, named by the file's stem (`y.npy` is `y`).
- Parquet (`.parquet`, read with pyarrow): each numeric column one array.
- By row range (`by_rows=True`, a distributed run): a `.npy`, the uncompressed members of
  an `.npz` and Parquet columns come back as `pplc.rowfiles.FileRows`, whose rows are read
  only when asked for (each process its own); JSON and CSV are read whole.
- Several files (`--data sizes.json --data table.csv`): merged, and a name given in two
  files is an error naming both, never one silently kept.
- A pandas DataFrame (Python): each column one array, as a CSV file.

Sizes are never guessed: a CSV of 100 rows does not say `N = 100`. A size the model
declares (`data N: int`) and no file gives is refused by `bind_data`, which names it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pplc.frontend.data_json import load_json
from pplc.errors import Source, error

READERS = (".json", ".csv", ".npz", ".npy", ".parquet")


def read_data(paths: str | Path | Sequence[str | Path], by_rows: bool = False
              ) -> tuple[dict, Source | None]:
    """One or more data files -> (name -> value, the source diagnostics point into).

    A single JSON file keeps its text, so mistakes are located in it; otherwise the
    diagnostics name the file (or the files, joined with ' + '). `by_rows`: the arrays of
    `.npy`, `.npz` and Parquet files read by row range (module docstring)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise error("no data file given")
    if len(paths) == 1 and _format(paths[0]) == ".json":
        return load_json(paths[0])
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for i, path in enumerate(paths):
        if path in paths[:i]:
            raise error(f"data file '{path}' is given twice")
        values = _read_one(path, by_rows)
        for name, value in values.items():
            if name in merged:
                raise error(f"data '{name}' is given in both {origin[name]} and {path}",
                            Source(str(path), ""),
                            hint="give each name in one file only")
            merged[name], origin[name] = value, path
    return merged, Source(" + ".join(str(p) for p in paths), "")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise error(f"cannot read data file '{path}': unknown format "
                    f"'{path.suffix or '(no suffix)'}'",
                    hint="data files are .json (an object of name -> value), .csv (a "
                         "header of names, one column per array), .npz (numpy.savez), "
                         ".npy (numpy.save, named by its stem) or .parquet")
    return suffix


def _read_one(path: Path, by_rows: bool = False) -> dict[str, Any]:
    fmt = _format(path)
    if fmt == ".json":
        return load_json(path)[0]
    if not path.exists():
        raise error(f"cannot read data file '{path}': no such file")
    if path.is_dir():
        raise error(f"cannot read data file '{path}': it is a folder")
    if fmt == ".csv":
        return read_csv(path)
    if fmt == ".npz" and not by_rows:
        return read_npz(path)
    return _read_binary(path, fmt, by_rows)


def _read_binary(path: Path, fmt: str, by_rows: bool) -> dict[str, Any]:
    """`.npy` and Parquet (and `.npz` by rows), through pplc.rowfiles; read whole unless
    `by_rows`."""
    from pplc import rowfiles
    where = Source(str(path), "")
    try:
        if fmt == ".npy":
            values = {path.stem: rowfiles.npy_rows(path)}
        elif fmt == ".npz":
            values = rowfiles.npz_rows(path)
        else:
            values = rowfiles.parquet_rows(path)
    except ImportError:
        raise error(f"reading the Parquet file '{path}' needs pyarrow, which is not "
                    "installed", where, hint="pip install pyarrow (or give the data as "
                                             ".npy/.npz)") from None
    except Exception as exc:   # noqa: BLE001 (numpy, zipfile, pyarrow: each its own kinds)
        raise error(f"cannot read '{path}' as {fmt[1:]}: {exc}".splitlines()[0], where,
                    hint="object arrays (pickles) are not read; save numbers only"
                    if "pickle" in str(exc) else None) from None
    return values if by_rows else {k: np.asarray(v) for k, v in values.items()}


def _pandas():
    try:
        import pandas
    except ImportError:
        raise error("reading CSV files and DataFrames needs pandas, which is not installed",
                    hint="pip install pandas (or give the data as JSON or .npz)") from None
    return pandas


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """A CSV file -> name -> column (int64 when every cell is a whole number, float64
    otherwise, NaN where a cell is empty)."""
    pandas = _pandas()
    path = Path(path)
    where = Source(str(path), "")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read data file '{path}': {getattr(exc, 'strerror', None) or exc}"
                    ) from None
    if not header or not any(cell.strip() for cell in header):
        raise error(f"the CSV file '{path}' is empty: it needs a header row of names", where)
    names = [cell.strip() for cell in header]
    for i, name in enumerate(names):
        if not name:
            raise error(f"column {i + 1} of '{path}' has no name in the header row", where)
        if name in names[:i]:
            raise error(f"column '{name}' appears twice in the header of '{path}'", where,
                        hint="a reader would silently rename or drop one of them")
    try:
        frame = pandas.read_csv(path, skipinitialspace=True, encoding="utf-8-sig")
    except (ValueError, pandas.errors.ParserError) as exc:
        raise error(f"cannot read the CSV file '{path}': {exc}".strip(), where) from None
    frame.columns = names
    return frame_columns(frame, str(path))


def frame_columns(frame, what: str = "the DataFrame") -> dict[str, np.ndarray]:
    """Each column of a pandas DataFrame as one array; a column of text is refused."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "b":
            out[str(name)] = column.to_numpy(dtype=np.int64)
            continue
        try:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            bad = next(v for v in column if _not_number(v))
            row = list(column).index(bad)
            raise error(f"column '{name}' of {what} holds text, not numbers: {bad!r} in "
                        f"row {row + 1} (under the header)", Source(what, "") if what != "the DataFrame" else None,
                        hint="code categories as integers 0, 1, ..., K - 1") from None
        whole = np.all(np.isfinite(values)) and np.all(values == np.round(values)) \
            and column.dtype.kind in "iu"
        out[str(name)] = values.astype(np.int64) if whole else values
    return out


def _not_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """A `numpy.savez` file -> name -> array (object arrays are refused: no pickles)."""
    path = Path(path)
    where = Source(str(path), "")
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise error(f"'{path}' is a single NumPy array, not an .npz archive of named "
                        "arrays", where, hint="write it with numpy.savez(path, name=array, "
                                              "...)")
        with archive:
            return {name: np.asarray(archive[name]) for name in archive.files}
    except ValueError as exc:
        message = str(exc)
        if "allow_pickle" in message:
            raise error(f"'{path}' holds an array of Python objects, which pplc does not "
                        "read", where, hint="save numbers only (numpy.savez with numeric "
                                            "arrays)") from None
        raise error(f"cannot read '{path}' as an .npz archive: {message}", where) from None
    except (OSError, EOFError) as exc:
        raise error(f"cannot read '{path}' as an .npz archive: "
                    f"{getattr(exc, 'strerror', None) or exc}", where) from None


def as_data(data, by_rows: bool = False) -> tuple[Mapping[str, Any], Source | None] | None:
    """What `Model.condition` takes, as (name -> value, source): a path or a list of
    paths, or a pandas DataFrame. None for anything else (a dict is used as it is)."""
    if isinstance(data, (str, Path)):
        return read_data(data, by_rows)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, Path))
                                                         for p in data):
        return read_data(data, by_rows)
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):
        return frame_columns(data), None
    return None
