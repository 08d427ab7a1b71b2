"""Data in the formats users have (CSV, .npz, several files merged, pandas DataFrames) and
initial values (`sample(init={...})`, `pplc sample --init FILE`), each checked with a
plain-words error: sizes never guessed, a name in two files refused, init values checked
like data (name, shape, finite, support) and located in a JSON init file.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import pplc
from pplc.cli import main
from pplc.datafiles import read_data
from pplc.errors import PplcError
from pplc.initial_values import InitValues, initial_points, read_init

SOURCE = """\
data N: int
data x: real[N]
data y: real[N]
alpha ~ Normal(0, 10)
beta ~ Normal(0, 10)
sigma ~ HalfNormal(5)
theta: real[2] ~ Normal(0, 1)
y ~ Normal(alpha + beta * x + theta[0], sigma)
"""
X = [0.5, 1.5, 2.5, 3.5]
Y = [1.0, 2.1, 2.9, 4.2]


@pytest.fixture(scope="module")
def model():
    return pplc.compile(SOURCE)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "model.ppl").write_text(SOURCE)
    (tmp_path / "table.csv").write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(X, Y)))
    (tmp_path / "sizes.json").write_text('{"N": 4}')
    return tmp_path


def test_csv_columns_and_a_json_of_sizes_are_merged(model, files):
    data, _ = read_data([files / "table.csv", files / "sizes.json"])
    assert data["N"] == 4 and np.array_equal(data["x"], X) and data["x"].dtype == np.float64
    cm = model.condition([files / "table.csv", files / "sizes.json"])
    assert np.array_equal(cm.lowered.data.arrays["y"], Y)


def test_a_size_the_files_omit_is_never_guessed(model, files):
    with pytest.raises(PplcError) as caught:
        model.condition(files / "table.csv")    # 4 rows, but N is not given
    assert "data 'N' is declared but not supplied" in str(caught.value)
    assert "table.csv" in str(caught.value)


def test_a_name_in_two_files_is_refused_naming_both(files):
    (files / "more.json").write_text('{"N": 4, "x": [1, 2, 3, 4]}')
    with pytest.raises(PplcError) as caught:
        read_data([files / "table.csv", files / "more.json"])
    text = str(caught.value)
    assert "data 'x' is given in both" in text and "table.csv" in text and "more.json" in text


def test_npz_and_dataframe(model, files):
    np.savez(files / "data.npz", N=np.int64(4), x=np.array(X), y=np.array(Y))
    cm = model.condition(files / "data.npz")
    assert cm.lowered.data.sizes["N"] == 4
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"x": X, "y": Y})
    data, _ = read_data(files / "table.csv")
    # A DataFrame is one array per column; its size still comes from the user.
    with pytest.raises(PplcError, match="data 'N' is declared but not supplied"):
        model.condition(frame)
    cm = model.condition({"N": 4, **{k: frame[k] for k in frame}})
    assert np.array_equal(cm.lowered.data.arrays["x"], data["x"])
    with pytest.raises(PplcError, match="column 'g' of the DataFrame holds text"):
        model.condition(pandas.DataFrame({"x": X, "g": ["a", "b", "c", "d"]}))


def test_csv_mistakes(files):
    (files / "text.csv").write_text("x,g\n1,control\n2,drug\n")
    (files / "dup.csv").write_text("x,x\n1,2\n")
    for name, words in [("text.csv", "column 'g' of"), ("dup.csv", "appears twice"),
                        ("nope.csv", "no such file"), ("data.txt", "unknown format")]:
        with pytest.raises(PplcError, match=words):
            read_data(files / name)


def test_missing_pandas_is_said_plainly(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(PplcError, match="needs pandas"):
        read_data(files / "table.csv")


def test_partial_initial_values(model):
    cm = model.condition({"N": 4, "x": X, "y": Y})
    starts = np.random.default_rng(0).uniform(-2, 2, size=(3, cm.dim))
    points = initial_points(cm, {"sigma": 0.5, "theta": [1.0, -1.0]}, starts)
    for start, point in zip(starts, points):
        given, rule = cm.constrain(point), cm.constrain(start)
        assert float(given["sigma"]) == pytest.approx(0.5)
        assert np.allclose(given["theta"], [1.0, -1.0])
        # The others keep the uniform rule's point, one per chain.
        assert float(given["alpha"]) == pytest.approx(float(rule["alpha"]))
    assert not np.allclose(points[0], points[1])


@pytest.mark.parametrize("values, words", [
    ({"sigm": 1.0}, "no latent of that name"),
    ({"y": 1.0}, "it is data"),
    ({"theta": [1.0]}, "has shape (1,), but 'theta' has shape (2,)"),
    ({"alpha": float("nan")}, "'alpha' is not a finite number"),
    ({"sigma": -1.0}, "'sigma' = -1 is outside its support"),
])
def test_initial_values_are_checked_like_data(model, values, words):
    cm = model.condition({"N": 4, "x": X, "y": Y})
    with pytest.raises(PplcError) as caught:
        initial_points(cm, values, np.zeros((1, cm.dim)))
    assert words in str(caught.value)
    if "sigm" in values:
        assert "did you mean 'sigma'?" in str(caught.value)


def test_init_file_mistakes_are_located(model, files):
    (files / "init.json").write_text('{"alpha": 0.0,\n "sigma": -2.0}')
    cm = model.condition({"N": 4, "x": X, "y": Y})
    values = read_init(files / "init.json")
    assert isinstance(values, InitValues)
    with pytest.raises(PplcError) as caught:
        initial_points(cm, values, np.zeros((1, cm.dim)))
    assert caught.value.render().startswith(f"{files / 'init.json'}:2:11: error: the "
                                            "initial value 'sigma' = -2 is outside")


def test_cli_data_files_and_init(files, capsys):
    model = str(files / "model.ppl")
    assert main(["check", model, "--data", str(files / "table.csv"), "--data",
                 str(files / "sizes.json")]) == 0
    assert f"ok with {files / 'table.csv'} + {files / 'sizes.json'}:" in capsys.readouterr().out
    assert main(["check", model, "--data", str(files / "table.csv")]) == 1
    err = capsys.readouterr().err
    assert "data 'N' is declared but not supplied" in err and "Traceback" not in err
    (files / "init.json").write_text(json.dumps({"sigma": 1.0, "thta": [0, 0]}))
    assert main(["sample", model, "--data", str(files / "table.csv"), "--data",
                 str(files / "sizes.json"), "--init", str(files / "init.json"),
                 "--chains", "1", "--warmup", "0", "--draws", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot start 'thta'" in err and "did you mean 'theta'?" in err
    assert main(["sample", model, "--data", str(files / "sizes.json"), "--init", "unifrom",
                 "--data", str(files / "table.csv")]) == 1
    assert "did you mean 'uniform'?" in capsys.readouterr().err
