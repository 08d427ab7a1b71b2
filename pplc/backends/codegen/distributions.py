"""Distribution calls -> small named functions in the generated module.

`Normal(mu, tau)` in a `~` becomes `normal_logp(theta, mu, tau)`, a three-line wrapper
that converts its arguments as runtime/distributions.py's `log_prob` does (`to_float`, and
a static int for LKJCholesky's `dim`) and calls pplc's own density `normal_lp`, copied
into the module by `Runtime`. Samplers are `normal_sample(key, shape, mu, tau)` alike.
A distribution with several signatures gets one wrapper per signature used
(`bernoulli_logp` for probs, `bernoulli_logits_logp` for logits).
"""

from __future__ import annotations

import ast as pyast
import inspect
import re

from pplc.runtime import cdfs, distributions as dists
from pplc.runtime.cdfs import CDFS
from pplc.backends.codegen.expressions import distribution_arguments
from pplc.backends.codegen.runtime import Runtime
from pplc.errors import Source, error
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, named_arguments

_DISTRIBUTIONS = "pplc.runtime.distributions"


def snake_case(name: str) -> str:
    """`HalfCauchy` -> `half_cauchy`, `LKJCholesky` -> `lkj_cholesky`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return text.lower()


class DistributionWrappers:
    """The wrappers one module uses, written into its runtime on first use."""

    def __init__(self, runtime: Runtime, fresh, source: Source):
        self.runtime = runtime
        self.fresh = fresh          # base name -> a module-level name nobody else uses
        self.source = source
        self.names: dict[tuple, str] = {}

    def logp(self, call: ast.Call) -> tuple[str, list]:
        """(wrapper name, argument expressions in its order) of log p(value | call);
        None stands for a bound that Truncated leaves out."""
        return self._call("logp", call)

    def sample(self, call: ast.Call) -> tuple[str, list]:
        """(wrapper name, argument expressions) of a sampler: name(key, shape, *args)."""
        return self._call("sample", call)

    def _call(self, what: str, call: ast.Call) -> tuple[str, list]:
        info = DISTRIBUTIONS[call.func]
        if not info.wrapper:
            signature = _signature(call)
            return self._wrapper(what, call.func, signature), \
                distribution_arguments(call, signature)
        named = named_arguments(call)
        inner = named["dist"]
        signature = _signature(inner)
        name = self._truncated(what, inner, signature)
        return name, distribution_arguments(inner, signature) + \
            [named.get("lower"), named.get("upper")]

    def _wrapper(self, what: str, func: str, signature: tuple[str, ...]) -> str:
        key = (what, func, signature)
        if key in self.names:
            return self.names[key]
        info = DISTRIBUTIONS[func]
        name = self.fresh(_base(func, signature) + "_" + what)
        impl = self._impl(what, func, signature)
        args = ", ".join(f"int({p})" if p in info.static_params else f"to_float({p})"
                         for p in signature)
        described = f"{func}({', '.join(signature)})"
        if what == "logp":
            text = (f"def {name}(value, {', '.join(signature)}):\n"
                    f'    """log {described} at value, one term per element '
                    f'(pplc\'s {impl})."""\n'
                    f"    return {impl}(to_float(value), {args})")
        else:
            text = (f"def {name}(key, shape, {', '.join(signature)}):\n"
                    f'    """Draws of {described} of value shape `shape` '
                    f'(pplc\'s {impl})."""\n'
                    f"    return {impl}(key, shape, {args})")
        self.runtime.wrapper(name, text)
        self.names[key] = name
        return name

    def _impl(self, what: str, func: str, signature: tuple[str, ...]) -> str:
        impl = dists.IMPLEMENTATIONS[func][signature][0 if what == "logp" else 1]
        self.runtime.require("pplc.runtime.numerics", "to_float")
        return self.runtime.require(impl.__module__, impl.__name__)

    def _truncated(self, what: str, inner: ast.Call, signature: tuple[str, ...]) -> str:
        """Truncated(DIST(...), lower, upper): `truncated_normal_logp(value, loc, scale,
        lower, upper)`, with DIST's CDFs from pplc's tables (a bound may be None)."""
        key = ("truncated", what, inner.func, signature)
        if key in self.names:
            return self.names[key]
        info = DISTRIBUTIONS[inner.func]
        cdfs = self._cdfs(inner, signature)
        name = self.fresh("truncated_" + _base(inner.func, signature) + "_" + what)
        impl = self._impl("logp", inner.func, signature)
        params = ", ".join(signature)
        floats = "(" + ", ".join(f"to_float({p})" for p in signature) + \
            ("," if len(signature) == 1 else "") + ")"
        bounds = "_bound(lower), _bound(upper)"
        self.runtime.helper("_bound")
        described = f"Truncated({inner.func}({params}), lower, upper)"
        if what == "logp":
            lp = self.runtime.require(_DISTRIBUTIONS, "truncated_lp")
            text = (f"def {name}(value, {params}, lower, upper):\n"
                    f'    """log {described} at value; a bound may be None."""\n'
                    f"    return {lp}(to_float(value), {impl}, {cdfs}, {floats},\n"
                    f"                {bounds}, discrete={info.discrete})")
        elif not info.discrete and cdfs_have_inverse(inner.func):
            draw = self.runtime.require(_DISTRIBUTIONS, "truncated_sample")
            text = (f"def {name}(key, shape, {params}, lower, upper):\n"
                    f'    """Draws of {described} by inverse CDF; a bound may be None."""\n'
                    f"    return {draw}(key, shape, {cdfs}, {floats}, {bounds})")
        else:
            text = (f"def {name}(key, shape, {params}, lower, upper):\n"
                    f'    """pplc has no sampler for {described}."""\n'
                    f'    raise NotImplementedError("no sampler for Truncated({inner.func})")')
        self.runtime.wrapper(name, text)
        self.names[key] = name
        return name

    def _cdfs(self, inner: ast.Call, signature: tuple[str, ...]) -> str:
        """The module constant holding DIST's (cdf, log_cdf, log_ccdf, icdf, iccdf)."""
        key = ("cdfs", inner.func, signature)
        if key in self.names:
            return self.names[key]
        expression = _cdf_table_entry(inner.func, signature)
        if expression is None:
            raise error(f"{inner.func} cannot be truncated: it has no CDF", self.source,
                        inner.span)
        name = self.fresh("_" + _base(inner.func, signature) + "_cdfs")
        self.runtime.define("pplc.runtime.cdfs", name, expression)
        self.names[key] = name
        return name


