"""The plates pass records how each loop is lowered; the lowering itself keeps the program
size independent of the data (tests/ir/test_graph.py checks the jaxpr)."""

import pplc


def test_loops_are_vectorized_and_recurrences_scanned():
    source = """\
data T: int
data y: real[T]
a ~ Uniform(0, 1)
h[0] = 1.0
for t in range(1, T):
    h[t] = 0.5 * h[t - 1] + a * y[t - 1] ** 2
for t in range(T):
    y[t] ~ Normal(0, sqrt(h[t]))
"""
    model = pplc.compile(source).condition({"T": 4, "y": [0.1, -0.3, 0.2, 0.5]})
    notes = {n.span.line: n.message for n in model.graph.notes if n.pass_name == "plates"}
    assert notes == {6: "h: loop over t in range(1, T) -> a recurrence: a scan over t",
                     8: "y: loop over t in range(T) -> one vectorized operation"}
