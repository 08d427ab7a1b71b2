"""The algebraic form of a first-order recurrence, and so how its scan can run.

A windowed scan (recurrence.py) computes slice t of an array from slice t - 1 by
evaluating the piece's whole expression once per step. Two forms are worth more:

- **linear**: `x[t, k] = a * x[t - 1, k] + b` with `a` and `b` free of `x` (AR(1)-like
  recurrences, stochastic volatility's noncentered `h`). The coefficients are computed for
  every step at once, vectorized, before the scan; the scan itself is `x = a[t] x + b[t]`,
  and, being associative on the pairs (a, b), may run as a parallel prefix scan.
- **log-semiring matrix**: `alpha[t, k] = logsumexp(alpha[t - 1] + c) + d` with `c` (a
  vector over the previous row) and `d` free of `alpha` (an HMM's forward algorithm). Step
  t is the product of the row `alpha[t - 1]` with the matrix `M[t][j, k] = c[j] + d` in
  the (logsumexp, +) semiring, which is associative on matrices.

Anything else ("other") runs the whole expression per step, sequentially. The form is read
from the text here, proved by its structure: an expression the rules below do not match is
"other", never guessed. Both renderings (backends/recursions.py, codegen/recursions.py)
take the parts from `linear_parts` / `semiring_parts`, so they compute the same thing the
plan describes. Which method runs a form (`strategy`) was measured on a 2-core x86 CPU,
float64 (benchmarks/scans.md).
"""

from __future__ import annotations

from pplc.frontend import ast

LINEAR = "linear"
SEMIRING = "log-semiring matrix product"
OTHER = ""


def _previous(index, loop: str) -> bool:
    """Whether `index` is `loop - 1`."""
    return (isinstance(index, ast.BinOp) and index.op == "-" and isinstance(index.left, ast.Name)
            and index.left.id == loop and isinstance(index.right, ast.Number)
            and index.right.value == 1)


def _reads(name: str, expr) -> bool:
    return any(n.id == name for n in ast.names_in(expr))


def _written(piece) -> list[str] | None:
    indices = piece.indices or ()
    if not all(isinstance(i, ast.Name) for i in indices):
        return None
    return [i.id for i in indices]


def _is_same_element_before(name: str, node, written: list[str], axis: int) -> bool:
    """`name[..., t - 1, ...]` with every other subscript the written one (an elementwise
    read of the previous slice)."""
    if not (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
            and node.value.id == name and len(node.indices) == len(written)):
        return False
    for k, index in enumerate(node.indices):
        if k == axis:
            if not _previous(index, written[axis]):
                return False
        elif not (isinstance(index, ast.Name) and index.id == written[k]):
            return False
    return True


def _op(op: str, left, right, span):
    if left is None:
        if right is None:
            return None
        return right if op == "+" else ast.UnaryOp("-", right, span) if op == "-" else None
    if right is None:
        return left if op in "+-" else None
    return ast.BinOp(op, left, right, span)


def _affine(name: str, expr, is_read) -> tuple | None:
    """(coefficient, offset) ASTs with expr == coefficient * read + offset (None for a zero
    part), or None when the structure does not show that."""
    if is_read(expr):
        return ast.Number(1, expr.span), None
    if not _reads(name, expr):
        return None, expr
    span = expr.span
    if isinstance(expr, ast.UnaryOp) and expr.op in "+-":
        inner = _affine(name, expr.operand, is_read)
        if inner is None or expr.op == "+":
            return inner
        return tuple(None if p is None else ast.UnaryOp("-", p, span) for p in inner)
    if not isinstance(expr, ast.BinOp):
        return None
    if expr.op in ("+", "-"):
        left, right = _affine(name, expr.left, is_read), _affine(name, expr.right, is_read)
        if left is None or right is None:
            return None
        return _op(expr.op, left[0], right[0], span), _op(expr.op, left[1], right[1], span)
    if expr.op == "*" and not _reads(name, expr.left):
        inner = _affine(name, expr.right, is_read)
        return None if inner is None else tuple(_times(expr.left, p, "*", span) for p in inner)
    if expr.op in ("*", "/") and not _reads(name, expr.right):
        inner = _affine(name, expr.left, is_read)
        return None if inner is None else tuple(_times(p, expr.right, expr.op, span)
                                                for p in inner)
    return None


