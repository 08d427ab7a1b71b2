"""lark's syntax errors -> diagnostics that say what was found and what to write instead.

lark reports the token it could not use and the terminals it expected. That is enough to
point at the place, but the words should be the user's: an unclosed bracket is named where
it was opened, a keyword of Python that this language lacks says so, and the habits of
Stan, R and Python (`x ^ 2`, `target +=`, `real<lower=0>`, `for i in 1:N`) get the
spelling this language uses (`habits.py`).
"""

from __future__ import annotations

import re
import unicodedata

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from pplc.errors import PplcError, Source, Span, error
from pplc.frontend import habits

_TYPE_NAMES = {"real", "int", "positive", "unit", "simplex", "ordered", "positive_ordered",
               "corr_cholesky", "cov", "vector", "row_vector", "matrix", "array"}


def token_span(token: Token) -> Span:
    """Where a token is: the parser's transformer, its loosely read forms and the syntax
    errors here all locate names and tokens by it."""
    return Span(token.line, token.column, token.end_line, token.end_column)


_TOKEN_WORDS = {
    "_NEWLINE": "end of line", "_INDENT": "an indented block", "_DEDENT": "end of block",
    "NAME": "a name", "NUMBER": "a number", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "TILDE": "'~'",
    "ADD_OP": "'+' or '-'", "MUL_OP": "an operator", "POW": "'**'", "COMPARE": "a comparison",
    "$END": "end of file", "AT": "'@'", "DOT": "'.'",
}


def _describe_token(token: Token) -> str:
    if token.type == "_NEWLINE":
        return "end of line"
    if token.type == "$END":
        return "end of file"
    if token.type == "_INDENT":
        return "unexpected indentation"
    if token.type == "_DEDENT":
        return "end of block"
    return f"'{token}'"


_NOT_IN_THE_LANGUAGE = {
    "if": ("there are no if statements in this language",
           "write a conditional expression, `a if cond else b`, or define an array's pieces "
           "in loops"),
    "elif": ("there are no if statements in this language", "write `a if cond else b`"),
    "while": ("there are no while loops: loops run over range(...)", None),
    "import": ("models cannot import Python modules",
               "bind Python functions with `extern def` instead"),
    "lambda": ("there are no lambda expressions", "define a function with `def`"),
}


def _unclosed_bracket(source: Source, line: int, column: int) -> Span | None:
    """The last bracket opened before (line, column) and never closed, if any."""
    stack: list[tuple[str, int, int]] = []
    pairs = {")": "(", "]": "["}
    for number, text in enumerate(source.text.split("\n"), start=1):
        if number > line:
            break
        for col, char in enumerate(text.split("#", 1)[0], start=1):
            if number == line and col >= column:
                break
            if char in "([":
                stack.append((char, number, col))
            elif char in ")]" and stack and stack[-1][0] == pairs[char]:
                stack.pop()
    if not stack:
        return None
    _, number, col = stack[-1]
    return Span(number, col, number, col + 1)


def dedent_error(source: Source) -> PplcError:
    """Find the line whose indentation matches no enclosing block (lark does not say)."""
    levels = [0]
    depth = 0
    for number, text in enumerate(source.text.split("\n"), start=1):
        code = text.split("#", 1)[0]
        if not code.strip():
            continue
        indent = len(code) - len(code.lstrip(" \t"))
        if depth == 0:
            if indent > levels[-1]:
                levels.append(indent)
            else:
                open_levels = list(levels)
                while indent < levels[-1]:
                    levels.pop()
                if indent != levels[-1]:
                    levels = open_levels
                    return error("this line's indentation matches no enclosing block", source,
                                 Span(number, 1, number, indent + 1),
                                 hint=f"indent it like the block it belongs to "
                                      f"({' or '.join(str(n) for n in levels)} spaces)")
        depth += code.count("(") + code.count("[") - code.count(")") - code.count("]")
        depth = max(depth, 0)
    return error("inconsistent indentation", source)


