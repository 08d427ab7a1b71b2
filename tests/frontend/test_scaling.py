"""Checking a model takes time linear in its length (issue 15).

The checks once rebuilt the set of every model variable for each expression they looked
at, so a 20,000-statement model took minutes. The test times `check_program` on programs
of N and 8N statements (built from one parsed statement, so parsing does not dominate):
linear is a ratio of about 8, quadratic of 64.
"""

from __future__ import annotations

import dataclasses
import time

from pplc.frontend import ast
from pplc.frontend.check import check_program
from pplc.frontend.parser import parse


def _program(n: int) -> ast.Program:
    parsed = parse("mu ~ Normal(0, 1)\nx ~ Normal(mu, 1)\n")
    head, stmt = parsed.statements
    copies = [dataclasses.replace(stmt, target=dataclasses.replace(stmt.target, name=f"x{i}"))
              for i in range(n)]
    return ast.Program((head, *copies), parsed.source)


def _best_time(program: ast.Program) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        check_program(program)
        best = min(best, time.perf_counter() - start)
    return best


def test_checking_time_is_linear_in_the_number_of_statements():
    small, large = _program(1500), _program(12000)
    ratio = _best_time(large) / _best_time(small)
    assert ratio < 24, f"8x the statements took {ratio:.1f}x the time"
