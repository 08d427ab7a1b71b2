"""Batches of rows for minibatch ADVI (minibatch.py), from arrays in memory or `.npy` files.

Why a module of its own: reading rows of a file so that resident memory does not follow
the file's size is its own problem (see `_RowFile`), apart from the optimizer.
"""

from __future__ import annotations

import mmap
import os
from typing import Any, Mapping

import numpy as np


class BatchSource:
    """Draws batches of rows from arrays held in memory or memory-mapped.

    `rows`: the arrays indexed by the plate (name -> array-like, axis in `axes`); a
    whole-file `.npy` memmap is read row by row with `os.pread` (`_RowFile`)."""

    def __init__(self, rows: Mapping[str, Any], axes: Mapping[str, int], extent: int,
                 batch_size: int, seed: int):
        self.rows, self.axes = dict(rows), {k: axes[k] for k in rows}
        self.files = {k: _RowFile(v) for k, v in self.rows.items() if _RowFile.fits(v, axes[k])}
        self.extent, self.batch_size = extent, batch_size
        self.rng = np.random.default_rng(seed)

    def indices(self) -> np.ndarray:
        """B distinct rows, uniformly, sorted (O(B) memory: not a permutation of N)."""
        return np.sort(self.rng.choice(self.extent, self.batch_size, replace=False))

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The rows `index` as arrays of our own: a memory-mapped file's rows are read with
        `os.pread`, not through the mapping (_RowFile)."""
        return {k: self.files[k].rows(index) if k in self.files
                else np.asarray(np.take(v, index, axis=self.axes[k]))
                for k, v in self.rows.items()}

    def block(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows start:stop, in order (a full pass, minibatch_advi.py): one read a file."""
        return {k: self.files[k].block(start, stop) if k in self.files
                else np.asarray(np.take(v, np.arange(start, stop), axis=self.axes[k]))
                for k, v in self.rows.items()}

    def row_bytes(self) -> int:
        """Bytes of one row of every array together."""
        return sum(int(np.prod(np.delete(np.shape(v), self.axes[k]), dtype=np.int64))
                   * np.dtype(getattr(v, "dtype", np.float64)).itemsize
                   for k, v in self.rows.items())

    def stacked(self, count: int) -> dict[str, np.ndarray]:
        """`count` batches stacked on a new leading axis (one compiled chunk's input)."""
        batches = [self.take(self.indices()) for _ in range(count)]
        return {k: np.stack([b[k] for b in batches]) for k in self.rows}


class _RowFile:
    """Rows of a C-ordered `.npy` memmap read by `os.pread`, one call per row.

    Why not through the mapping: touching one row maps the page-cache folio around it
    (measured here: 1000 random rows of a 230 MB file mapped 148 MB), so resident memory
    would follow the file's size; a read copies only the bytes asked for."""

    def __init__(self, array: np.memmap):
        self.fd = os.open(array.filename, os.O_RDONLY)
        self.dtype, self.tail = array.dtype, array.shape[1:]
        self.row_bytes = int(np.prod(self.tail, dtype=np.int64)) * array.dtype.itemsize
        self.offset = int(array.offset)

    @staticmethod
    def fits(array, axis: int) -> bool:
        # a mapping made by np.memmap / np.load itself (its base is the mmap), whose
        # `offset` is where its bytes start: a view (a slice of a memmap) keeps the
        # parent's offset, so it is read through numpy instead. The bytes may end before
        # the file does (a member of an uncompressed .npz: pplc/streaming.py)
        return (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap)
                and array.filename is not None and axis == 0 and array.flags.c_contiguous
                and os.path.getsize(array.filename) >= int(array.offset) + array.nbytes)

    def rows(self, index: np.ndarray) -> np.ndarray:
        data = b"".join(os.pread(self.fd, self.row_bytes, self.offset + int(i) * self.row_bytes)
                        for i in index)
        return np.frombuffer(data, self.dtype).reshape((len(index), *self.tail))

    def block(self, start: int, stop: int) -> np.ndarray:
        count = (stop - start) * self.row_bytes
        data = os.pread(self.fd, count, self.offset + start * self.row_bytes)
        if len(data) != count:
            raise OSError(f"short read of rows {start}:{stop}")
        return np.frombuffer(data, self.dtype).reshape((stop - start, *self.tail))

    def __del__(self):
        os.close(self.fd)