def syntax_error(exc: UnexpectedInput, source: Source) -> PplcError:
    if isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        token = getattr(exc, "token", None)
        line = getattr(token, "line", None) or source.text.count("\n")
        column = getattr(token, "column", None) or 10**6
        if token is None or token.type == "$END":  # everything before the end counts
            line, column = source.text.count("\n") + 1, 10**6
        if token is None or token.type in ("$END", "_NEWLINE", "_DEDENT") or \
                (token.line or 0) > 0:
            bracket = _unclosed_bracket(source, line, column)
            if bracket is not None and (bracket.line < line or token is None
                                        or token.type in ("$END",)):
                char = source.line(bracket.line)[bracket.column - 1]
                return error(f"'{char}' is never closed", source, bracket,
                             hint=f"close it with '{')' if char == '(' else ']'}' before "
                                  f"the next statement")
    habit = _habit(exc, source)
    if habit is not None:
        return habit
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else "?"
        return error(f"unexpected character '{char}'", source,
                     Span.point(exc.line, exc.column),
                     hint=habits.character_hint(char, _word_at(source.text, exc.pos_in_stream)))
    if isinstance(exc, UnexpectedEOF):
        lines = source.text.rstrip("\n").split("\n")
        return error("unexpected end of file", source,
                     Span.point(len(lines), len(lines[-1]) + 1))
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    history = getattr(exc, "token_history", None) or []
    previous = history[-1] if history else None
    if previous is not None and previous.type == "NAME" and str(previous) in _NOT_IN_THE_LANGUAGE:
        message, hint = _NOT_IN_THE_LANGUAGE[str(previous)]
        return error(message, source, token_span(previous), hint=hint)
    header = source.line(token.line - 1).split("#", 1)[0].rstrip() if token.line else ""
    header_indent = len(header) - len(header.lstrip())
    body_missing = header.endswith(":") and (token.column or 1) <= header_indent + 1
    if ("_INDENT" in exc.expected or body_missing) \
            and token.type not in ("_INDENT", "_DEDENT", "_NEWLINE", "$END"):
        return error(f"unexpected {_describe_token(token)}", source, token_span(token),
                     hint="the body of a `for` or `def` must be indented under its header")
    expected = sorted(_TOKEN_WORDS.get(t, f"'{t}'" if len(t) < 3 else t.lower())
                      for t in exc.expected if not t.startswith("__"))
    if token.type == "_INDENT":
        line = token.end_line or token.line
        return error("unexpected indentation", source,
                     Span(line, 1, line, max(2, token.end_column or 2)),
                     hint="only the body of a `for` or `def` is indented")
    if token.type == "_NEWLINE" or token.type == "$END":
        # Point just past the end of the offending line, where something is missing.
        line = token.line if token.type == "_NEWLINE" else max(1, token.line)
        prev = exc.token_history[-1] if getattr(exc, "token_history", None) else None
        if prev is not None:
            line, col = prev.end_line, prev.end_column
        else:
            col = len(source.line(line)) + 1
        message = "unexpected end of line"
        hint = None
        if "':'" in expected or "COLON" in exc.expected:
            hint = "a `for` or `def` header ends with ':'"
        elif expected:
            hint = "expected " + _join(expected)
        return error(message, source, Span.point(line, col), hint=hint)
    span = token_span(token)
    message = f"unexpected {_describe_token(token)}"
    hint = "expected " + _join(expected) if 0 < len(expected) <= 6 else None
    if token.type == "EQUAL" and "TILDE" in exc.expected:
        hint = "a comparison is written '=='"
    return error(message, source, span, hint=hint)


