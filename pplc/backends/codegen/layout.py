"""Line layout for generated code: long statements and comments wrapped to a width.

Generated statements are written one per line; a line longer than the width is parsed
with Python's `ast` and laid out again: a call or a list that does not fit puts each
argument on its own line (indented four more), a lambda keeps its head and lays out its
body, a long sum inside brackets breaks before each `+` or `-`. What the parser cannot
break stays as it was.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize

WIDTH = 92



def wrap_lines(lines: list[str], width: int = WIDTH) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.extend(wrap(line, width))
    return out


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """One line of code or comment, as one or more lines of at most `width` where possible."""
    if len(line) <= width:
        return [line]
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    if stripped.startswith("#"):
        return textwrap.wrap(stripped[1:].strip(), width - indent - 2,
                             initial_indent=" " * indent + "# ",
                             subsequent_indent=" " * indent + "#     ",
                             break_long_words=False, break_on_hyphens=False)
    try:
        tree = ast.parse(stripped)
    except SyntaxError:
        return [line]
    if len(tree.body) != 1:
        return [line]
    statement = tree.body[0]
    head, value = _split_statement(statement, stripped)
    if value is None:
        return [line]
    text = head + _layout(value, indent + len(head), indent, width, bracketed=False)
    return [" " * indent + text.split("\n")[0]] + text.split("\n")[1:]


def _split_statement(statement, text: str):
    """(the text before the value, the value's node) of `x = ...`, `x += ...`, `return ...`."""
    if isinstance(statement, ast.Return) and statement.value is not None:
        return "return ", statement.value
    if isinstance(statement, ast.Raise) and statement.exc is not None \
            and statement.cause is None:
        return "raise ", statement.exc
    if isinstance(statement, ast.Assign):
        targets = " = ".join(", ".join(_unparse(e) for e in t.elts)
                             if isinstance(t, ast.Tuple) else _unparse(t)
                             for t in statement.targets)
        return f"{targets} = ", statement.value
    if isinstance(statement, ast.AugAssign):
        op = text[len(_unparse(statement.target)):].lstrip().split("=")[0] + "="
        return f"{_unparse(statement.target)} {op} ", statement.value
    return "", None


def _unparse(node) -> str:
    """ast.unparse, with the double quotes the rest of the module uses."""
    if isinstance(node, _Parenthesized):
        return f"({_unparse(node.value)})"
    return _double_quoted(ast.unparse(node))


def _double_quoted(code: str) -> str:
    """'text' -> "text" for each string literal that holds no quote and no backslash."""
    offsets = [0]
    for line in code.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    out, last = [], 0
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        text = token.string
        if token.type == tokenize.STRING and text[:1] == "'" and len(text) >= 2 \
                and not any(c in text[1:-1] for c in "'\"\\"):
            start = offsets[token.start[0] - 1] + token.start[1]
            out.append(code[last:start] + '"' + text[1:-1] + '"')
            last = start + len(text)
    return "".join(out) + code[last:]


def _layout(node, column: int, indent: int, width: int, bracketed: bool) -> str:
    """`node` as text starting at `column`; continuation lines indented from `indent`."""
    flat = _unparse(node)
    if column + len(flat) <= width:
        return flat
    inner = indent + 4
    if isinstance(node, _Parenthesized):
        return "(" + _layout(node.value, column + 1, indent, width, True) + ")"
    if isinstance(node, ast.Call):
        items = [*node.args, *node.keywords]
        return f"{_unparse(node.func)}(" + _items(items, inner, width) + ")"
    if isinstance(node, ast.List):
        return "[" + _items(node.elts, inner, width) + "]"
    if isinstance(node, ast.Tuple) and len(node.elts) > 1:
        return "(" + _items(node.elts, inner, width) + ")"
    if isinstance(node, ast.Lambda):
        head = f"lambda {_unparse(node.args)}: " if node.args.args else "lambda: "
        return head + _layout(node.body, column + len(head), indent, width, bracketed)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and bracketed:
        # As many terms on a line as fit; a new line starts with its operator.
        terms = _sum_terms(node)
        lines = [_layout(terms[0][1], column, indent, width, True)]
        for op, term in terms[1:]:
            text = _unparse(term)
            last = lines[-1].split("\n")[-1]
            start = column if len(lines) == 1 and "\n" not in lines[-1] else 0
            if "\n" not in text and start + len(last) + len(text) + 3 <= width:
                lines[-1] += f" {op} {text}"
            else:
                lines.append(" " * indent + f"{op} " +
                             _layout(term, indent + 2, indent, width, True))
        return "\n".join(lines)
    return flat


def _items(items, inner: int, width: int) -> str:
    parts = []
    for item in items:
        if isinstance(item, ast.keyword):
            head = f"{item.arg}="
            parts.append(head + _layout(item.value, inner + len(head), inner, width, True))
        else:
            parts.append(_layout(item, inner, inner, width, True))
    return "\n" + ",\n".join(" " * inner + p for p in parts)


def _sum_terms(node) -> list[tuple[str, object]]:
    """a + b - c as [("", a), ("+", b), ("-", c)], each term parenthesized if it must be."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left = _sum_terms(node.left)
        right = node.right
        if isinstance(right, ast.BinOp) and isinstance(right.op, (ast.Add, ast.Sub)) or \
                isinstance(right, (ast.IfExp, ast.Compare, ast.BoolOp, ast.Lambda)):
            right = _Parenthesized(right)
        return left + [("+" if isinstance(node.op, ast.Add) else "-", right)]
    if isinstance(node, (ast.IfExp, ast.Compare, ast.BoolOp, ast.Lambda)):
        node = _Parenthesized(node)
    return [("", node)]


class _Parenthesized(ast.expr):
    """A sub-expression that needs its own parentheses once taken out of its sum."""

    _fields = ("value",)

    def __init__(self, value):
        super().__init__()
        self.value = value


def function(signature: str, doc: str, body: list[str]) -> str:
    """A function's text: its docstring wrapped, its body's long lines laid out again."""
    lines = [f"def {signature}:"] + docstring(doc, "    ")
    lines += wrap_lines(["    " + line if line else "" for line in body])
    return "\n".join(lines)


def docstring(doc: str, indent: str) -> list[str]:
    """Triple-quoted, each paragraph line wrapped to the width (statements can be long)."""
    lines = []
    for line in doc.split("\n"):
        lines += textwrap.wrap(line, WIDTH - len(indent), break_long_words=False,
                               break_on_hyphens=False, subsequent_indent="    ") or [""]
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return [indent + line if line else "" for line in lines]


def dict_lines(prefix: str, entries: list[str], width: int = 92) -> list[str]:
    """`prefix{...}` on one line, or one entry per line when it is long."""
    one = f"{prefix}{{{', '.join(entries)}}}"
    if len(one) <= width:
        return [one]
    return [f"{prefix}{{"] + [f"    {e}," for e in entries] + ["}"]
