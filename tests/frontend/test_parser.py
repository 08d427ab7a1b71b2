"""Grammar and AST: every form parses to the node it should, with the span it came from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pplc.errors import PplcError, Span
from pplc.frontend import ast
from pplc.frontend.parser import parse


def expr_of(text: str):
    """The expression on the right of `x = ...`."""
    (statement,) = parse(f"x = {text}\n").statements
    return statement.value


def test_data_declarations_with_shapes_and_bounds():
    program = parse("data N: int\ndata X: real[N, 3]\ndata p: real(lower=0, upper=1)[N]\n")
    n, x, p = program.statements
    assert (n.name, n.type.base, n.type.shape) == ("N", "int", ())
    assert x.type.base == "real" and [ast.to_source(s) for s in x.type.shape] == ["N", "3"]
    assert [(b.name, ast.to_source(b.value)) for b in p.type.bounds] == [("lower", "0"),
                                                                        ("upper", "1")]
    assert x.name_span == Span(2, 6, 2, 7)


def test_sample_statements_scalar_indexed_and_typed():
    program = parse("mu ~ Normal(0, 5)\ntheta[j, k] ~ Normal(mu, scale=2)\n"
                    "b: positive[3] ~ HalfNormal(1)\n")
    mu, theta, b = program.statements
    assert mu.target.name == "mu" and mu.target.indices is None
    assert mu.distribution.func == "Normal" and len(mu.distribution.args) == 2
    assert [ast.to_source(i) for i in theta.target.indices] == ["j", "k"]
    assert theta.distribution.keywords[0].name == "scale"
    assert b.type.base == "positive" and b.distribution.func == "HalfNormal"
    assert theta.span == Span(2, 1, 2, 34)


def test_nested_loops_comments_and_continuation():
    program = parse("""\
# a comment line
data N: int   # trailing comment
for i in range(N):
    for j in range(1, N):   # comment after a header
        x[i, j] ~ Normal(0,
                         1)  # a call continued inside brackets
    y[i] = (i +
            1)
""")
    decl, loop = program.statements
    assert isinstance(loop, ast.For) and loop.var == "i" and loop.start is None
    inner, assign = loop.body
    assert isinstance(inner, ast.For) and ast.to_source(inner.start) == "1"
    assert isinstance(inner.body[0], ast.Sample)
    assert inner.body[0].span.line == 5 and inner.body[0].span.end_line == 6
    assert ast.to_source(assign.value) == "i + 1"


def test_operator_precedence_like_python():
    assert ast.to_source(expr_of("-x ** 2")) == "-x ** 2"
    e = expr_of("-x ** 2")
    assert isinstance(e, ast.UnaryOp) and isinstance(e.operand, ast.BinOp)
    e = expr_of("a + b * c ** d ** e")
    assert e.op == "+" and e.right.op == "*" and e.right.right.op == "**"
    assert e.right.right.right.op == "**"  # right-associative
    e = expr_of("A @ x + b")
    assert e.op == "+" and e.left.op == "@"
    e = expr_of("a if c > 0 and not d else b")
    assert isinstance(e, ast.IfExp) and isinstance(e.test, ast.BoolOp)
    assert isinstance(e.test.right, ast.UnaryOp) and e.test.right.op == "not"
    assert expr_of("2 ** -1").right.op == "-"


def test_indexing_through_integer_data_slices_lists_and_calls():
    e = expr_of("alpha[g[n]]")
    assert isinstance(e, ast.Index) and isinstance(e.indices[0], ast.Index)
    e = expr_of("theta[0:K, k]")
    assert isinstance(e.indices[0], ast.Slice) and ast.to_source(e) == "theta[0:K, k]"
    assert ast.to_source(expr_of("x[:3]")) == "x[:3]"
    e = expr_of("[1, 2.5, 1e-3]")
    assert isinstance(e, ast.ListExpr) and [i.value for i in e.items] == [1, 2.5, 1e-3]
    e = expr_of("f(a, b=2)")
    assert e.func == "f" and e.keywords[0].name == "b" and e.func_span == Span(1, 5, 1, 6)


def test_functions_externs_factors_and_decorators():
    program = parse("def f(a, b):\n    c = a * b\n    return c + 1\n"
                    "extern def g(x)\nfactor -x ** 2\n@noncentered\ntheta ~ Normal(0, 1)\n")
    fn, extern, factor, sample = program.statements
    assert fn.params == ("a", "b") and fn.body[0].name == "c"
    assert ast.to_source(fn.result) == "c + 1"
    assert extern.name == "g" and extern.params == ("x",)
    assert isinstance(factor, ast.Factor)
    assert sample.decorators == ("noncentered",)


def test_every_node_carries_a_span():
    program = parse("data N: int\nfor i in range(N):\n    x[i] ~ Normal(a[i] * 2, exp(b))\n")

    def spans(node):
        yield node.span
        for child in ast.children(node):
            yield from spans(child)

    sample = program.statements[1].body[0]
    assert all(isinstance(s, Span) for s in spans(sample.distribution))
    assert sample.distribution.args[0].span == Span(3, 19, 3, 27)


@pytest.mark.parametrize("text", ["x ~", "for i in range(3)\n", "x = (1 + 2",
                                  "x = 1 +", "data : int"])
def test_syntax_errors_are_diagnostics(text):
    with pytest.raises(PplcError) as info:
        parse(text + "\n", "m.ppl")
    assert info.value.render().startswith("m.ppl:")


# ---------------------------------------------------------------- round trip

_names = st.sampled_from(["a", "b", "mu", "x1"])
_leaves = st.one_of(_names.map(lambda n: ast.Name(n, Span(1, 1, 1, 2))),
                    st.integers(1, 99).map(lambda v: ast.Number(v, Span(1, 1, 1, 2))))


def _extend(children):
    span = Span(1, 1, 1, 2)
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/", "@", "**"]), children, children)
        .map(lambda t: ast.BinOp(t[0], t[1], t[2], span)),
        children.map(lambda c: ast.UnaryOp("-", c, span)),
        st.tuples(children, children, children).map(lambda t: ast.IfExp(t[0], t[1], t[2], span)),
        st.tuples(st.sampled_from(["<", "=="]), children, children)
        .map(lambda t: ast.Compare(t[0], t[1], t[2], span)),
        st.tuples(_names, children).map(
            lambda t: ast.Index(ast.Name(t[0], span), (t[1],), span)),
        st.lists(children, min_size=1, max_size=3).map(
            lambda items: ast.Call("exp" if len(items) == 1 else "max", tuple(items), (), span,
                                   span)),
    )


@settings(deadline=None, max_examples=200)
@given(st.recursive(_leaves, _extend, max_leaves=12))
def test_unparse_parse_round_trip(expr):
    """to_source writes just the parentheses precedence needs: parsing it back gives the same
    tree (compared through its text, which ignores spans)."""
    text = ast.to_source(expr)
    again = ast.to_source(expr_of(text))
    assert again == text