def _times(left, right, op, span):
    """left * right or left / right, None (zero) if a factor is, without a factor 1."""
    if left is None or (op == "*" and right is None):
        return None
    if isinstance(left, ast.Number) and left.value == 1 and op == "*":
        return right
    if isinstance(right, ast.Number) and right.value == 1:
        return left
    return ast.BinOp(op, left, right, span)


def linear_parts(name: str, piece, axis: int) -> tuple | None:
    """(a, b) with the piece's value `a * name[.., t - 1, ..] + b`, both free of `name` (b
    may be None: zero), for a piece writing `name[.., t, ..]` at `axis` with its loop
    indices; None if the value is not of that form."""
    written = _written(piece)
    if written is None or axis >= len(written):
        return None
    parts = _affine(name, piece.value,
                    lambda e: _is_same_element_before(name, e, written, axis))
    if parts is None or parts[0] is None:
        return None
    return parts


def _terms(expr, sign: int = 1) -> list[tuple[int, object]]:
    """The signed terms of a sum."""
    if isinstance(expr, ast.BinOp) and expr.op in ("+", "-"):
        return _terms(expr.left, sign) + _terms(expr.right, sign if expr.op == "+" else -sign)
    return [(sign, expr)]


def _sum(terms, span):
    out = None
    for sign, term in terms:
        out = _op("+" if sign > 0 else "-", out, term, span)
    return out


def semiring_parts(name: str, piece, axis: int) -> tuple | None:
    """(c, d) with the piece's value `logsumexp(name[t - 1] + c) + d` (c, d free of
    `name`; either None for zero), for a piece writing `name[t, k]` (t the scanned loop's
    index at axis 0, k the other loop's); None if it is not of that form."""
    written = _written(piece)
    if written is None or len(written) != 2 or axis != 0 or len(piece.plates) != 2:
        return None
    outer = _terms(piece.value)
    recursive = [k for k, (_, t) in enumerate(outer) if _reads(name, t)]
    if len(recursive) != 1 or outer[recursive[0]][0] < 0:
        return None
    call = outer[recursive[0]][1]
    if not (isinstance(call, ast.Call) and call.func == "logsumexp" and len(call.args) == 1
            and not call.keywords):
        return None
    inner = _terms(call.args[0])
    rows = [k for k, (_, t) in enumerate(inner) if _reads(name, t)]
    if len(rows) != 1 or inner[rows[0]][0] < 0 \
            or not _whole_previous_row(name, inner[rows[0]][1], written[0]):
        return None
    span = piece.value.span
    return (_sum([st for k, st in enumerate(inner) if k != rows[0]], span),
            _sum([st for k, st in enumerate(outer) if k != recursive[0]], span))


def _whole_previous_row(name: str, node, loop: str) -> bool:
    """`name[t - 1]` or `name[t - 1, :]`."""
    if not (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
            and node.value.id == name and _previous(node.indices[0], loop)):
        return False
    rest = node.indices[1:]
    return not rest or (len(rest) == 1 and isinstance(rest[0], ast.Slice)
                        and rest[0].start is None and rest[0].stop is None)


def form_of(name: str, piece, axis: int, lags: tuple[int, ...]) -> str:
    """The form of a windowed recurrence (module docstring)."""
    if lags != (1,):
        return OTHER
    if linear_parts(name, piece, axis) is not None:
        return LINEAR
    if semiring_parts(name, piece, axis) is not None:
        return SEMIRING
    return OTHER


def strategy(form: str, steps: int, width: int) -> tuple[str, bool, int]:
    """(the form the scan runs, parallel, unroll) for a recurrence of `form` over `steps`
    steps of `width` elements each. Measured on this project's 2-core x86 CPU in float64
    (benchmarks/scans.md, long compiled loops, min and median of 12 interleaved rounds):

    - log-semiring: the form's sequential scan costs a quarter of the general scan (416-step
      HMM: 62 against 227 us per gradient), so it runs;
    - linear: the general scan is the faster (SV, T = 500: 9.9 against 18.5 us; its
      per-step expression is already cheap, and the form's vectorized parts add a gather
      and its scatter-add), so a linear recurrence keeps the general scan;
    - the parallel prefix scan costs 1.2-2x the form's sequential scan (O(T log T) work,
      O(T K^3 log T) for K states, where 2 cores give its short depth nothing to overlap),
      and unrolling x2, x4 or x8 made no difference beyond the noise: sequential, x1.

    Every form and method stays available to a plan and is tested to give the same density
    and gradient (tests/backends/test_parallel_scans.py), for an accelerator, where none was
    measured."""
    if form == LINEAR:
        return OTHER, False, 1
    return form, False, 1
