"""Habits from Stan, R and Python get this language's spelling (docs/language.md, "Habits").

The golden corpus holds one file per habit; this file covers the variants of each row of
the table in the docs, the reserved words, and `lambda` as a name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pplc
from pplc.errors import PplcError
from pplc.frontend import habits
from pplc.frontend.check import RESERVED
from pplc.frontend.library import DISTRIBUTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "language.md"

# (model text, the diagnostic's line:col, a fragment of its message, a fragment of its hint)
CASES = [
    ("mu ~ Normal(0, 1)\nx = 1\nx -= mu\n", "3:3", "there is no '-='", "define 'x'"),
    ("mu ~ Normal(0, 1)\nx = 1\nx *= mu\n", "3:3", "there is no '*='", None),
    ("mu ~ Normal(0, 1)\nx = 1\nx **= mu\n", "3:3", "there is no '**='", None),
    ("mu ~ Normal(0, 1)\n/* prior */\n", "2:1", "comments start with '#'", None),
    ("data N: int\ndata S: cov_matrix[N]\n", "2:9", "unknown type 'cov_matrix'", "cov[K]"),
    ("data y: float\n", "1:9", "unknown type 'float'", "write real"),
    ("data y: int\ny ~ neg_binomial_2(3, 2)\n", "2:5", "unknown distribution",
     "'NegativeBinomial'"),
    ("data y: int\ny ~ poisson_log(0.3)\n", "2:5", "unknown distribution",
     "Poisson(log_rate=...)"),
    ("L ~ lkj_corr_cholesky(3, 2)\n", "1:5", "unknown distribution", "'LKJCholesky'"),
    ("mu ~ Normal(0, 1)\nx = mu if mu ≤ 0 else 1\n", "2:14", "unexpected character '≤'",
     "write '<='"),
    ("mu ~ Normal(0, 1)\nx = mu − 1\n", "2:8", "unexpected character '−'", "minus sign"),
    ("data x: real(lower=0)\nmu ~ Normal(0, 1)\nfor i in 0:10:\n    y[i] ~ Normal(mu, 1)\n",
     "3:10", "not '0:10'", "range(0, 10 + 1)"),
    ("x: positive<lower=1> ~ Normal(0, 1)\n", "1:12", "bounds are written in parentheses",
     "real(lower=1)"),
]


@pytest.mark.parametrize("text, where, message, hint", CASES,
                         ids=[c[2][:30] for c in CASES])
def test_habit(text, where, message, hint):
    with pytest.raises(PplcError) as info:
        pplc.compile(text)
    first = info.value.diagnostics[0]
    assert f"{first.span.line}:{first.span.column}" == where, info.value.render()
    assert message in first.message, info.value.render()
    if hint is not None:
        assert first.hint and hint in first.hint, info.value.render()


def test_lambda_names_a_variable():
    model = pplc.compile("lambda ~ Gamma(2, 1)\ny ~ Poisson(lambda)\n")
    assert model.definitions.sampled.keys() == {"lambda", "y"}
    assert model.condition({"y": 3}).dim == 1


def test_a_lambda_expression_is_refused():
    with pytest.raises(PplcError, match="there are no lambda expressions"):
        pplc.compile("f = lambda x: x + 1\n")


def test_the_docs_list_exactly_the_reserved_words():
    section = DOCS.read_text().split("### Reserved words", 1)[1].split("###", 1)[0]
    listed = set(re.findall(r"`(\w+)`", section.split("\n\n")[2]))
    assert listed == RESERVED


def test_every_foreign_name_leads_to_a_distribution_of_the_language():
    for name in [*habits._FOREIGN, *habits._FOREIGN_CALLS]:
        found = habits.distribution_name(name)
        assert found is not None and found.split("(")[0] in DISTRIBUTIONS, name
    for name in DISTRIBUTIONS:  # a correct name gets no hint
        assert habits.distribution_name(name) is None
        assert habits.distribution_name(name.lower()) == name
