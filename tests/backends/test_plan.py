"""`explain` reports how each loop is evaluated from the plan that runs (backends/plan.py);
the lowering itself keeps the program size independent of the data (tests/ir/test_graph.py
checks the jaxpr)."""

import pplc
from pplc.backends.plan import format_plan, loop_notes


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
    notes = {n.span.line: n.message for n in loop_notes(model.lowered)}
    assert notes == {6: "h: loop over t in range(1, T) -> a scan over t, carrying the last "
                        "1 slice(s) (lags 1)",
                     8: "y: loop over t in range(T) -> one vectorized operation"}


def test_the_plan_reports_the_decision_that_runs():
    """Change the decision in the lowered model, and the report changes with it."""
    from dataclasses import replace

    from pplc.backends.recurrence import Scan

    source = """\
data J: int
data T: int
data y: int[J, T]
a ~ Normal(0, 1)
for j in range(J):
    c[0, j] = 5 + j
    for t in range(1, T):
        c[t, j] = c[t - 1, j] + y[j, t - 1]
s ~ Normal(a + sum(c), 1)
"""
    model = pplc.compile(source).condition({"J": 2, "T": 3, "y": [[1, 0, 1], [0, 0, 1]],
                                            "s": 1.0})
    notes = [n.message for n in loop_notes(model.lowered)]
    assert "c: loop over j in range(J), t in range(1, T) -> a scan over t, vectorized over " \
           "j in each step, carrying the last 1 slice(s) (lags 1)" in notes
    plan = format_plan(model.lowered)
    assert "[0:1]  a  scalar  real (identity)" in plan
    assert "c  3x2  read by the density" in plan
    lowered = model.lowered
    plan = replace(lowered.plan, scans={**lowered.plan.scans, ("c", 1): Scan(plate=1)})
    notes = [n.message for n in loop_notes(replace(lowered, plan=plan))]
    assert "c: loop over j in range(J), t in range(1, T) -> a scan over t, vectorized over " \
           "j in each step" in notes


def _pplc_here(*args) -> "subprocess.CompletedProcess":
    """`pplc ...` through the CLI's `main` in this process, as a finished process: the
    same status and output, without a process's JAX import (1-2 CPU-s each)."""
    import contextlib
    import io
    import subprocess

    from pplc.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [*map(str, args)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(["pplc", *argv], code, out.getvalue(), err.getvalue())


def test_ir_plan_and_explain_on_the_command_line():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    model = root / "examples" / "eight_schools" / "model.ppl"
    data = root / "examples" / "eight_schools" / "data.json"
    run = _pplc_here   # `pplc ir` runs as a process in test_cli.py; `explain` does below
    plan = run("ir", model, "--data", data, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "# unconstrained vector: 10 values" in plan.stdout
    assert "[1:2]  tau  scalar  above 0.0 (log)" in plan.stdout
    explain = subprocess.run([sys.executable, "-m", "pplc.cli", "explain", str(model),
                              "--data", str(data)], capture_output=True, text=True, cwd=root)
    assert explain.returncode == 0, explain.stderr
    assert "theta: loop over j in range(J) -> one vectorized operation    [lowering]" \
        in explain.stdout
    # Without data: what the text decides (constraints, scans the subscripts prove, which
    # latents are summed out), nothing guessed about sizes.
    plan = run("ir", model, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "# unconstrained vector: laid out from the data's sizes" in plan.stdout
    assert "  tau  above 0.0 (log)" in plan.stdout
    volatility = run("ir", root / "examples" / "stochastic_volatility" / "model.ppl", "--plan")
    assert "    line 12 for t in range(1, T): a scan over t" in volatility.stdout
    mixture = run("ir", root / "examples" / "gaussian_mixture" / "model.ppl", "--plan")
    assert "  z  discrete: summed out once the data give the number of its values" \
        in mixture.stdout
    assert "  z  above" not in mixture.stdout   # no interval for an integer latent


def test_the_plan_says_how_a_summed_out_latent_is_recovered():
    source = """\
data N: int
data y: real[N]
w ~ Beta(2, 2)
mu: ordered[2] ~ Normal(0, 5)
for n in range(N):
    z[n] ~ Bernoulli(w)
    y[n] ~ Normal(mu[z[n]], 1.0)
"""
    model = pplc.compile(source).condition({"N": 3, "y": [-1.0, 0.2, 2.0]})
    plan = format_plan(model.lowered)
    assert "z  3x2  summed out: log P(z = k | the rest) for each of its values k" in plan
    assert "prior simulation: forward simulation cannot draw this model's prior" in plan
