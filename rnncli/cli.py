"""The command line: one short function per verb, options -> one workflow call -> render.

No math and no file formats here; heavy modules are imported inside the commands so that
`rnncli --help` stays instant.
"""

import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rnncli import __version__
from rnncli.console import err, set_quiet
from rnncli.errors import EXIT_INTERRUPTED, RnncliError, UsageError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Recurrent neural networks (RNN, GRU, LSTM) from scratch in NumPy.\n\n"
    "  rnncli tokenize corpus.txt\n"
    "  rnncli train --cell lstm\n"
    "  rnncli sample --temp 0.8",
)

_debug = False


class Format(enum.StrEnum):
    text = "text"
    tsv = "tsv"
    conll = "conll"


class Level(enum.StrEnum):
    char = "char"
    word = "word"


def _version(value: bool):
    if value:
        print(f"rnncli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
):
    global _debug
    _debug = debug


# ---------------------------------------------------------------- tokenize


@app.command()
def tokenize(
    inputs: Annotated[list[str], typer.Argument(help="Input files; - reads standard input.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The encoded data set.")] = Path("tokens.npz"),
    format: Annotated[Format | None, typer.Option("--format", "-f",
                                                  help="Input format (detected when omitted).")] = None,
    level: Annotated[Level | None, typer.Option(help="Token level: char (text default) or word.")] = None,
    lower: Annotated[bool, typer.Option("--lower", help="Lower-case everything.")] = False,
    max_size: Annotated[int | None, typer.Option(help="Keep the N most common tokens.")] = None,
    min_freq: Annotated[int, typer.Option(help="Drop tokens seen fewer times.")] = 1,
    valid_frac: Annotated[float, typer.Option(help="Share held out for validation.")] = 0.05,
    valid: Annotated[str | None, typer.Option("--valid", help="Validation file instead.")] = None,
    vocab: Annotated[str | None, typer.Option("--vocab", help="Reuse the vocabulary of a tokens.npz, "
                                                              "model.npz or vocab.json.")] = None,
    vocab_out: Annotated[Path | None, typer.Option(help="Also write the vocabulary as JSON.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Build the vocabulary and encode a corpus into tokens.npz.

    \b
      rnncli tokenize corpus.txt
      rnncli tokenize --level word --max-size 10000 train.txt --valid valid.txt
      rnncli tokenize reviews.tsv -o sst.npz --json
      cat corpus.txt | rnncli tokenize -
    """
    from rnncli.workflows import run_tokenize

    set_quiet(quiet)
    run_tokenize(inputs, out, fmt=format.value if format else None, level=level.value if level else None,
                 lower=lower, max_size=max_size, min_freq=min_freq, valid_frac=valid_frac, valid=valid,
                 vocab=vocab, vocab_out=vocab_out, seed=seed, force=force, json_out=json_out)


def main():
    """Entry point: run the app, turning errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except RnncliError as e:
        if _debug:
            raise
        err.print(f"rnncli: error: {e}", markup=False, highlight=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("rnncli: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; silence the flush at exit too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("rnncli: aborted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:  # click's usage errors and anything unexpected
        import click

        if isinstance(e, click.exceptions.NoArgsIsHelpError):
            sys.exit(0)
        if isinstance(e, click.ClickException):
            if _debug:
                raise
            err.print(f"rnncli: error: {e.format_message()}", markup=False)
            sys.exit(2 if isinstance(e, click.UsageError) else 1)
        if _debug:
            raise
        err.print(f"rnncli: error: unexpected {type(e).__name__}: {e} (run with --debug for the traceback)",
                  markup=False)
        sys.exit(1)


__all__ = ["app", "main", "UsageError"]
