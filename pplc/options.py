"""The options of sampling, fitting and predicting, checked in one table for the CLI and
the Python API.

`pplc sample --chains 0` and `model.sample(chains=0)` are the same mistake, so they get
the same words: the CLI's argparse types and the API's `check_options` read `OPTIONS`
below, and each refusal is a `PplcError` (the API) or argparse's own error (the CLI),
never an `IndexError` from deep inside the sampler. Nothing here imports JAX: the CLI
reads the table before it imports anything slow.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pplc.errors import did_you_mean, error


@dataclass(frozen=True)
class Option:
    """What an option takes: a whole number in [minimum, maximum], a probability strictly
    between 0 and 1, or one of `choices`."""

    kind: str                        # "whole", "probability" or "choice"
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()


def _whole(minimum: int, maximum: int | None = None) -> Option:
    return Option("whole", minimum, maximum)


SEED_MAX = 2 ** 63 - 1   # JAX's PRNGKey takes a signed 64-bit integer

OPTIONS: dict[str, Option] = {
    "chains": _whole(1),
    "warmup": _whole(0),
    "draws": _whole(1),
    "seed": _whole(0, SEED_MAX),
    # 2**30 leapfrog steps per draw is beyond any run that ends; deeper trees overflow
    # the sampler's step counters.
    "max_tree_depth": _whole(1, 30),
    "max_iterations": _whole(1),
    "batch_size": _whole(1),   # minibatch ADVI's rows per step (inference/minibatch.py)
    "target_accept": Option("probability"),
    "chain_method": Option("choice", choices=("auto", "vectorized", "sequential", "parallel")),
    "metric": Option("choice", choices=("diag", "dense", "diag-grad", "low-rank", "auto")),
    "init": Option("choice", choices=("uniform", "pathfinder")),
    "method": Option("choice", choices=("advi", "fullrank", "map", "laplace", "pathfinder")),
}


class OptionError(ValueError):
    """An option's value refused; the message says what was expected and what was given."""


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) < 30 else text[:20] + "..."


def check_value(name: str, value: Any) -> Any:
    """The value of option `name` as the sampler takes it (an int, a float, a string), or
    `OptionError` saying what was expected."""
    option = OPTIONS[name]
    if option.kind == "choice":
        if not isinstance(value, str) or value not in option.choices:
            raise OptionError(f"expected one of {', '.join(option.choices)}, got "
                              f"{_shown(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        what = "a whole number" if option.kind == "whole" else "a number"
        raise OptionError(f"expected {what}, got {_shown(value)}")
    if option.kind == "probability":
        value = float(value)
        if not 0 < value < 1:
            raise OptionError(f"expected a number strictly between 0 and 1, got {value}")
        return value
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise OptionError(f"expected a whole number, got {_shown(value)}")
    value = int(value)
    if option.minimum is not None and value < option.minimum:
        raise OptionError(f"expected a number >= {option.minimum}, got {_shown(value)}")
    if option.maximum is not None and value > option.maximum:
        raise OptionError(f"expected a number <= {option.maximum}, got {_shown(value)}")
    return value


def parse_text(name: str, text: str) -> Any:
    """A command-line option's text -> its value (`check_value`'s), or `OptionError`."""
    if OPTIONS[name].kind == "choice":
        return check_value(name, text)
    whole = OPTIONS[name].kind == "whole"
    try:
        value: Any = int(text)
    except ValueError:
        try:
            value = float(text)   # 1e3 is a whole number
            if whole and not (math.isfinite(value) and value.is_integer()):
                raise ValueError(text)
        except ValueError:
            what = "a whole number" if whole else "a number"
            shown = text if len(text) < 30 else text[:20] + "..."
            raise OptionError(f"expected {what}, got '{shown}'") from None
    return check_value(name, value)


def argparse_type(name: str):
    """An argparse `type=` for option `name`: its refusal is argparse's usual error
    (`argument --chains: expected a number >= 1, got 0`)."""
    import argparse

    def parse(text: str):
        try:
            return parse_text(name, text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


def check_options(**values: Any) -> dict[str, Any]:
    """The API's check of its keyword options (`chains=0` -> `PplcError`); None means the
    default where an option may be left out (`max_iterations`). Returns the values as the
    sampler takes them (1e3 -> 1000)."""
    checked = {}
    for name, value in values.items():
        if value is None and name in ("max_iterations", "batch_size"):
            checked[name] = None
            continue
        try:
            checked[name] = check_value(name, value)
        except OptionError as exc:
            raise error(f"{name}: {exc}", hint=_hint(name)) from None
    return checked


def _hint(name: str) -> str | None:
    if name == "seed":
        return "a seed is a whole number from 0 to 2**63 - 1"
    return None


def check_posterior(value: Any, what: str) -> None:
    """`what` (a method's name) takes a fit: a `Posterior` from sample, fit or pplc.load."""
    from pplc.inference.posterior import Posterior

    if not isinstance(value, Posterior):
        raise error(f"{what} takes a Posterior (the result of sample or fit, or of "
                    f"pplc.load), not {type(value).__name__}",
                    hint="pplc.load('fit.nc') reads a fit saved by 'pplc sample --output'")


def check_params(params: Any, shapes: Mapping[str, tuple], known: Iterable[str],
                 what: str) -> None:
    """`params` of `log_density` / `unconstrain`: a dict with a value for each latent in
    `shapes` (name -> shape), each of that shape (or one that broadcasts to it) and made of
    numbers. Names of other variables of the model (`known`: deterministics of a draw,
    say) are let through; a name the model does not have is refused, with the closest."""
    import numpy as np

    if not isinstance(params, Mapping):
        raise error(f"{what} takes a dict of latent name -> value, not "
                    f"{type(params).__name__}",
                    hint="latents: " + ", ".join(shapes) if shapes else None)
    known = set(known) | set(shapes)
    for name in params:
        if name not in known:
            raise error(f"{what}: the model has no variable '{name}'",
                        hint=did_you_mean(str(name), known))
    missing = [name for name in shapes if name not in params]
    if missing:
        listed = ", ".join(f"'{n}' (shape {_shape(shapes[n])})" for n in missing)
        raise error(f"{what} needs a value of every latent: {listed} missing")
    for name, shape in shapes.items():
        value = params[name]
        if type(value).__module__.startswith("jax"):   # a JAX array or a tracer
            given = tuple(np.shape(value))
        else:
            try:
                given = np.asarray(value, np.float64).shape
            except (TypeError, ValueError):
                raise error(f"{what}: the value of '{name}' is not made of numbers: "
                            f"{_shown(value)}") from None
        if len(given) > len(shape) or any(g not in (1, s) for g, s in
                                          zip(given[::-1], tuple(shape)[::-1])):
            raise error(f"{what}: '{name}' has shape {_shape(shape)} in the model, but the "
                        f"value given has shape {_shape(given)}")


def _shape(shape) -> str:
    shape = tuple(int(n) for n in shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


__all__ = ["OPTIONS", "Option", "OptionError", "argparse_type", "check_options",
           "check_params", "check_posterior", "check_value", "parse_text"]
