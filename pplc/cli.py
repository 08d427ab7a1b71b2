"""The `pplc` command.

    pplc check  MODEL.ppl [--data DATA.json]
    pplc ir     MODEL.ppl [--data DATA.json]
    pplc graph  MODEL.ppl [--data DATA.json] -o model.svg|png|pdf|dot
    pplc sample MODEL.ppl --data DATA.json [--chains 4] [--warmup 1000] [--draws 1000]
                [--seed 0] [--summary OUT.json] [--output OUT.nc] [--force]
    pplc fit    MODEL.ppl --data DATA.json --method advi|fullrank|map|laplace
                [--draws 1000] [--seed 0] [--summary OUT.json] [--output OUT.nc]
    pplc predict MODEL.ppl --data NEW.json --draws FIT.nc -o PRED.nc [--seed 0] [--force]
    pplc build  MODEL.ppl -o model_module.py [--data DATA.json] [--force]
    pplc plot   FIT.nc --kind trace|pair|ppc|forest [--vars NAME ...] -o FILE.png [--force]

A mistake in a model, its data or the options prints `FILE:LINE:COL: error: ...` with the
source line and a caret, and exits with status 1; never a traceback. Any other exception
is a bug in pplc, reported as such (status 2). This module parses the command line and
turns exceptions and signals into exit statuses; the commands themselves are in
commands.py (its `COMMANDS` table), `sample` and `fit` in run_commands.py, and what they
share in command_support.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Sequence

from pplc.errors import InternalError, PplcError, error
from pplc.commands import (COMMANDS, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_USER_ERROR,
                           join_background)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a PplcError like every other user mistake."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise error(f"{message}", hint=f"see '{self.prog} --help'")


def _option(name: str, parser, *flags: str, **kwargs) -> None:
    """An option read through pplc.options' table, the one the Python API checks with:
    `--chains 0` and `sample(chains=0)` are refused in the same words."""
    from pplc.options import OPTIONS, argparse_type

    if OPTIONS[name].kind == "choice":
        kwargs.setdefault("choices", OPTIONS[name].choices)
    else:
        kwargs.setdefault("type", argparse_type(name))
    parser.add_argument(*flags, **kwargs)


def _add_passes(parser) -> None:
    parser.add_argument("--no-pass", action="append", default=[], metavar="NAME",
                        help="turn an optimization pass off (repeatable), e.g. "
                             "--no-pass reparameterize")


def _add_extern(parser) -> None:
    parser.add_argument("--extern", action="append", default=[], metavar="NAME=MODULE:FUNCTION",
                        help="bind `extern def NAME` to a JAX-traceable Python function "
                             "(repeatable)")


def _add_summary_options(parser) -> None:
    parser.add_argument("--vars", nargs="+", metavar="NAME",
                        help="show only these variables in the table (or elements: "
                             "'theta[0]'), each with all its elements")
    parser.add_argument("--expand", action="store_true",
                        help="show every element of every array (by default an array of "
                             "deterministics, or a latent array of more than 20 elements, "
                             "takes one line)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pplc", description="A probabilistic-programming compiler.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def command(name, help, data_help="a JSON file of data", data_required=False,
                passes=True):
        """A subcommand on a model file, with --data, --extern and (unless off) --no-pass."""
        parser = sub.add_parser(name, help=help)
        parser.add_argument("model")
        parser.add_argument("--data", required=data_required, action="append",
                            help=data_help + "; .json, .csv (a column per array) or .npz, "
                                 "repeatable: the files are merged")
        _add_extern(parser)
        if passes:
            _add_passes(parser)
        return parser

    check = command("check", "check a model (and its data) without sampling")
    check.add_argument("--pedantic", action="store_true",
                       help="also warn about likely modelling mistakes (Stan's pedantic mode "
                            "and more)")

    ir = command("ir", "print the model's graph IR",
                 "a JSON file of data (decides observed vs latent)")
    ir.add_argument("--plan", action="store_true",
                    help="also print the lowering plan: the unconstrained layout, each "
                         "latent's transform, how each statement is evaluated (without --data: what the "
                         "text alone decides)")

    graph = command("graph", "draw the model as a PGM picture (graphviz)",
                    "a JSON file of data (sizes on plates, observed vs latent)")
    graph.add_argument("-o", "--output", required=True,
                       help="the picture: .svg, .png, .pdf, or .dot for the DOT source")
    graph.add_argument("--after", metavar="PASS",
                       help="draw the graph after this pass (needs --data)")

    fit = command("fit", "approximate the posterior: ADVI, full-rank ADVI, MAP, Laplace",
                  data_required=True)
    _option("method", fit, "--method", default="advi")
    _option("draws", fit, "--draws", default=1000,
            help="draws from the approximation (not for map)")
    _option("seed", fit, "--seed", default=0)
    _option("max_iterations", fit, "--max-iterations", default=None)
    _option("batch_size", fit, "--batch-size", default=None,
            help="advi/fullrank on minibatches of this many rows of the observations, "
                 "weighted N/B (docs/scaling.md)")
    _add_outputs(fit)

    command("explain", "say what each optimization pass decided", data_required=True)

    sample = command("sample", "draw from the posterior with NUTS", data_required=True)
    _option("chains", sample, "--chains", default=4)
    _option("warmup", sample, "--warmup", default=1000)
    _option("draws", sample, "--draws", default=1000)
    _option("seed", sample, "--seed", default=0)
    _option("max_tree_depth", sample, "--max-tree-depth", default=10)
    _option("target_accept", sample, "--target-accept", default=0.8)
    _option("chain_method", sample, "--chain-method", default="auto")
    _option("metric", sample, "--metric", default="auto",
            help="the mass matrix adapted in warmup: diagonal (Stan's default), "
                 "dense (for strongly correlated posteriors), or from draws and "
                 "gradients (Fisher-optimal, as nutpie): diag-grad, or low-rank "
                 "(low-rank plus diagonal; fewest gradients on correlated posteriors); "
                 "auto (the default): low-rank from 2 to 100 parameters, keeping only "
                 "the correlations the warmup draws show, else diag")
    sample.add_argument("--init", default="uniform", metavar="uniform|pathfinder|FILE",
                        help="starting points: uniform(-2, 2) on the unconstrained space "
                             "(Stan's), draws from multi-path Pathfinder, or a file of "
                             "initial values (.json, .csv or .npz) for some or all latents, "
                             "the others uniform")
    sample.add_argument("--prior", action="store_true",
                        help="draw from the prior and prior predictive instead (forward "
                             "simulation; the observations only give shapes)")
    sample.add_argument("--predict", action="store_true",
                        help="also draw the posterior predictive and the pointwise "
                             "log-likelihood, and each latent's log prior (groups "
                             "posterior_predictive, log_likelihood, log_prior)")
    sample.add_argument("--shard-data", nargs="?", const=True, default=False,
                        choices=["auto"], metavar="auto",
                        help="split the arrays of observations across the JAX devices, "
                             "as 'pplc ir --plan' shows; 'auto': only where each device's "
                             "share pays for the collective (docs/scaling.md)")
    sample.add_argument("--coordinator", metavar="HOST:PORT",
                        help="join a run of several processes (jax.distributed; with "
                             "--shard-data each holds its own rows; process 0 writes the "
                             "output; docs/scaling.md)")
    sample.add_argument("--num-processes", type=int, metavar="P",
                        help="the number of processes in the run (with --coordinator)")
    sample.add_argument("--process-id", type=int, metavar="I",
                        help="this process's number, 0..P-1 (with --coordinator)")
    _add_outputs(sample)

    predict = command("predict", "predict at new inputs from a saved fit, without "
                                 "re-sampling", "a JSON file of the new data (covariates and "
                                 "sizes; leave out the observations to predict)",
                      data_required=True)
    predict.add_argument("--draws", required=True, metavar="FIT.nc",
                         help="the fit: a netCDF file written by 'pplc sample --output' or "
                              "'pplc fit --output'")
    predict.add_argument("-o", "--output", required=True,
                         help="write the predictions here as netCDF (ArviZ group "
                              "'predictions', with the parameters' draws in 'posterior')")
    _option("seed", predict, "--seed", default=0)
    predict.add_argument("--force", action="store_true", help="overwrite an existing output")
    predict.add_argument("--no-cache", action="store_true",
                         help="do not use the persistent compilation cache")

    build = command("build", "compile the model to a standalone Python module (JAX and "
                             "NumPy only)",
                    "a JSON file of data: decides observed vs latent, lets discrete latents "
                    "be summed out, makes PARAM_SHAPES concrete, and checks the module "
                    "against the compiler", passes=False)
    build.add_argument("-o", "--output", required=True,
                       help="the Python file to write, e.g. model_module.py")
    build.add_argument("--force", action="store_true", help="overwrite an existing output file")

    plot = sub.add_parser("plot", help="draw a saved fit with ArviZ: trace, pair, posterior "
                                       "predictive check (ppc) or forest plot")
    plot.add_argument("fit", metavar="FIT.nc", help="a netCDF file written by 'pplc sample "
                                                    "--output' or 'pplc fit --output'")
    plot.add_argument("--kind", required=True, help="trace, pair, ppc or forest")
    plot.add_argument("--vars", nargs="+", metavar="NAME",
                      help="the variables to draw (default: the model's latents; for ppc, "
                           "its observed variables)")
    plot.add_argument("-o", "--output", required=True, help="the picture: .png, .svg or .pdf")
    plot.add_argument("--force", action="store_true", help="overwrite an existing output")
    return parser


def _add_outputs(parser) -> None:
    """The summary table's options and the files `sample` and `fit` write."""
    _add_summary_options(parser)
    parser.add_argument("--summary", help="write the summary JSON here")
    parser.add_argument("--output", help="write the draws here as netCDF (ArviZ format)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing --summary / --output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not use the persistent compilation cache")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Python warnings as one plain line, without the source line they came from."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        if isinstance(getattr(args, "data", None), list):   # one file, or several merged
            args.data = args.data[0] if len(args.data) == 1 else _Files(args.data)
        if args.version:
            from pplc import __version__
            print(f"pplc {__version__}")
            return 0
        if args.command is None:
            raise error("no command given", hint="commands: check, ir, sample "
                                                "(see 'pplc --help')")
        status = COMMANDS[args.command](args)
        return _signalled(status)
    except PplcError as exc:
        print(exc.render(), file=sys.stderr)
        if os.environ.get("PPLC_TRACEBACK") and exc.__cause__ is not None:
            import traceback   # what a user's extern function raised, where
            traceback.print_exception(exc.__cause__)
        _leave_if_a_peer_is_gone(exc.__cause__)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        status = _signalled(EXIT_INTERRUPTED)
        print("terminated" if status == 128 + signal.SIGTERM else "interrupted",
              file=sys.stderr)
        return status
    except Exception as exc:  # noqa: BLE001 - anything else is a pplc bug
        if _lost_peer(exc):
            return EXIT_USER_ERROR
        _internal(exc)
        return EXIT_INTERNAL_ERROR
    finally:
        join_background()


