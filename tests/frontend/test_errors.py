"""Every mistake a user can make gets `FILE:LINE:COL: error: message`, the line and a caret.

One case per distinct mistake: the model text (and data, for data mistakes), the expected
line and column, and a fragment of the message (and of the hint where there is one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import pplc
from pplc.errors import PplcError

EIGHT = """\
data J: int
data y: real[J]
data sigma: positive[J]
mu ~ Normal(0, 5)
tau ~ HalfCauchy(5)
for j in range(J):
    theta[j] ~ Normal(mu, tau)
    y[j] ~ Normal(theta[j], sigma[j])
"""
EIGHT_DATA = {"J": 3, "y": [1.0, 2.0, 3.0], "sigma": [1.0, 1.0, 2.0]}

# (id, model text, data or None, line, column, message fragment, hint fragment or None)
MODEL_ERRORS = [
    ("missing-colon", "data N: int\nfor i in range(N)\n    x[i] ~ Normal(0, 1)\n", None,
     2, 18, "unexpected end of line", "':'"),
    ("unknown-name", EIGHT.replace("sigma[j])", "sigmaa[j])"), None,
     8, 29, "unknown name 'sigmaa'", "did you mean 'sigma'?"),
    ("unknown-distribution", "mu ~ Normall(0, 1)\n", None, 1, 6,
     "unknown distribution 'Normall'", "did you mean 'Normal'?"),
    ("unknown-function", "mu ~ Normal(0, 1)\nx = expp(mu)\n", None, 2, 5,
     "unknown function 'expp'", "did you mean 'exp'?"),
    ("function-arity", "mu ~ Normal(0, 1)\nx = exp(mu, 2)\n", None, 2, 5,
     "'exp' takes 1 argument, 2 given", None),
    ("bad-keyword", "mu ~ Normal(0, scal=1)\n", None, 1, 6,
     "Normal has no parameter 'scal'", None),
    ("too-many-arguments", "mu ~ Normal(0, 1, 2)\n", None, 1, 6,
     "Normal takes at most 2 positional arguments", None),
    ("probs-and-logits", "z ~ Bernoulli(probs=0.5, logits=0.1)\n", None, 1, 5,
     "Bernoulli takes either (probs) or (logits), not both", None),
    ("missing-parameter", "mu ~ Normal(0)\n", None, 1, 6,
     "Normal is missing its parameter 'scale'", None),
    ("defined-twice", "mu ~ Normal(0, 1)\nmu ~ Normal(1, 1)\n", None, 2, 1,
     "'mu' is defined twice (first on line 1)", "exactly one definition"),
    ("sample-and-assign", "mu ~ Normal(0, 1)\nmu = 3\n", None, 2, 1,
     "'mu' is defined both with '~' (line 1) and with '=' (line 2)", None),
    ("cycle", "a = b + 1\nb = a * 2\nmu ~ Normal(a, 1)\n", None, 1, 1,
     "cycle: a -> b -> a", None),
    ("unknown-type", "data N: int\ndata y: reel[N]\n", None, 2, 9,
     "unknown type 'reel'", "did you mean 'real'?"),
    ("data-declared-twice", "data N: int\ndata N: real\n", None, 2, 6,
     "data 'N' is declared twice (first on line 1)", None),
    ("distribution-as-value", "x = Normal(0, 1)\n", None, 1, 5,
     "distribution 'Normal' cannot be used as a value", "x ~ Normal"),
    ("not-a-distribution", "mu ~ 3\n", None, 1, 6,
     "the right side of '~' must be a distribution", None),
    ("function-as-distribution", "mu ~ exp(3)\n", None, 1, 6,
     "'exp' is a function, not a distribution", None),
    ("bad-character", "mu ~ Normal(0, 1) $\n", None, 1, 19, "unexpected character '$'", None),
    ("unexpected-indent", "mu ~ Normal(0, 1)\n    tau ~ HalfNormal(1)\n", None, 2, 1,
     "unexpected indentation", None),
    ("shadowing-loop-variable", "data N: int\nmu ~ Normal(0, 1)\nfor mu in range(N):\n"
     "    x[mu] ~ Normal(0, 1)\n", None, 3, 5, "loop variable 'mu' hides", None),
    ("not-range", "data N: int\nfor i in ranger(N):\n    x[i] ~ Normal(0, 1)\n", None, 2, 10,
     "a loop must run over range(...), not 'ranger'", None),
    ("positional-after-keyword", "mu ~ Normal(loc=0, 1)\n", None, 1, 20,
     "positional argument follows keyword argument", None),
    ("recursive-function", "def f(x):\n    return f(x) + 1\nmu ~ Normal(f(0), 1)\n", None,
     1, 5, "recursive function: f -> f", None),
    ("comparison-typo", "mu ~ Normal(0, 1)\nx = mu = 1\n", None, 2, 8, "unexpected '='", None),
    ("unknown-decorator", "@noncenterd\nmu ~ Normal(0, 1)\n", None, 1, 1,
     "unknown decorator '@noncenterd'", "did you mean 'noncentered'?"),
    # Mistakes found once data give the sizes.
    ("broadcast-mismatch", EIGHT.replace("y[j] ~ Normal(theta[j], sigma[j])",
                                          "y[j] ~ Normal(theta[j], sigma[j])\n"
                                          "z: real[2] ~ Normal(theta, 1.0)"),
     EIGHT_DATA, 9, 14, "Normal(...) has shape (3,), but z has shape (2,)", None),
    ("arguments-do-not-broadcast", "data N: int\nmu ~ Normal(zeros(N), ones(4))\n",
     {"N": 3}, 2, 6, "do not broadcast", None),
    ("latent-discrete", "p ~ Beta(1, 1)\nk ~ Poisson(3.0)\n", {}, 2, 1,
     "'k' is a latent discrete variable", None),
    ("element-defined-twice", "data N: int\nfor i in range(N):\n    x[i] ~ Normal(0, 1)\n"
     "x[0] ~ Normal(0, 2)\n", {"N": 3}, 4, 1, "element x[0] is defined also on line 3", None),
    ("element-never-defined", "x[0] ~ Normal(0, 1)\nx[2] ~ Normal(0, 1)\n", {}, 1, 1,
     "element x[1] is never defined", None),
    ("type-wider-than-support", "tau: real ~ HalfNormal(1)\n", {}, 1, 6,
     "type 'real' is wider than, or not inside, the support of HalfNormal (positive)", None),
    ("too-many-indices", "data N: int\nmu: real[N] ~ Normal(0, 1)\nx = mu[0, 1]\n",
     {"N": 2}, 3, 5, "too many indices: 2 for a value of shape (2,)", None),
    ("constant-index-out-of-range", "data N: int\nmu: real[N] ~ Normal(0, 1)\nx = mu[5]\n",
     {"N": 2}, 3, 8, "index 5 is out of range for axis 0 of size 2", None),
]


def _first_line(err: PplcError) -> str:
    return err.render().splitlines()[0]


@pytest.mark.parametrize("case", MODEL_ERRORS, ids=[c[0] for c in MODEL_ERRORS])
def test_model_error(tmp_path, case):
    _, text, data, line, column, message, hint = case
    path = tmp_path / "model.ppl"
    path.write_text(text)
    with pytest.raises(PplcError) as info:
        model = pplc.compile(path)
        if data is not None:
            model.condition(data)
    rendered = info.value.render()
    head = _first_line(info.value)
    assert head.startswith(f"{path}:{line}:{column}: error: "), rendered
    assert message in head, rendered
    lines = rendered.splitlines()
    # The source line, then a caret starting under the column.
    assert lines[1].strip() == text.splitlines()[line - 1].strip(), rendered
    caret = lines[2][4:]
    assert caret.index("^") == column - 1, rendered
    if hint is not None:
        assert "hint:" in rendered and hint in rendered, rendered


# ---------------------------------------------------------------- data mistakes

DATA_ERRORS = [
    # (id, data text, location ("model"|"data", line, col), message fragment, hint)
    ("unknown-data-name", '{"J": 3, "y": [1, 2, 3], "sigma": [1, 1, 2],\n "sigmas": 1}',
     ("data", 2, 2), "unknown data name 'sigmas'", "did you mean 'sigma'?"),
    ("missing-data", '{"J": 3, "y": [1, 2, 3]}', ("model", 3, 6),
     "data 'sigma' is declared but not supplied", None),
    ("wrong-shape", '{"J": 3, "y": [1, 2], "sigma": [1, 1, 2]}', ("model", 2, 9),
     "data 'y' has shape (2,), but its declaration says real[J] = (3,)", None),
    ("not-an-int", '{"J": 3.5, "y": [1, 2, 3], "sigma": [1, 1, 2]}', ("model", 1, 9),
     "data 'J' must be an integer", None),
    ("not-positive", '{"J": 3, "y": [1, 2, 3], "sigma": [1, -1, 2]}', ("model", 3, 13),
     "data 'sigma[1]' = -1 is outside its declared type positive[J]", None),
    ("json-syntax", '{"J": 3, "y": [1, 2, 3],\n "sigma": [1, 1 2]}', ("data", 2, 17),
     "invalid JSON", None),
    # Entries are located at their value in the file, not at their key.
    ("ragged", '{"J": 3, "y": [[1], [2, 3]], "sigma": [1, 1, 2]}', ("data", 1, 21),
     "data 'y' is a ragged array", None),
    ("not-a-number", '{"J": 3, "y": [1, "two", 3], "sigma": [1, 1, 2]}', ("data", 1, 19),
     "data 'y[1]' is not a number", None),
]


@pytest.mark.parametrize("case", DATA_ERRORS, ids=[c[0] for c in DATA_ERRORS])
def test_data_error(tmp_path, case):
    _, data_text, (where, line, column), message, hint = case
    model_path = tmp_path / "model.ppl"
    model_path.write_text(EIGHT)
    data_path = tmp_path / "data.json"
    data_path.write_text(data_text)
    with pytest.raises(PplcError) as info:
        pplc.compile(model_path).condition(data_path)
    rendered = info.value.render()
    path = model_path if where == "model" else data_path
    assert _first_line(info.value).startswith(f"{path}:{line}:{column}: error: "), rendered
    assert message in rendered, rendered
    assert "^" in rendered.splitlines()[2], rendered
    if hint is not None:
        assert hint in rendered, rendered


def test_all_independent_mistakes_are_reported_together(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("mu ~ Normall(0, 1)\nx = expp(mu)\ny ~ Normal(mu, sigmaa)\n")
    with pytest.raises(PplcError) as info:
        pplc.compile(path)
    heads = [d.render().splitlines()[0] for d in info.value.diagnostics]
    assert [re.match(r".*:(\d+):\d+: error", h).group(1) for h in heads] == ["1", "2", "3"]


def test_data_is_refused_before_compiling(tmp_path, monkeypatch):
    """Bad data never reaches the backend: lowering is not even attempted."""
    import pplc.model

    called = []
    monkeypatch.setattr(pplc.model, "lower", lambda *a, **k: called.append(1))
    with pytest.raises(PplcError):
        pplc.compile(EIGHT).condition({"J": 3, "y": [1.0, 2.0], "sigma": [1.0, 1.0, 1.0]})
    assert not called
