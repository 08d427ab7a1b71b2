"""A `~` on a function call (`log10(earn) ~ Normal(mu, sigma)`) is refused with a hint
(issue 15, item 8; the decision and why: pplc/frontend/tilde_on_expression.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pplc
from pplc.errors import PplcError

EARN = """\
data N: int
data earn: positive[N]
mu ~ Normal(0, 10)
sigma ~ HalfNormal(1)
{line}
"""


def _refusal(text: str):
    with pytest.raises(PplcError) as caught:
        pplc.compile(text)
    (diagnostic,) = caught.value.diagnostics
    return diagnostic


def test_a_function_of_data_is_refused_with_the_forms_that_work():
    d = _refusal(EARN.format(line="log10(earn) ~ Normal(mu, sigma)"))
    assert (d.span.line, d.span.column, d.span.end_column) == (5, 1, 12)   # under log10(earn)
    assert d.message.startswith("a '~' needs a variable on its left, not an expression: "
                                "log10(earn) is a function of data")
    assert "declare `data log10_earn: real[N]`" in d.hint
    assert "write `log10_earn ~ Normal(mu, sigma)`" in d.hint
    assert "`factor -log(sigma) - 0.5 * ((log10(earn) - mu) / sigma) ** 2`" in d.hint


def test_in_a_loop_the_hint_keeps_the_subscripts():
    d = _refusal(EARN.format(line="for n in range(N):\n    log(earn[n]) ~ Normal(mu + 1, sigma)"))
    assert (d.span.line, d.span.column) == (6, 5)
    assert "pass the values of log(earn) in the data, and write `log_earn[n] ~ " \
           "Normal(mu + 1, sigma)`" in d.hint
    assert "((log(earn[n]) - (mu + 1)) / sigma)" in d.hint


def test_a_function_of_a_parameter_is_refused_for_its_missing_jacobian():
    d = _refusal(EARN.format(line="log(sigma) ~ Normal(0, 1)"))
    assert (d.span.line, d.span.column) == (5, 1)
    assert "a function of 'sigma', a variable of the model (line 4), not on data" in d.message
    assert "log-Jacobian of the transform, which pplc does not add" in d.message
    assert "`x ~ LogNormal(m, s)`" in d.hint and "`factor -log(x)`" in d.hint


def test_the_hinted_forms_are_the_same_model():
    """The transformed-data model the hint describes and its `factor` form, both through
    the real compiler, have the same log density up to the Normal's constant
    -N log(2 pi) / 2, at any parameters."""
    earn = np.array([12_000.0, 35_500.0, 8_200.0, 61_000.0])
    as_data = pplc.compile(EARN.replace("data earn: positive[N]", "data log10_earn: real[N]")
                           .format(line="log10_earn ~ Normal(mu, sigma)")
                           ).condition({"N": 4, "log10_earn": np.log10(earn).tolist()})
    as_factor = pplc.compile(EARN.format(
        line="factor -log(sigma) - 0.5 * ((log10(earn) - mu) / sigma) ** 2")
    ).condition({"N": 4, "earn": earn.tolist()})
    constant = -4 * 0.5 * np.log(2 * np.pi)
    for mu, sigma in [(4.3, 0.3), (0.0, 2.0), (5.1, 0.05)]:
        params = {"mu": mu, "sigma": sigma}
        assert float(as_data.log_density(params)) == pytest.approx(
            float(as_factor.log_density(params)) + constant, rel=1e-12)


def test_the_command_line_refuses_it_without_a_traceback(tmp_path):
    model = tmp_path / "earn.ppl"
    model.write_text(EARN.format(line="log10(earn) ~ Normal(mu, sigma)"))
    done = subprocess.run([sys.executable, "-m", "pplc.cli", "check", str(model)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{model}:5:1: error: a '~' needs a variable on its left" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