class _Files(list):
    """Several --data files: printed as `a.csv + sizes.json` in the commands' messages."""

    def __str__(self) -> str:
        return " + ".join(self)


def _signalled(status: int) -> int:
    """128 + the signal that stopped the run (130 Ctrl-C, 143 SIGTERM), even if the run
    then finished: a signal is never swallowed."""
    from pplc import interrupts

    received = interrupts.received()
    if received is not None:
        return 128 + received
    return status


def _lost_peer(exc: BaseException) -> bool:
    """In a run of several processes, an error of JAX's (perhaps wrapped as pplc's
    InternalError) that says another process is gone is reported as that
    (pplc.inference.distributed.lost_peer), not as a pplc bug."""
    if "pplc.inference.distributed" not in sys.modules:   # never joined a run
        return False
    from pplc.inference import distributed
    cause = exc.__cause__ if isinstance(exc, InternalError) and exc.__cause__ else exc
    lost = distributed.lost_peer(cause)
    if lost is None:
        return False
    print(lost.render(), file=sys.stderr)
    _leave_if_a_peer_is_gone(cause)
    return True


def _leave_if_a_peer_is_gone(cause: BaseException | None) -> None:
    """If another process's connection closed, that process is no more, and JAX's shutdown
    at exit would wait for it until its heartbeat timeout, then abort with a C++ stack
    trace: this process ends now instead, with the error it printed."""
    if cause is None or "pplc.inference.distributed" not in sys.modules:
        return
    from pplc.inference import distributed
    if distributed.peer_gone(cause):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_USER_ERROR)


def _internal(exc: BaseException) -> None:
    from pplc.errors import REPORT

    what = exc.detail if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
    print(f"internal error: {what}\n{REPORT} (Set PPLC_TRACEBACK=1 for details.)",
          file=sys.stderr)
    if os.environ.get("PPLC_TRACEBACK"):
        import traceback
        traceback.print_exception(exc)


def entry_point() -> None:
    from pplc import interrupts

    interrupts.install()   # Ctrl-C and SIGTERM: one line, status 130/143 (pplc.interrupts)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
