"""PGM pictures: the DOT structure (nodes by kind, edges, plates) and rendering with `dot`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import pplc
from pplc.errors import PplcError
from pplc.frontend.parser import parse
from pplc.ir.build import build_graph
from pplc.ir.graphviz import render, to_dot

CONFORMANCE = Path("/work/shared/conformance")
CENTERED = CONFORMANCE / "eight_schools-eight_schools_centered"
NONCENTERED = CONFORMANCE / "eight_schools-eight_schools_noncentered"
GARCH = CONFORMANCE / "garch-garch11"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` missing")

NESTED = """\
data N: int
data M: int
data x: real[N, M]
for i in range(N):
    mu[i] ~ Normal(0, 1)
    for j in range(M):
        x[i, j] ~ Normal(mu[i], 1)
"""

FACTOR = """\
data N: int
data y: real[N]
mu ~ Normal(0, 1)
s ~ HalfNormal(1)
for n in range(1, N):
    z[n] = (y[n] - mu) / s
    factor -0.5 * z[n] ** 2
"""

NO_LOOPS = """\
data y: real
data scale: positive
mu ~ Normal(0, 1)
y ~ Normal(mu, scale)
"""


# ---------------------------------------------------------------- reading DOT back

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<<.*?>>|[^\s\]]+)', re.S)
_ID = r'("(?:[^"\\]|\\.)*"|[\w.@]+)'


def _unquote(text: str) -> str:
    return text[1:-1] if text.startswith('"') else text


class Dot:
    """The statements of a `graphviz.Digraph`: nodes with attributes and cluster path,
    edges, and clusters with their attributes and parent."""

    def __init__(self, dot):
        self.source = dot.source
        self.nodes: dict[str, dict] = {}
        self.edges: dict[tuple[str, str], dict] = {}
        self.clusters: dict[str, dict] = {}
        stack: list[str] = []
        for line in dot.body:
            text = line.strip()
            if re.match(r"(node|edge|graph) \[", text):
                continue                      # defaults, not statements about the model
            if text.startswith("subgraph"):
                name = text.split()[1]
                self.clusters[name] = {"parent": stack[-1] if stack else None}
                stack.append(name)
            elif text == "}":
                stack.pop()
            elif re.match(r"(color|label|fontname)=", text) and stack:
                self.clusters[stack[-1]].update(self._attrs(text))
            elif (edge := re.match(_ID + r"(?::\w+)? -> " + _ID + r"(?::\w+)?(.*)$", text,
                                   re.S)):
                key = (_unquote(edge[1]), _unquote(edge[2]))
                self.edges[key] = self._attrs(edge[3])
            elif (node := re.match(_ID + r" \[(.*)\]$", text, re.S)):
                attrs = self._attrs(node[2])
                attrs["cluster"] = stack[-1] if stack else None
                self.nodes[_unquote(node[1])] = attrs

    @staticmethod
    def _attrs(text: str) -> dict:
        return {k: _unquote(v) for k, v in _ATTR.findall(text)}

    def plate_path(self, node: str) -> list[str]:
        """Labels of the plates around a node, outermost first."""
        path, cluster = [], self.nodes[node]["cluster"]
        while cluster is not None:
            path.append(self.clusters[cluster]["label"])
            cluster = self.clusters[cluster]["parent"]
        return path[::-1]

    def kind(self, node: str) -> str:
        """The PGM symbol a node is drawn as."""
        a = self.nodes[node]
        if a.get("shape") == "plain":
            fill = re.search(r'BGCOLOR="(\w+)"', a["label"])[1]
            return "factor-square" if fill == "black" else "data-square"
        if a.get("style") == "dashed":
            return "dashed-ellipse"
        assert a["shape"] == "ellipse" and a["style"] == "filled"
        return "white-ellipse" if a["fillcolor"] == "white" else "gray-ellipse"


def _graph(source: str):
    return build_graph(parse(source))


# ---------------------------------------------------------------- structure


def test_eight_schools_centered():
    dot = Dot(to_dot(pplc.compile(CENTERED / "model.ppl").graph))
    # J is used only as a size (range(J), real[J]): it is on the plate label instead.
    assert set(dot.nodes) == {"mu", "tau", "theta", "y", "sigma"}
    assert {n: dot.kind(n) for n in dot.nodes} == {
        "mu": "white-ellipse", "tau": "white-ellipse", "theta": "white-ellipse",
        "y": "gray-ellipse", "sigma": "data-square"}
    assert set(dot.edges) == {("mu", "theta"), ("tau", "theta"), ("theta", "y"),
                              ("sigma", "y")}
    assert dot.plate_path("theta") == ["J"]
    assert dot.plate_path("y") == ["J"]         # vectorized: in the plate over its size
    assert dot.nodes["theta"]["label"] == "theta\n~ Normal(mu, tau)"
    assert dot.nodes["y"]["label"] == "y\n~ Normal(theta, sigma)"
    assert ">sigma<" in dot.nodes["sigma"]["label"]


def test_plate_label_shows_known_sizes():
    model = pplc.compile(CENTERED / "model.ppl")
    dot = Dot(to_dot(model.graph, sizes={"J": 8}))
    assert dot.plate_path("theta") == ["J = 8"]


def test_eight_schools_noncentered():
    dot = Dot(to_dot(pplc.compile(NONCENTERED / "model.ppl").graph))
    assert set(dot.nodes) == {"theta_trans", "mu", "tau", "theta", "y", "sigma"}
    assert dot.kind("theta") == "dashed-ellipse"
    assert dot.nodes["theta"]["label"] == "theta\n= theta_trans * tau + mu"
    assert dot.kind("theta_trans") == "white-ellipse"
    assert dot.kind("y") == "gray-ellipse"
    assert set(dot.edges) == {("theta_trans", "theta"), ("tau", "theta"), ("mu", "theta"),
                              ("theta", "y"), ("sigma", "y")}
    # Whole-array `~` statements and data arrays sit in the plate over their first size.
    assert dot.plate_path("theta_trans") == dot.plate_path("y") == ["J"]
    assert dot.plate_path("sigma") == ["J"] and len(dot.clusters) == 1


def test_data_arrays_sit_in_the_plate_over_their_size():
    # week and patient are per measurement (N), treated per patient (P); P is drawn
    # because a bound reads it (patient's upper = P - 1), outside every plate.
    drug_trial = Path(__file__).resolve().parents[2] / "examples" / "drug_trial"
    dot = Dot(to_dot(pplc.compile(drug_trial / "model.ppl").graph))
    assert dot.plate_path("week") == dot.plate_path("patient") == dot.plate_path("y") == ["N"]
    assert dot.plate_path("treated") == dot.plate_path("u") == ["P"]
    assert dot.plate_path("P") == []
    assert dot.kind("week") == "data-square"


def test_nested_loops_are_nested_plates():
    dot = Dot(to_dot(_graph(NESTED), sizes={"N": 3, "M": 4}))
    assert set(dot.nodes) == {"mu", "x"}
    assert dot.plate_path("mu") == ["N = 3"]
    assert dot.plate_path("x") == ["N = 3", "M = 4"]
    assert dot.kind("x") == "gray-ellipse"
    assert set(dot.edges) == {("mu", "x")}
    assert len(dot.clusters) == 2
    assert all(name.startswith("cluster_") for name in dot.clusters)
    assert Dot(to_dot(_graph(NESTED))).plate_path("x") == ["N", "M"]


def test_factor_and_deterministic_inside_a_plate():
    dot = Dot(to_dot(_graph(FACTOR), sizes={"N": 10}))
    (factor,) = [n for n in dot.nodes if n.startswith("factor")]
    assert dot.kind(factor) == "factor-square"
    assert ">factor<" in dot.nodes[factor]["label"]
    assert dot.nodes[factor]["tooltip"] == "factor -0.5 * z[n] ** 2"
    assert dot.kind("z") == "dashed-ellipse"
    assert dot.nodes["z"]["label"] == "z\n= (y[n] - mu) / s"
    assert dot.plate_path(factor) == dot.plate_path("z") == ["N - 1 = 9"]
    # y is read by z's value: a data node drawn as a square, with its edge; N is not.
    assert dot.kind("y") == "data-square" and "N" not in dot.nodes
    assert set(dot.edges) == {("y", "z"), ("mu", "z"), ("s", "z"), ("z", factor)}


def test_garch_piecewise_deterministic_and_feedback_edge():
    dot = Dot(to_dot(pplc.compile(GARCH / "model.ppl").graph))
    assert "T" not in dot.nodes and dot.kind("sigma1") == "data-square"
    assert dot.kind("sigma") == "dashed-ellipse"
    # pieces inside and outside the loop: the variable sits outside the plate
    assert dot.plate_path("sigma") == [] and dot.plate_path("y") == ["T"]
    label = dot.nodes["sigma"]["label"].split("\n")
    assert label[:2] == ["sigma", "[0] = sigma1"]
    assert label[2].startswith("[t] = sqrt(") and label[2].endswith("…")
    (factor,) = [n for n in dot.nodes if n.startswith("factor")]
    assert dot.kind(factor) == "factor-square" and ("alpha1", factor) in dot.edges
    # sigma[t] reads y[t - 1]: the y -> sigma edge is drawn but does not rank y above sigma
    assert dot.edges[("y", "sigma")] == {"constraint": "false"}
    assert dot.edges[("sigma", "y")] == {}


WHOLE_ARRAYS = """\
data N: int
data K: int
data X: real[N, K]
data y: int[N]
w: simplex[K] ~ Dirichlet(ones(K))
mu: ordered[K] ~ Normal(0, 1)
beta: real[K] ~ Normal(0, 1)
L: real[K] ~ MultivariateNormal(zeros(K), diag(ones(K)))
y ~ Bernoulli(logits=X @ beta + w[0] + mu[0] + L[0])
"""


def test_whole_array_statements_sit_in_the_plate_over_their_size():
    dot = Dot(to_dot(_graph(WHOLE_ARRAYS), sizes={"N": 100, "K": 3}))
    assert dot.plate_path("beta") == ["K = 3"]
    assert dot.plate_path("y") == dot.plate_path("X") == ["N = 100"]
    # One draw of a whole vector (Dirichlet, MultivariateNormal) or elements tied by their type
    # (ordered): outside any plate.
    assert dot.plate_path("w") == dot.plate_path("mu") == dot.plate_path("L") == []


def test_a_pass_s_internal_zero_terms_are_hidden():
    model = pplc.compile(CENTERED / "model.ppl")
    from pplc.passes.pipeline import run_passes
    data = CENTERED / "data.json"
    conditioned = model.condition(data)
    graph = run_passes(conditioned.unoptimized_graph, (), until="reparameterize")
    (raw,) = [v.name for v in graph.variables() if v.internal]
    dot = Dot(to_dot(graph))
    # theta_raw ~ Normal(0.0 * mu + 0.0 * tau, 1): shape bookkeeping, not dependence.
    assert dot.nodes[raw]["label"] == f"{raw}\n~ Normal(loc=0, scale=1.0)"
    assert (("mu", raw) not in dot.edges and ("tau", raw) not in dot.edges
            and ("mu", "theta") in dot.edges)


def test_model_without_loops():
    dot = Dot(to_dot(_graph(NO_LOOPS)))
    assert "subgraph" not in dot.source
    assert {n: dot.kind(n) for n in dot.nodes} == {
        "mu": "white-ellipse", "y": "gray-ellipse", "scale": "data-square"}
    assert set(dot.edges) == {("mu", "y"), ("scale", "y")}


def test_dot_source_is_stable():
    first = to_dot(pplc.compile(GARCH / "model.ppl").graph).source
    assert to_dot(pplc.compile(GARCH / "model.ppl").graph).source == first
    assert to_dot(_graph(NESTED)).source == to_dot(_graph(NESTED)).source


# ---------------------------------------------------------------- rendering


@needs_dot
def test_render_svg_and_png(tmp_path):
    graph = pplc.compile(CENTERED / "model.ppl").graph
    svg = render(graph, tmp_path / "m.svg", sizes={"J": 8})
    text = svg.read_text()
    assert svg == tmp_path / "m.svg" and "<svg" in text
    for name in ("theta", "tau", "mu", "sigma", "J = 8"):
        assert name in text
    png = render(graph, str(tmp_path / "m.png"))
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_render_pdf(tmp_path):
    pdf = render(pplc.compile(GARCH / "model.ppl").graph, tmp_path / "m.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_render_dot_writes_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))      # .dot needs no Graphviz
    graph = _graph(NESTED)
    out = render(graph, tmp_path / "m.dot")
    assert out.read_text() == to_dot(graph).source


def test_missing_dot_is_a_diagnostic(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(PplcError) as info:
        render(_graph(NO_LOOPS), tmp_path / "m.png")
    (diagnostic,) = info.value.diagnostics
    assert "dot" in diagnostic.message and "Graphviz" in diagnostic.message
    assert "install Graphviz" in diagnostic.hint
    assert not (tmp_path / "m.png").exists()


def test_unknown_suffix_is_a_diagnostic(tmp_path):
    with pytest.raises(PplcError) as info:
        render(_graph(NO_LOOPS), tmp_path / "m.jpeg")
    (diagnostic,) = info.value.diagnostics
    assert ".jpeg" in diagnostic.message and ".svg" in diagnostic.hint
