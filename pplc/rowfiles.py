"""Arrays of a data file read by row range: each process of a distributed run reads only
the rows its devices hold.

Why a reader of our own and not `np.load(mmap_mode="r")`: a mapping is read by whatever
touches it (a check over the whole array, `jnp.asarray`), and touching a row maps the
page-cache folio around it; here the only way to the values is `rows(start, stop)`, which
reads exactly those rows' bytes (`os.pread` from the `.npy` header's offset, or the
Parquet row groups that overlap them), and every read is counted (`bytes_read`), so a
test can say what a process read. What a process holds of such an array is what it asked
for; nothing else is kept.

Readable by row range: a `.npy` file, the uncompressed members of an `.npz` archive
(`numpy.savez`; a compressed member's bytes cannot be addressed by row, so it is read
whole), and the numeric columns of a Parquet file (`pyarrow`, by row group). JSON and CSV
are read whole (text has no row offsets without parsing everything before them).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np


class FileRows:
    """An array in a file that is read only by row range (along axis 0).

    It has the array's `shape`, `dtype` and `ndim` without reading anything; `rows` reads
    rows `start:stop`; indexing with a slice (or a tuple whose first entry is a slice)
    reads only the rows it selects. `np.asarray` reads the whole array (for arrays that
    are not split, which are small); `whole_reads` counts those."""

    by_rows = True   # what backends/data.py and the placement look for (no import)

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype, read_rows,
                 what: str):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self._read_rows, self.what = read_rows, what
        self.bytes_read = 0
        self.rows_read: list[tuple[int, int]] = []
        self.whole_reads = 0
        self.check = None   # rows -> rows, run on every block read (backends/data.py)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    row_bytes = property(lambda self: int(np.prod(self.shape[1:], dtype=np.int64))
                         * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FileRows({self.what}, shape={self.shape}, dtype={self.dtype})"

    def rows(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(self.shape[0], int(stop))
        stop = max(start, stop)
        block = self._read_rows(start, stop).reshape((stop - start, *self.shape[1:]))
        self.bytes_read += block.nbytes
        self.rows_read.append((start, stop))
        return self.check(block, start) if self.check is not None else block

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        first, rest = (index[0] if index else slice(None)), index[1:]
        if isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(self.shape[0])
            return self.rows(start, stop)[(slice(None), *rest)]
        if isinstance(first, (int, np.integer)):
            i = int(first) + (self.shape[0] if int(first) < 0 else 0)
            return self.rows(i, i + 1)[(0, *rest)]
        return np.asarray(self)[index]

    def __array__(self, dtype=None, copy=None):
        self.whole_reads += 1
        whole = self.rows(0, self.shape[0])
        return whole if dtype is None else whole.astype(dtype)

    def with_dtype(self, dtype) -> "FileRows":
        """The same rows converted to `dtype` as they are read."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        inner = self
        return FileRows(self.path, self.shape, dtype,
                        lambda a, b: inner.rows(a, b).astype(dtype), self.what)


def npy_rows(path: str | Path) -> FileRows | np.ndarray:
    """A `.npy` file by row range (a 0-d or Fortran-ordered array: read whole)."""
    path = Path(path)
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = _header(f, version)
        offset = f.tell()
    if not shape or fortran or dtype.hasobject:
        return np.load(path, allow_pickle=False)
    return _by_pread(path, offset, shape, dtype, str(path))


def npz_layout(path: str | Path) -> dict[str, tuple[int, tuple[int, ...], np.dtype] | None]:
    """Where each member of an `.npz` lies: name -> (byte offset of its data, shape, dtype)
    for a stored (`numpy.savez`), C-ordered array of at least one axis, whose rows can be
    read in place; None for a member that must be read whole (compressed, 0-d, Fortran
    order, objects)."""
    out: dict[str, tuple[int, tuple[int, ...], np.dtype] | None] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            out[name] = None
            if info.compress_type != zipfile.ZIP_STORED:
                continue
            raw.seek(info.header_offset)
            local = raw.read(30)   # the local file header: 30 bytes, then name and extra
            raw.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                     + int.from_bytes(local[28:30], "little"))
            version = np.lib.format.read_magic(raw)
            shape, fortran, dtype = _header(raw, version)
            if shape and not fortran and not dtype.hasobject:
                out[name] = (raw.tell(), shape, dtype)
    return out


def npz_member(path: str | Path, name: str) -> np.ndarray:
    """One member of an `.npz`, read whole."""
    with zipfile.ZipFile(path) as archive:
        member = name if name in archive.namelist() else f"{name}.npy"
        with archive.open(member) as f:
            return np.lib.format.read_array(f, allow_pickle=False)


def npz_rows(path: str | Path) -> dict[str, FileRows | np.ndarray]:
    """An `.npz` archive: its uncompressed (`numpy.savez`) members by row range, the others
    (compressed, 0-d) read whole."""
    path = Path(path)
    return {name: npz_member(path, name) if where is None
            else _by_pread(path, where[0], where[1], where[2], f"{path}:{name}")
            for name, where in npz_layout(path).items()}


def parquet_rows(path: str | Path) -> dict[str, FileRows]:
    """Each numeric column of a Parquet file, read by the row groups that overlap the
    rows asked for (nulls read as NaN)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = Path(path)
    meta = pq.ParquetFile(path).metadata
    starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    schema = meta.schema.to_arrow_schema()
    out = {}
    for field in schema:
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
                or pa.types.is_boolean(field.type)):
            raise ValueError(f"column '{field.name}' is {field.type}, not numbers")
        dtype = np.dtype(field.type.to_pandas_dtype())
        if dtype.kind in "iub" and _has_nulls(meta, schema.get_field_index(field.name)):
            dtype = np.dtype(np.float64)   # a null reads as NaN

        def read(a, b, column=field.name, dtype=dtype, groups_read=[]):
            groups = [i for i in range(len(starts) - 1) if starts[i] < b and starts[i + 1] > a]
            groups_read.extend(groups)
            if not groups:
                return np.empty(0, dtype)
            table = pq.ParquetFile(path).read_row_groups(groups, columns=[column])
            values = table.column(0).to_numpy(zero_copy_only=False)
            lo = a - starts[groups[0]]
            return np.asarray(values[lo:lo + (b - a)], dtype)

        rows = FileRows(path, (int(meta.num_rows),), dtype, read, f"{path}:{field.name}")
        rows.groups_read = read.__defaults__[-1]   # which row groups were decoded
        out[field.name] = rows
    return out


def _has_nulls(meta, column: int) -> bool:
    """Whether a column may hold nulls (unknown without statistics: assume it may)."""
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is None or not stats.has_null_count or stats.null_count:
            return True
    return False


def _header(f, version) -> tuple[tuple[int, ...], bool, np.dtype]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _by_pread(path: Path, offset: int, shape, dtype: np.dtype, what: str) -> FileRows:
    rows: FileRows

    def read(a: int, b: int) -> np.ndarray:
        count = (b - a) * rows.row_bytes
        fd = os.open(path, os.O_RDONLY)
        try:
            buffer = bytearray(count)
            view, done = memoryview(buffer), 0
            while done < count:
                n = os.preadv(fd, [view[done:]], offset + a * rows.row_bytes + done)
                if n == 0:
                    raise OSError(f"'{path}' ends before row {b}")
                done += n
        finally:
            os.close(fd)
        return np.frombuffer(buffer, dtype)

    rows = FileRows(path, shape, dtype, read, what)
    return rows
