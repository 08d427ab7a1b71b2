"""The one symbolic axis inference (pplc/ir/axes.py), which the ArviZ dims and the shapes
of a built module read: its extents, written in terms of the model's sizes, must equal
the compiler's concrete shapes (backends/shapes.py) whenever both are known. A
disagreement would be a wrong shape written into a module built by `pplc build`, which
then holds for other data too: a silent wrong answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pplc
from pplc.ir.axes import AxisInference
from pplc.ir.extents import evaluate, text
from pplc.ir.graph import Kind

ROOT = Path(__file__).resolve().parents[2]
# The models tests/test_build_command.py builds and compares with the compiler.
EXAMPLE_MODELS = sorted((ROOT / "examples").glob("*/model*.ppl"))
CONFORMANCE = ROOT.parent / "shared" / "conformance"
CONFORMANCE_MODELS = sorted(CONFORMANCE.glob("*/model*.ppl")) if CONFORMANCE.is_dir() else []


def sizes_of(data) -> dict[str, int]:
    return {n: int(v) for n, v in data.items() if np.ndim(v) == 0
            and isinstance(v, (int, np.integer)) and not isinstance(v, bool)}


def disagreements(graph, shapes, sizes) -> list[str]:
    """Every axis whose extent is known but evaluates to another length than the concrete
    shape's, and every variable whose number of axes differs; with the shapes of the data
    only (as a built module knows them) and with every shape (as the ArviZ dims do)."""
    data_only = {n: s for n, s in shapes.items()
                 if n in graph and graph[n].kind in (Kind.DATA, Kind.OBSERVED)}
    wrong = []
    for known in (data_only, shapes):
        inference = AxisInference(graph, known, sizes)
        for variable in graph.variables():
            name = variable.name
            if name not in shapes or variable.marginalized or variable.kind is Kind.FACTOR:
                continue
            concrete = tuple(shapes[name])
            extents = inference.extents(name)
            if extents is not None and len(extents) != len(concrete):
                wrong.append(f"{name}: {len(extents)} axes, not {len(concrete)}")
                continue
            leading = inference.leading(variable) if variable.pieces and \
                variable.pieces[0].indices is not None else None
            for k, extent in enumerate(list(extents or ()) + list(leading or ())):
                k = k if k < len(extents or ()) else k - len(extents or ())
                value = evaluate(extent, sizes, shapes)
                if value is not None and value != concrete[k]:
                    wrong.append(f"{name} axis {k}: {text(extent)} = {value}, "
                                 f"not {concrete[k]}")
    return wrong


@pytest.mark.parametrize("model", EXAMPLE_MODELS + CONFORMANCE_MODELS,
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_known_extent_is_the_compilers_length(model):
    data = json.loads((model.parent / "data.json").read_text())
    conditioned = pplc.compile(model).condition(data)
    sizes = sizes_of(data)
    assert disagreements(conditioned.unoptimized_graph,
                         conditioned.unoptimized_graph.shapes, sizes) == []
    assert disagreements(conditioned.graph, conditioned.lowered.shapes, sizes) == []


def extents_of(source: str, data: dict) -> tuple[dict[str, str], dict[str, tuple]]:
    """Each variable's extents as text, and the compiler's shapes, for a small model."""
    conditioned = pplc.compile(source).condition(data)
    graph, shapes = conditioned.unoptimized_graph, conditioned.unoptimized_graph.shapes
    sizes = sizes_of(data)
    assert disagreements(graph, shapes, sizes) == []
    inference = AxisInference(graph, {n: s for n, s in shapes.items()
                                      if graph[n].kind in (Kind.DATA, Kind.OBSERVED)}, sizes)
    texts = {}
    for variable in graph.variables():
        extents = inference.extents(variable.name)
        texts[variable.name] = None if extents is None else \
            ", ".join("?" if e is None else text(e) for e in extents)
    return texts, shapes


def test_extents_of_subscripts_slices_and_functions():
    """The forms a built module must write in terms of the sizes: a recursion's shifted
    subscript, a subscript that is a size, slices, concat, broadcasting of two sizes."""
    texts, shapes = extents_of(
        "data T: int\ndata K: int\ndata M: int\ndata y: real[T]\ndata w: real[M]\n"
        "h[0] = 0.0\n"
        "for t in range(1, T):\n    h[t] = h[t - 1] + y[t]\n"
        "for t in range(1, T):\n    d[t - 1] = y[t] - y[t - 1]\n"
        "e[K - 1] = 1.0\n"
        "for k in range(K - 1):\n    e[k] = 0.0\n"
        "lags = y[K:T]\n"
        "both = concat(y, w)\n"
        "s = y[1:T] + d\n"
        "mu ~ Normal(0, 1)\n",
        {"T": 6, "K": 3, "M": 1, "y": [0.0, 1, 2, 3, 4, 5], "w": [0.5]})
    assert texts["d"] == "T - 1"
    assert texts["e"] == "K"
    assert texts["lags"] == "T - K"
    assert texts["both"] == "T + M"
    assert texts["h"] == "max(1, T)" and texts["s"] == "T - 1"
    assert shapes["d"] == (5,) and shapes["e"] == (3,) and shapes["both"] == (7,)


def test_slices_past_the_end_and_loops_that_may_not_run():
    """Disagreements the parity check found in small models, each a wrong shape a built
    module would have written: a slice stops at its axis's end (`y[0:N + 2]` is `y`), and
    a loop over `range(K, T)` covers nothing when T <= K (here T = 2, K = 3)."""
    texts, shapes = extents_of(
        "data T: int\ndata K: int\ndata N: int\ndata y: real[N]\n"
        "whole = y[0:N + 2]\n"
        "head = y[0:K]\n"
        "x[0] = 1.0\n"
        "for t in range(K, T):\n    x[t] = 2.0\n"
        "for t in range(T):\n    u[K + t] = 2.0\n"
        "for k in range(K):\n    u[k] = 1.0\n"
        "mu ~ Normal(0, 1)\n",
        {"T": 2, "K": 3, "N": 2, "y": [1.0, 2.0]})
    assert texts["whole"] == "N" and texts["head"] == "min(K, N)"
    assert texts["x"] == "max(1, T if T > K else 0)" and texts["u"] == "max(T + K, K)"
    assert shapes["whole"] == (2,) and shapes["head"] == (2,) and shapes["x"] == (1,) \
        and shapes["u"] == (5,)
