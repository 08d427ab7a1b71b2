"""A model file's bytes -> the text the grammar reads, refusing what Python would refuse.

A model is UTF-8 text, as a Python source file is: a UTF-8 byte-order mark is skipped (as
Python skips it), any line ending (LF, CRLF, CR) is accepted, and a file that is binary or
in another encoding is refused with the place of its first undecodable byte. Indentation
that mixes tabs and spaces so that its meaning depends on the tab width is refused the
way Python refuses it (its `TabError`): lark's indenter would silently count a tab as
eight spaces.
"""

from __future__ import annotations

from pplc.errors import PplcError, Source, Span, error

BOM = "\ufeff"


def decode(data: bytes, path: str, what: str = "model") -> str:
    """The text of a model (or data, `what`) file's bytes; PplcError if they are not UTF-8
    text."""
    example = "model.ppl" if what == "model" else "data.json"
    if data.startswith(BOM.encode()):
        data = data[len(BOM.encode()):]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"'{path}' is UTF-16 text, not UTF-8", Source(path, ""),
                    hint="save the file as UTF-8, the encoding pplc (and Python) expects")
    if b"\0" in data:
        raise error(f"'{path}' is not a text file (it contains NUL bytes)", Source(path, ""),
                    hint=f"a {what} file is a UTF-8 text file, such as {example}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc, path, what) from None


def _not_utf8(data: bytes, exc: UnicodeDecodeError, path: str, what: str) -> PplcError:
    before = normalize(data[:exc.start].decode("utf-8"))
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    shown = normalize(data.decode("utf-8", errors="replace"))
    try:
        data.decode("cp1252")
        guess = "it looks like Latin-1 or Windows-1252 text: "
    except UnicodeDecodeError:
        guess = ""
    return error(f"the {what} file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be "
                 "decoded", Source(path, shown), Span.point(line, column),
                 hint=f"{guess}save the file as UTF-8, the encoding pplc (and Python) expects")


def normalize(text: str) -> str:
    """No byte-order mark, and every line ending a plain newline (Python's universal newlines)."""
    if text.startswith(BOM):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_indentation(source: Source) -> None:
    """Refuse indentation whose meaning depends on the width of a tab (Python's TabError).

    Python's tokenizer measures each line's indentation twice, with tabs 8 columns wide and
    1 column wide; if the two measures disagree about whether the line is deeper than,
    level with or shallower than its block, the file mixes tabs and spaces ambiguously.
    Only lines that start a statement count: not continuation lines inside brackets or
    after a backslash, nor blank or comment-only lines.
    """
    levels = [(0, 0, "")]  # (width with tabs of 8, with tabs of 1, the indent) of each block
    depth = 0  # open brackets
    continued = False  # the previous line ended with a backslash
    for number, text in enumerate(source.text.split("\n"), start=1):
        code = text.split("#", 1)[0]
        starts_statement = depth == 0 and not continued and code.strip() != ""
        if starts_statement:
            indent = code[:len(code) - len(code.lstrip(" \t\f"))]
            wide, narrow = len(indent.expandtabs(8)), len(indent.expandtabs(1))
            top_wide, top_narrow, top_indent = levels[-1]
            if wide > top_wide:
                consistent = narrow > top_narrow
                levels.append((wide, narrow, indent))
            else:
                while len(levels) > 1 and wide < levels[-1][0]:
                    levels.pop()
                top_indent = levels[-1][2]
                # A width matching no block is the indenter's own error, reported later.
                consistent = wide != levels[-1][0] or narrow == levels[-1][1]
            if not consistent:
                raise error("inconsistent use of tabs and spaces in indentation", source,
                            Span(number, 1, number, len(indent) + 1),
                            hint=f"this line is indented with {_describe(indent)} where the "
                                 f"line before it at this level uses {_describe(top_indent)}; "
                                 "indent with spaces only")
        depth = max(0, depth + sum(code.count(c) for c in "([") - sum(code.count(c)
                                                                        for c in ")]"))
        continued = code.rstrip(" \t\f").endswith("\\")
    return None


def _describe(indent: str) -> str:
    tabs, spaces = indent.count("\t"), indent.count(" ")
    words = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((tabs, "tab"), (spaces, "space"))
             if n]
    return " and ".join(words) or "no indentation"