def _signature(call: ast.Call) -> tuple[str, ...]:
    given = set(named_arguments(call))
    return next(s for s in DISTRIBUTIONS[call.func].signatures if set(s) == given)


def _base(func: str, signature: tuple[str, ...]) -> str:
    """`normal`, or `bernoulli_logits` for a signature other than the first."""
    first = DISTRIBUTIONS[func].signatures[0]
    return "_".join([snake_case(func)] + [p for p in signature if p not in first])


def cdfs_have_inverse(func: str) -> bool:
    return func in CDFS and CDFS[func][3] is not None


def _cdf_table_entry(func: str, signature: tuple[str, ...]) -> str | None:
    """The source of DIST's entry in cdfs.py's `CDFS` (continuous, by name) or
    `DISCRETE_CDFS` (by name and signature), e.g. `symmetric(log_ndtr, ndtri)`."""
    text = inspect.getsource(cdfs)
    for node in pyast.parse(text).body:
        if not (isinstance(node, pyast.AnnAssign) and isinstance(node.target, pyast.Name)
                and isinstance(node.value, pyast.Dict)):
            continue
        wanted = {"CDFS": func, "DISCRETE_CDFS": (func, signature)}.get(node.target.id)
        for key, value in zip(node.value.keys, node.value.values):
            if wanted is not None and pyast.literal_eval(key) == wanted:
                return pyast.get_source_segment(text, value)
    return None
