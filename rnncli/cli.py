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
from rnncli.config import CHOICES
from rnncli.console import set_quiet
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
    lower: Annotated[bool, typer.Option(
        "--lower", help="Lower-case the text (CoNLL: the words; character features keep the case).")] = False,
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


def _choices(name, key):
    """A StrEnum of the values config.py allows, so that --help lists them and they live in one place."""
    return enum.StrEnum(name, {v: v for v in CHOICES[key] if v is not None})


Cell = _choices("Cell", "cell")
Optim = _choices("Optim", "optimizer")
Task = _choices("Task", "task")
Activation = _choices("Activation", "activation")
Pool = _choices("Pool", "pool")
CharEncoder = _choices("CharEncoder", "char_encoder")
DType = _choices("DType", "dtype")


def _v(x):
    return x.value if isinstance(x, enum.Enum) else x


@app.command()
def train(
    data: Annotated[str, typer.Option("--data", "-d", help="tokens.npz, or a raw file to tokenize.")] = "tokens.npz",
    out: Annotated[Path, typer.Option("--out", "-o", help="The checkpoint to write.")] = Path("model.npz"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of options.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this checkpoint's run.")] = None,
    task: Annotated[Task | None, typer.Option(help="lm, classify or tag (from the data when omitted).")] = None,
    cell: Annotated[Cell | None, typer.Option(help="Recurrent cell. [default: lstm]")] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked layers. [default: 2]")] = None,
    hidden: Annotated[int | None, typer.Option(help="Hidden units per layer. [default: 256]")] = None,
    embed: Annotated[int | None, typer.Option(help="Embedding size. [default: 64]")] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--no-bidirectional",
                                                       help="[default: on for classify/tag]")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout between layers. [default: 0.1]")] = None,
    activation: Annotated[Activation | None, typer.Option(help="rnn cell only. [default: tanh]")] = None,
    reset_after: Annotated[bool | None, typer.Option("--reset-after/--no-reset-after",
                                                     help="gru: PyTorch form or the lecture's.")] = None,
    char_features: Annotated[bool | None, typer.Option("--char-features/--no-char-features",
                                                       help="tag: character RNN per word.")] = None,
    char_encoder: Annotated[CharEncoder | None, typer.Option(
        help="tag: char features by a BiRNN or a CNN. [default: rnn]")] = None,
    char_embed: Annotated[int | None, typer.Option(help="tag: character embedding size. [default: 24]")] = None,
    char_hidden: Annotated[int | None, typer.Option(
        help="tag: char RNN units per direction (CNN: half its filters). [default: 32]")] = None,
    crf: Annotated[bool | None, typer.Option("--crf/--no-crf", help="tag: CRF output layer over the tags.")] = None,
    pool: Annotated[Pool | None, typer.Option(help="classify: last, mean or max.")] = None,
    word_dropout: Annotated[float | None, typer.Option(help="classify/tag: share of words read as <unk>.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Truncated BPTT length. [default: 64]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per batch. [default: 32]")] = None,
    epochs: Annotated[int | None, typer.Option(help="[default: 10]")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    max_time: Annotated[str | None, typer.Option(help="Wall-clock budget, e.g. 90s, 10m, 1h.")] = None,
    optimizer: Annotated[Optim | None, typer.Option(help="[default: adam]")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate. [default: 0.002]")] = None,
    lr_decay: Annotated[float | None, typer.Option(help="Factor per epoch. [default: 1]")] = None,
    clip: Annotated[float | None, typer.Option(help="Global gradient-norm clip. [default: 5]")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="[default: 0]")] = None,
    average: Annotated[float | None, typer.Option(
        help="Evaluate and keep a moving average of the weights with this decay, e.g. 0.999. [default: off]")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between validations. [default: 200]")] = None,
    patience: Annotated[int | None, typer.Option(help="Early stop after N x eval-every steps without gain.")] = None,
    seed: Annotated[int | None, typer.Option(help="[default: 0]")] = None,
    dtype: Annotated[DType | None, typer.Option(help="[default: float32]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Train an RNN, GRU or LSTM on a tokenized data set.

    \b
      rnncli train --cell lstm
      rnncli train --config configs/char-lm.yaml --max-time 10m
      rnncli train --resume model.npz
    """
    from rnncli.workflows import run_train

    set_quiet(quiet)
    overrides = {k: _v(v) for k, v in dict(
        task=task, cell=cell, layers=layers, hidden=hidden, embed=embed, bidirectional=bidirectional,
        dropout=dropout, activation=activation, reset_after=reset_after, char_features=char_features,
        char_encoder=char_encoder, char_embed=char_embed, char_hidden=char_hidden, crf=crf, pool=pool,
        word_dropout=word_dropout, seq_len=seq_len,
        batch_size=batch_size, epochs=epochs, max_steps=max_steps, max_time=max_time, optimizer=optimizer,
        lr=lr, lr_decay=lr_decay, clip=clip, weight_decay=weight_decay, average=average, eval_every=eval_every,
        patience=patience, seed=seed, dtype=dtype).items()}
    run_train(data, out, config, overrides, resume=resume, force=force, json_out=json_out)


@app.command()
def sample(
    model: Annotated[Path, typer.Option("--model", "-m", help="The checkpoint.")] = Path("model.npz"),
    temp: Annotated[float, typer.Option("--temp", "-t", help="Temperature; 0 is greedy.")] = 1.0,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest tokens.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling: smallest set with mass p.")] = None,
    prime: Annotated[str | None, typer.Option(help="Text to start from; - reads one per line.")] = None,
    max_len: Annotated[int, typer.Option(help="Stop after this many tokens.")] = 1000,
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible samples.")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the likeliest token.")] = False,
):
    """Generate text from a language model until it emits <eos>.

    \b
      rnncli sample --temp 0.8
      rnncli sample --prime "ROMEO:" --top-k 5 -n 3 --seed 1
      printf 'KING\nQUEEN\n' | rnncli sample --prime - --max-len 100
    """
    from rnncli.workflows import run_sample

    run_sample(model, prime, temp, top_k, top_p, max_len, n, seed, greedy)


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="The checkpoint.")] = Path("model.npz"),
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON on stdout.")] = False,
):
    """Show a checkpoint: architecture, parameter counts, vocabulary, configuration, history."""
    from rnncli.workflows import run_inspect

    run_inspect(model, json_out)


@app.command(name="eval")
def eval_(
    data: Annotated[str, typer.Argument(help="Text, TSV or CoNLL file, encoded with the model's vocabulary "
                                             "(- reads standard input); or a tokens.npz made with it, whose "
                                             "validation split is scored (its training split if it has none).")],
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="The checkpoint [default: model.npz]; repeat it to score an ensemble.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scores as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Score a model: loss/perplexity (lm), accuracy and F1 (classify), entity F1 (tag).

    \b
      rnncli eval test.txt
      rnncli eval --model ner.npz test.conll --json
      rnncli eval -m ner1.npz -m ner2.npz test.conll      # an ensemble of two taggers
    """
    from rnncli.workflows import run_eval

    set_quiet(quiet)
    run_eval(model or [Path("model.npz")], data, json_out)


@app.command()
def predict(
    source: Annotated[str, typer.Argument(help="Input file; - (the default) reads standard input.")] = "-",
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="The checkpoint [default: model.npz]; repeat it to use an ensemble.")] = None,
    format: Annotated[Format | None, typer.Option("--format", "-f",
                                                  help="conll: read CoNLL sentences (tagging).")] = None,
    proba: Annotated[bool, typer.Option(
        "--proba", help="Add the label's probability (tagging: each tag's, given the sentence).")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="One JSON object per input line (tagging: per sentence).")] = False,
):
    """Label new input, a line in and a line out: a class per line, or token<TAB>tag per word.

    \b
      echo "a warm and funny film" | rnncli predict --model sentiment.npz --proba
      rnncli predict --model ner.npz sentences.txt > tagged.conll
      rnncli predict -m ner1.npz -m ner2.npz sentences.txt   # an ensemble of two taggers
      rnncli predict -m ner.npz --proba sentences.txt        # token<TAB>tag<TAB>p(tag | sentence)
    """
    from rnncli.workflows import run_predict

    run_predict(model or [Path("model.npz")], source, format.value if format else None, proba, json_out)


def _say(message):
    """One plain line on stderr: never wrapped, never styled, whatever the terminal."""
    print(message, file=sys.stderr, flush=True)


def main():
    """Entry point: run the app, turning errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except RnncliError as e:
        if _debug:
            raise
        _say(f"rnncli: error: {e}")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _say("rnncli: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # the reader went away (`| head`): not an error; silence the flush at exit too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        _say("rnncli: aborted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:  # click's own errors (bad options) and anything unexpected
        # Typer ships click (or a vendored copy of it): recognise its exceptions by their classes' names
        names = {c.__name__ for c in type(e).__mro__}
        if "NoArgsIsHelpError" in names:
            print(e.format_message())
            sys.exit(0)
        if "ClickException" in names and not _debug:
            _say(f"rnncli: error: {e.format_message()}")
            sys.exit(2 if "UsageError" in names else 1)
        if _debug:
            raise
        _say(f"rnncli: error: unexpected {type(e).__name__}: {e} (run with --debug for the traceback)")
        sys.exit(1)


__all__ = ["app", "main", "UsageError"]