def _join(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    if len(words) <= 2:
        return " or ".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


# ---------------------------------------------------------------- other languages' habits


def _word_at(text: str, pos: int) -> str:
    """The run of letters, digits and '_' (any script) around text[pos]."""
    def part(c: str) -> bool:
        return c.isalnum() or c == "_" or unicodedata.category(c).startswith("M")
    start, end = pos, pos
    while start > 0 and part(text[start - 1]):
        start -= 1
    while end < len(text) and part(text[end]):
        end += 1
    return text[start:end]


def _habit(exc: UnexpectedInput, source: Source) -> PplcError | None:
    """A diagnostic in this language's words for a line written in another's, or None."""
    token = getattr(exc, "token", None)
    number = token.line if token is not None and token.line else exc.line
    if token is not None and token.type in ("$END", "_DEDENT"):
        return _dangling_decorator(source, number)
    if not number or number < 1:
        return None
    text = source.line(number)
    code = text.split("#", 1)[0]
    loop = re.match(r"(\s*for\s+(\w+)\s+in\s+)(.*?)\s*:?\s*$", code)
    if loop and loop[3] and not re.match(r"range\s*\(", loop[3]):
        column = len(loop[1]) + 1
        return error(f"a loop runs over range(...), not '{loop[3]}'", source,
                     Span(number, column, number, column + len(loop[3])),
                     hint=habits.loop_hint(loop[2], loop[3]))
    r_loop = re.match(r"(\s*)for\s*\(\s*(\w+)\s+in\s+(.*)\)\s*\{?\s*$", code)
    if r_loop:
        column = len(r_loop[1]) + 1
        return error("a loop is written `for i in range(N):`, not R's `for (i in 1:N)`",
                     source, Span(number, column, number, len(code.rstrip()) + 1),
                     hint=habits.loop_hint(r_loop[2], r_loop[3]))
    if code.lstrip().startswith(("//", "/*")):
        indent = len(code) - len(code.lstrip())
        return error("comments start with '#', not '//' or '/*'", source,
                     Span(number, indent + 1, number, indent + 3),
                     hint="write `# a comment`, as in Python")
    if not isinstance(exc, UnexpectedToken):
        return None
    if token.type in ("ADD_OP", "MUL_OP", "POW") and \
            text[token.end_column - 1:token.end_column] == "=":
        return _augmented_assignment(source, token, code)
    if token.type == "COMPARE" and str(token) == "<":
        return _angle_brackets(source, token, text)
    return None


def _augmented_assignment(source: Source, token: Token, code: str) -> PplcError:
    """`target += ...` (Stan) and `x += ...` (Python)."""
    first = re.match(r"(\s*)(\w+)", code)
    operator = f"{token}="
    if first and first[2] == "target":
        column = len(first[1]) + 1
        return error("Stan's `target += ...` is written `factor ...` here", source,
                     Span(token.line, column, token.line, token.end_column + 1),
                     hint="write `factor EXPR`: it adds EXPR to the log density")
    name = first[2] if first else "x"
    return error(f"there is no '{operator}': a variable has one definition and is never "
                 "updated", source, Span(token.line, token.column, token.line,
                                         token.end_column + 1),
                 hint=f"define '{name}' in one statement (`{name} = ...`), or add a term to "
                      f"the log density with `factor EXPR`")


def _angle_brackets(source: Source, token: Token, text: str) -> PplcError | None:
    """Stan's bounded types, `real<lower=0>`, and R's assignment arrow, `x <- 1`."""
    before = text[:token.column - 1]
    after = text[token.column - 1:]
    if after.startswith("<-") and re.fullmatch(r"\s*\w+(\[.*\])?\s*", before):
        return error("assignment is written '=' (or '~' for a random variable), not '<-'",
                     source, Span(token.line, token.column, token.line, token.column + 2),
                     hint="write `x = EXPR`, as in Python")
    base = re.search(r"(\w+)\s*$", before)
    if base is None or base[1] not in _TYPE_NAMES:
        return None
    bounds = re.match(r"<([^>]*)>(.*)", after)
    if bounds is None:
        return error("bounds are written in parentheses: real(lower=..., upper=...)", source,
                     token_span(token), hint="or use the types positive and unit")
    message, hint = habits.angle_bounds(base[1], bounds[1], bounds[2].strip())
    return error(message, source, Span(token.line, token.column, token.line,
                                       token.column + len(bounds[1]) + 2), hint=hint)


def _dangling_decorator(source: Source, number: int | None) -> PplcError | None:
    """A decorator with no statement after it in its block (at a dedent or the end)."""
    lines = source.text.split("\n")
    number = min(number or len(lines), len(lines))
    while number > 0 and not lines[number - 1].split("#", 1)[0].strip():
        number -= 1
    text = lines[number - 1] if number > 0 else ""
    if not text.lstrip().startswith("@"):
        return None
    column = len(text) - len(text.lstrip()) + 1
    decorator = text.split("#", 1)[0].strip()
    return error(f"a decorator ({decorator}) must come right before a '~' statement, in the "
                 "same block", source, Span(number, column, number, column + len(decorator)),
                 hint="@centered and @noncentered choose the parameterization of a random "
                      "variable")
