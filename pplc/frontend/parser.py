"""Source text -> AST, with lark (LALR(1) and an indenter, as Python's own grammar is read).

The Transformer only builds frozen AST nodes with spans; all checks run afterwards
(lark wraps exceptions raised in callbacks in `VisitError`). It is lark's non-recursive
transformer, so that a deeply nested text (5,000 parentheses) is read without exhausting
Python's stack; the nesting check then bounds the depth of what the recursive passes see.
Syntax errors become diagnostics in `syntax_errors.py`.

This module holds the grammar's loading, the transformer and the entry points; what the
grammar reads loosely is left as helper objects that parsed_forms.py turns into AST nodes
(split from here by job).
"""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, v_args
from lark.exceptions import UnexpectedInput
from lark.indenter import DedentError, Indenter
from lark.visitors import Transformer_NonRecursive

from pplc.errors import Source, Span, error
from pplc.frontend import ast
from pplc.frontend.nesting import check_nesting
from pplc.frontend.parsed_forms import (CallParts, DefHeader, ForHeader, Misplaced, Return,
                                        finish_program)
from pplc.frontend.syntax_errors import dedent_error, syntax_error, token_span
from pplc.frontend.text import check_indentation, decode, normalize
from pplc.frontend.tilde_on_expression import OnExpression

_GRAMMAR = Path(__file__).with_name("grammar.lark")


class _Indenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", postlex=_Indenter(),
                propagate_positions=True, maybe_placeholders=True)


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    # ---- statements
    def start(self, meta, items):
        return ast.Program(tuple(i for i in items if i is not None), self.source)

    def data_decl(self, meta, items):
        name, type_ = items
        return ast.DataDecl(str(name), type_, _span(meta), token_span(name))

    def sample(self, meta, items):
        target, type_, dist = items
        return ast.Sample(target, type_, dist, (), _span(meta))

    def assign(self, meta, items):
        target, value = items
        return ast.Assign(target, value, _span(meta))

    def factor(self, meta, items):
        return ast.Factor(items[0], _span(meta))

    def sample_on_call(self, meta, items):
        left, distribution = items
        return OnExpression(left, distribution, _span(meta))

    def extern_def(self, meta, items):
        name, _lpar, params, _rpar = items
        return ast.ExternDef(str(name), tuple(params or ()), _span(meta), token_span(name))

    def decorator(self, meta, items):
        return items[0], _span(meta)

    def decorated(self, meta, items):
        *decorators, statement = items
        if not isinstance(statement, ast.Sample):
            return Misplaced(tuple(decorators), statement)
        return ast.Sample(statement.target, statement.type, statement.distribution,
                          tuple(str(d) for d, _ in decorators), statement.span,
                          tuple(span for _, span in decorators))

    def for_statement(self, meta, items):
        var, range_name, lpar, arguments, rpar, body = items
        header = Span(meta.line, meta.column, rpar.end_line, rpar.end_column + 1)
        return ForHeader(var, range_name, arguments, body, header)

    def block(self, meta, items):
        return tuple(items)

    def def_statement(self, meta, items):
        name, _lpar, params, rpar, body = items
        header = Span(meta.line, meta.column, rpar.end_line, rpar.end_column + 1)
        return DefHeader(str(name), tuple(params or ()), body, header, token_span(name))

    def return_statement(self, meta, items):
        return Return(items[0], _span(meta))

    def params(self, meta, items):
        return tuple(str(p) for p in items if p is not None)

    def target(self, meta, items):
        name, _l, subscripts, _r = items
        return ast.Target(str(name), subscripts, _span(meta), token_span(name))

    def type(self, meta, items):
        name, *parts = items
        shape = tuple(e for kind, value in parts if kind == "shape" for e in value)
        bounds = tuple(k for kind, value in parts if kind == "bounds" for k in value)
        return ast.Type(str(name), shape, bounds, _span(meta))

    def type_bounds_part(self, meta, items):
        return ("bounds", items[1])

    def type_shape_part(self, meta, items):
        return ("shape", items[1])

    def type_bounds(self, meta, items):
        return tuple(i for i in items if i is not None)

    # ---- expressions
    def number(self, meta, items):
        return ast.Number(_number(str(items[0])), _span(meta))

    def name(self, meta, items):
        return ast.Name(str(items[0]), _span(meta))

    def paren(self, meta, items):
        return items[1]

    def list_expr(self, meta, items):
        return ast.ListExpr(tuple(i for i in items[1:-1] if i is not None), _span(meta))

    def if_expr(self, meta, items):
        body, test, orelse = items
        return ast.IfExp(test, body, orelse, _span(meta))

    def or_expr(self, meta, items):
        return ast.BoolOp("or", items[0], items[1], _span(meta))

    def and_expr(self, meta, items):
        return ast.BoolOp("and", items[0], items[1], _span(meta))

    def not_expr(self, meta, items):
        return ast.UnaryOp("not", items[0], _span(meta))

    def compare(self, meta, items):
        left, op, right = items
        return ast.Compare(str(op), left, right, _span(meta))

    def binary(self, meta, items):
        left, op, right = items
        return ast.BinOp(str(op), left, right, _span(meta))

    def unary(self, meta, items):
        op, operand = items
        return ast.UnaryOp(str(op), operand, _span(meta))

    def index(self, meta, items):
        value, _l, subscripts, _r = items
        return ast.Index(value, subscripts, _span(meta))

    def call(self, meta, items):
        name, _l, arguments, _r = items
        arguments = arguments or ()
        args = tuple(a for a in arguments if not isinstance(a, ast.Keyword))
        keywords = tuple(a for a in arguments if isinstance(a, ast.Keyword))
        return CallParts(str(name), args, keywords, arguments, _span(meta), token_span(name))

    def subscripts(self, meta, items):
        return tuple(i for i in items if i is not None)

    def slice(self, meta, items):
        start, stop = items
        return ast.Slice(start, stop, _span(meta))

    def arguments(self, meta, items):
        return tuple(i for i in items if i is not None)

    def keyword(self, meta, items):
        name, value = items
        return ast.Keyword(str(name), value, _span(meta))


def parse(text: str, path: str = "<model>") -> ast.Program:
    """Parse a model's text into an AST; raise PplcError with a located diagnostic on error."""
    text = normalize(text)
    source = Source(path, text if text.endswith("\n") else text + "\n")
    check_indentation(source)
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, source) from None
    except DedentError:
        raise dedent_error(source) from None
    program = _ToAst(source).transform(tree)
    check_nesting(program.statements, source)  # before anything walks the tree recursively
    return finish_program(program, source)


def parse_file(path: str | Path) -> ast.Program:
    """Parse a model file: UTF-8 text (`text.decode`), a byte-order mark allowed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read model file '{path}': {exc.strerror or exc}") from None
    return parse(decode(data, str(path)), str(path))

