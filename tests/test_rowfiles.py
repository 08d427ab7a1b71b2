"""Data files read by row range (pplc/rowfiles.py): what a process of a distributed run
would read of an array is the rows it asks for, counted in bytes (and, for Parquet, in
row groups decoded); the binding checks the shape from the header without reading a row
and the values block by block as they are read."""

from __future__ import annotations

import numpy as np
import pytest

from pplc import rowfiles
from pplc.datafiles import read_data
from pplc.errors import PplcError

MODEL = """
data N: int
data K: int
data X: real[N, K]
data y: int(lower=0, upper=1)[N]
beta: real[K] ~ Normal(0, 1)
y ~ Bernoulli(logits=X @ beta)
"""


def _arrays(n=1000, k=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, k)), rng.integers(0, 2, n)


def test_a_npy_file_is_read_only_in_the_rows_asked_for(tmp_path):
    X, _ = _arrays()
    np.save(tmp_path / "X.npy", X)
    rows = rowfiles.npy_rows(tmp_path / "X.npy")
    assert rows.shape == X.shape and rows.bytes_read == 0   # the header only
    np.testing.assert_array_equal(rows[250:500], X[250:500])
    assert rows.bytes_read == 250 * 3 * 8 and rows.rows_read == [(250, 500)]
    np.testing.assert_array_equal(rows[999, 1], X[999, 1])
    assert rows.bytes_read == 251 * 3 * 8 and rows.whole_reads == 0


def test_an_npz_archive_uncompressed_by_rows_compressed_whole(tmp_path):
    X, y = _arrays()
    np.savez(tmp_path / "d.npz", X=X, y=y, N=np.int64(1000))
    np.savez_compressed(tmp_path / "c.npz", X=X)
    members = rowfiles.npz_rows(tmp_path / "d.npz")
    assert isinstance(members["X"], rowfiles.FileRows) and int(members["N"]) == 1000
    np.testing.assert_array_equal(members["y"][500:1000], y[500:])
    np.testing.assert_array_equal(members["X"][0:2], X[:2])
    assert members["y"].bytes_read == 500 * 8 and members["X"].bytes_read == 2 * 3 * 8
    compressed = rowfiles.npz_rows(tmp_path / "c.npz")["X"]   # bytes not addressable by row
    assert isinstance(compressed, np.ndarray)
    np.testing.assert_array_equal(compressed, X)


def test_a_parquet_column_decodes_only_the_row_groups_it_needs(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    X, y = _arrays()
    pq.write_table(pa.table({"y": y, "x0": X[:, 0]}), tmp_path / "d.parquet",
                   row_group_size=100)
    columns = rowfiles.parquet_rows(tmp_path / "d.parquet")
    assert columns["y"].dtype == np.int64 and columns["x0"].shape == (1000,)
    np.testing.assert_array_equal(columns["y"][250:420], y[250:420])
    assert sorted(set(columns["y"].groups_read)) == [2, 3, 4]   # rows 200-499 of 1000
    assert columns["x0"].groups_read == []


def test_read_data_gives_npy_and_parquet_whole_or_by_rows(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    X, y = _arrays()
    np.save(tmp_path / "X.npy", X)
    pq.write_table(pa.table({"y": y}), tmp_path / "y.parquet")
    whole, source = read_data([tmp_path / "X.npy", tmp_path / "y.parquet"])
    assert isinstance(whole["X"], np.ndarray) and isinstance(whole["y"], np.ndarray)
    np.testing.assert_array_equal(whole["X"], X)
    lazy, _ = read_data([tmp_path / "X.npy", tmp_path / "y.parquet"], by_rows=True)
    assert isinstance(lazy["X"], rowfiles.FileRows) and lazy["X"].bytes_read == 0


def test_binding_rows_checks_the_shape_now_and_the_values_as_they_are_read(tmp_path):
    import pplc
    X, y = _arrays()
    y[700] = 2   # outside int(lower=0, upper=1), in the second half only
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y.astype(np.int32))
    data, _ = read_data([tmp_path / "X.npy", tmp_path / "y.npy"], by_rows=True)
    model = pplc.compile(MODEL)
    from pplc.backends.data import bind_data
    bound = bind_data(model.graph, {"N": 1000, "K": 3, **data})
    assert data["X"].bytes_read == 0 and data["y"].bytes_read == 0   # headers only
    assert bound.arrays["y"].dtype == np.int64   # int32 on disk, converted as read
    assert bound.arrays["y"][0:500].dtype == np.int64   # the first half: fine
    with pytest.raises(PplcError) as caught:
        bound.arrays["y"][500:1000]
    message = str(caught.value)
    assert "in rows 500..999 of" in message and "y.npy" in message
    assert "y[700]' = 2 is outside its declared type" in message
    with pytest.raises(PplcError, match=r"data 'X' has shape \(1000, 3\), but its "):
        bind_data(model.graph, {"N": 999, "K": 3, **data})
    assert data["X"].bytes_read == 0


def test_a_model_conditions_on_npy_and_parquet_files_as_on_the_arrays(tmp_path):
    import json

    import pplc
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    X, y = _arrays(200)
    np.save(tmp_path / "X.npy", X)
    pq.write_table(pa.table({"y": y}), tmp_path / "y.parquet", row_group_size=64)
    (tmp_path / "sizes.json").write_text(json.dumps({"N": 200, "K": 3}))
    model = pplc.compile(MODEL)
    files = model.condition([tmp_path / "X.npy", tmp_path / "y.parquet",
                             tmp_path / "sizes.json"])
    arrays = model.condition({"N": 200, "K": 3, "X": X, "y": y})
    u = np.linspace(-1, 1, 3)
    assert float(files.log_density({"beta": u})) == float(arrays.log_density({"beta": u}))
