"""The command line: one short function per verb: options -> one command call (commands/)
-> render (render.py). No math and no file formats here; heavy modules are imported inside
the commands so that `rnncli --help` stays instant.
"""

import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rnncli import __version__
from rnncli.cli_config import choices_of, config_option, given_options, with_config_options
from rnncli.cli_config import finite as _finite
from rnncli.console import set_quiet
from rnncli.errors import EXIT_INTERRUPTED, RnncliError, UsageError, mask_credentials

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    # \b keeps Click from re-wrapping the example lines into one paragraph
    help="Recurrent neural networks (RNN, GRU, LSTM) from scratch in NumPy.\n\n"
    "\b\n"
    "  rnncli tokenize corpus.txt\n"
    "  rnncli train --cell lstm\n"
    "  rnncli sample --temp 0.8",
)

_debug = False


class GradTask(enum.StrEnum):
    lm = "lm"
    clm = "clm"
    classify = "classify"
    tag = "tag"
    seq2seq = "seq2seq"
    caption = "caption"


class TooLong(enum.StrEnum):
    skip = "skip"
    cut = "cut"


class InputFormat(enum.StrEnum):
    text = "text"
    tsv = "tsv"
    conll = "conll"
    pairs = "pairs"
    jsonl = "jsonl"


class Level(enum.StrEnum):
    char = "char"
    word = "word"


def _given(ctx):
    """The options the user gave this command (on the command line or through the environment), as
    flags (--proba): what tasks/options.py checks against the model's task."""
    def typed(name):  # by the source's name: Typer may ship its own copy of click and its enum
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return [next((o for o in p.opts if o.startswith("--")), p.opts[0]) for p in ctx.command.params
            if p.opts and p.opts[0].startswith("-") and typed(p.name)]


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
    from rnncli.memory import keep_freed_memory

    keep_freed_memory()  # every command: large arrays freed and allocated again reuse their pages


# ---------------------------------------------------------------- tokenize


@app.command()
def tokenize(
    inputs: Annotated[list[str], typer.Argument(help="Input files; - reads standard input.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The encoded data set.",
                                      readable=False)] = Path("tokens.npz"),
    format: Annotated[InputFormat | None, typer.Option(
        "--format", "-f", help="Input format (detected when omitted; *.jsonl and lines of JSON objects "
                               "are jsonl).")] = None,
    level: Annotated[Level | None, typer.Option(
        help="Token level: char (text default) or word; for pairs, the source side's.")] = None,
    target_level: Annotated[Level | None, typer.Option(
        help="pairs: the target side's token level. [default: as --level]")] = None,
    max_target_ratio: Annotated[float | None, typer.Option(
        help="pairs: a decoder writes at most floor(R x source length) + 10 tokens; longer targets are "
             "refused. [default: 2]", callback=_finite)] = None,
    lower: Annotated[bool, typer.Option(
        "--lower", help="Lower-case the text (CoNLL: the words; character features keep the case).")] = False,
    max_size: Annotated[int | None, typer.Option(help="Keep the N most common tokens.")] = None,
    min_freq: Annotated[int, typer.Option(help="Drop tokens seen fewer times.")] = 1,
    valid_frac: Annotated[float | None, typer.Option(
        help="Share held out for validation. [default: 0.05; 0 with --vocab]", callback=_finite)] = None,
    valid: Annotated[str | None, typer.Option("--valid", help="Validation file instead.")] = None,
    vocab: Annotated[str | None, typer.Option(
        "--vocab", help="Reuse the vocabulary of a tokens.npz, model.npz or vocab.json (to encode for it).")] = None,
    vocab_out: Annotated[Path | None, typer.Option(help="Also write the vocabulary as JSON.", readable=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 0,
    window_ms: Annotated[float | None, typer.Option(help="audio: log-mel window length. [default: 25]",
                                                    callback=_finite)] = None,
    hop_ms: Annotated[float | None, typer.Option(help="audio: step between frames. [default: 10]",
                                                 callback=_finite)] = None,
    mel_bands: Annotated[int | None, typer.Option(help="audio: mel bands per frame. [default: 40]")] = None,
    deltas: Annotated[bool | None, typer.Option("--deltas/--no-deltas",
                                                help="audio: add each band's slope over ±2 frames. [default: off]")
                      ] = None,
    top_db: Annotated[float | None, typer.Option(
        help="audio: floor the log-mel this many dB under the recording's loudest value. [default: 60]",
        callback=_finite)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Build the vocabulary and encode a corpus into tokens.npz.

    \b
      rnncli tokenize corpus.txt
      rnncli tokenize --level word --max-size 10000 train.txt --valid valid.txt
      rnncli tokenize reviews.tsv -o sst.npz --json
      rnncli tokenize test.tsv --vocab sst.npz -o test.npz   # encode a test set for a model
      rnncli tokenize dates.tsv --level char -o dates.npz    # source<TAB>target pairs
      cat corpus.txt | rnncli tokenize -
    """
    from rnncli import console, render
    from rnncli.commands.tokenize import tokenize_files

    set_quiet(quiet)
    with render.TokenizeProgress(inputs) as progress:
        audio = dict(window_ms=window_ms, hop_ms=hop_ms, bands=mel_bands, deltas=deltas, top_db=top_db)
        stats = tokenize_files(inputs, out, fmt=_v(format), level=_v(level), target_level=_v(target_level),
                               max_target_ratio=max_target_ratio, lower=lower, max_size=max_size, min_freq=min_freq,
                               valid_frac=valid_frac, valid=valid, vocab=vocab, vocab_out=vocab_out, seed=seed,
                               force=force, progress=progress, audio={k: v for k, v in audio.items() if v is not None})
    if json_out:
        console.write_json(stats)
    render.tokenize_report(stats)


# ---------------------------------------------------------------- train


def _v(x):
    return x.value if isinstance(x, enum.Enum) else x


@app.command()
@with_config_options  # and every TrainConfig field as an option (cli_config.py)
def train(
    data: Annotated[str, typer.Option("--data", "-d", help="tokens.npz, or a raw file to tokenize.")] = "tokens.npz",
    out: Annotated[Path, typer.Option("--out", "-o", help="The checkpoint to write.",
                                      readable=False)] = Path("model.npz"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of options.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this checkpoint's run.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    **options,
):
    """Train an RNN, GRU or LSTM on a tokenized data set.

    \b
      rnncli train --cell lstm
      rnncli train --config configs/char-lm.yaml --max-time 10m
      rnncli train --resume model.npz
      rnncli train --config configs/char-lm.yaml --workers 2    # every core (pip install 'rnncli[mpi]')
    """
    import dataclasses

    from rnncli import console, render
    from rnncli.commands.train import prepare_workers, workers_to_start

    set_quiet(quiet)
    overrides = given_options(options)
    if n := workers_to_start(config, {**overrides, "resume": resume}):
        from rnncli.parallel import launch

        raise typer.Exit(launch(sys.argv[1:], n, resume or out))
    job, notes = prepare_workers(data, out, config, overrides, resume=resume, force=force)
    if job.world is not None and not job.world.lead:
        set_quiet(True)  # the lead worker speaks for all
        json_out = False
    for note in notes:
        console.log(f"[dim]{note}[/dim]")
    render.config_table(dataclasses.asdict(job.cfg))
    if job.pretrained is not None:
        render.coverage_table(job.pretrained.report)
    with render.TrainProgress(job.ds.meta["level"]) as progress:
        summary = job.run(progress)
    if json_out:
        console.write_json(summary)
    render.train_summary(summary)


# ---------------------------------------------------------------- sample, inspect


@app.command()
def sample(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option("--model", "-m", help="The checkpoint.")] = Path("model.npz"),
    temp: Annotated[float, typer.Option("--temp", "-t", help="Temperature; 0 is greedy.", callback=_finite)] = 1.0,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest tokens.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling: smallest set with mass p.",
                                                callback=_finite)] = None,
    prime: Annotated[str | None, typer.Option(help="Text to start from; - reads one per line.")] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", help="A conditional model's label (repeatable; -n samples each); '*' draws labels as "
                        "often as training saw them.")] = None,
    guidance: Annotated[float | None, typer.Option(
        help="A conditional model trained with --label-dropout: how strongly to follow --label (1: as trained; "
             "above 1: more; 0: ignore it). [default: 2 for such a model, else 1]", callback=_finite,
        show_default=False)] = None,
    max_len: Annotated[int, typer.Option(help="Stop after this many tokens.")] = 1000,
    n: Annotated[int, typer.Option("-n", help="How many samples (per label).")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible samples.")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the likeliest token.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help='One JSON object per sample on stdout: {"label", "prime", "text"}.')] = False,
):
    """Generate text from a language model until it emits <eos>.

    Plain output streams each sample as it is written; a character-level model's samples (which
    span lines) are separated by a blank line. With --prime -, each sample is one line.

    \b
      rnncli sample --temp 0.8
      rnncli sample --prime "ROMEO:" --top-k 5 -n 3 --seed 1
      printf 'KING\\nQUEEN\\n' | rnncli sample --prime - --max-len 100
      rnncli sample -m tunes_model.npz --label waltz -n 3 --temp 0.8 > waltzes.abc
      rnncli sample -m tunes_model.npz --label 'slip jig' --guidance 1.5
    """
    from rnncli import render
    from rnncli.commands.sample import open_sampler, samples

    if n < 1:
        raise UsageError(f"-n must be at least 1, not {n}")
    temperature = 0.0 if greedy else temp
    net, meta, guidance = open_sampler(model, temperature, top_k, top_p, max_len, guidance, _given(ctx))
    one_line = prime == "-"
    primes = (line.rstrip("\n") for line in sys.stdin) if one_line else [prime or ""]
    drawn = samples(net, meta, model, primes, label, n, seed, one_line, temperature=temperature, top_k=top_k,
                    top_p=top_p, max_len=max_len, guidance=guidance)
    render.write_samples(drawn, json_out, one_line, apart=meta["data"]["level"] == "char" and not one_line)


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="The checkpoint.")] = Path("model.npz"),
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON on stdout.")] = False,
):
    """Show a checkpoint: architecture, parameter counts, vocabulary, configuration, history."""
    from rnncli import console, render
    from rnncli.commands.inspect import inspect_model

    info = inspect_model(model)
    if json_out:
        console.write_json(info)
        return
    render.inspect_report(info)


@app.command()
def gradcheck(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Check this trained model (else a fresh one).")
                     ] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="With -m: its first examples from this "
                                             "tokens.npz (else a random batch of its vocabulary).")] = None,
    task: Annotated[GradTask, typer.Option(help="The fresh model's task.")] = "lm",
    cell: config_option("cell") = None,
    layers: config_option("layers") = None,
    bidirectional: config_option("bidirectional") = None,
    activation: config_option("activation") = None,
    reset_after: config_option("reset_after") = None,
    char_features: config_option("char_features") = None,
    char_encoder: config_option("char_encoder") = None,
    crf: config_option("crf") = None,
    pool: config_option("pool") = None,
    attention: config_option("attention") = None,
    entries: Annotated[int, typer.Option(help="Entries checked per parameter array (sampled).", min=1)] = 30,
    tol: Annotated[float, typer.Option(help="The largest relative error that passes (a correct backward gives "
                                       "1e-7 or less on a fresh model; a trained one's small gradients lose a "
                                       "few digits).", callback=_finite)] = 1e-5,
    seed: Annotated[int, typer.Option(help="Seed of the batch, the sampled entries and dropout.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the errors as JSON on stdout.")] = False,
):
    """Check the backward pass against numerical derivatives (float64 central differences).

    \b
      rnncli gradcheck --cell gru --no-reset-after --layers 2
      rnncli gradcheck --task tag --cell lstm --char-features --crf
      rnncli gradcheck -m model.npz -d tokens.npz
    """
    from rnncli import console, render
    from rnncli.commands.gradcheck import run_gradcheck

    options = {"task": _v(task), "cell": _v(cell), "layers": layers, "bidirectional": bidirectional,
               "activation": _v(activation), "reset_after": reset_after, "char_features": char_features,
               "char_encoder": _v(char_encoder), "crf": crf, "pool": _v(pool), "attention": _v(attention)}
    if model is not None and any(v is not None for k, v in options.items() if k != "task"):
        raise UsageError("-m checks the model as it was trained; leave out the architecture options")
    what, rows = run_gradcheck(model, data, options, entries=entries, seed=seed)
    failed = [name for name, _, err in rows if not err <= tol]
    if json_out:
        console.write_json({"what": what, "tolerance": tol, "passed": not failed,
                            "errors": {name: err for name, _, err in rows}})
    render.gradcheck_table(what, rows, tol)
    if failed:
        raise RnncliError(f"{len(failed)} of {len(rows)} parameter arrays fail the check (relative error above "
                          f"{tol:g}): {', '.join(failed[:5])}")


@app.command()
def gradients(
    data: Annotated[str, typer.Option("--data", "-d", help="tokens.npz to back-propagate on.")] = "tokens.npz",
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A trained language model (else fresh models "
                                               "of each --cell).")] = None,
    cell: Annotated[list[choices_of("cell")] | None, typer.Option(
        help="Fresh cells to compare [default: rnn, gru, lstm].")
                    ] = None,
    steps: Annotated[int, typer.Option(help="Tokens read before the predicted one (the longest distance).",
                                       min=2)] = 100,
    batch: Annotated[int, typer.Option(help="Windows of the data averaged over.", min=1)] = 16,
    hidden: Annotated[int, typer.Option(help="Fresh models: hidden size.", min=1)] = 128,
    embed: Annotated[int, typer.Option(help="Fresh models: embedding size.", min=1)] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the windows and of the fresh models.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write an HTML report with the chart.",
                                             readable=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON on stdout.")] = False,
):
    """The vanishing-gradient report: how much the loss at the last step depends on the state d steps back.

    \b
      rnncli gradients -d tokens.npz                      # fresh rnn, gru and lstm side by side
      rnncli gradients -d tokens.npz -m model.npz -o gradients.html
    """
    from rnncli import console, render
    from rnncli.commands.gradients import gradient_report

    if model is not None and cell:
        raise UsageError("--cell builds fresh models; -m reads a trained one: give one of them")
    report = gradient_report(data, model, [_v(c) for c in cell] if cell else ("rnn", "gru", "lstm"), steps=steps,
                             batch=batch, hidden=hidden, embed=embed, seed=seed)
    if json_out:
        console.write_json(report)
    render.gradient_tables(report)
    if out is not None:
        from rnncli.npzfile import write_file

        page = render.gradient_page(report)
        write_file(out, lambda f: f.write(page.encode("utf-8")))
        console.log(f"wrote {out}")


@app.command()
def show(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The text to read; - reads standard input.")] = None,
    model: Annotated[Path, typer.Option("--model", "-m", help="The checkpoint.")] = Path("model.npz"),
    unit: Annotated[int | None, typer.Option(help="Language model: colour by this hidden unit of the top layer.")
                    ] = None,
    gate: Annotated[str | None, typer.Option(help="Language model: colour by this gate's mean over the units "
                                             "(LSTM i, f, o; GRU r, u) or, with --unit, that unit's gate.")] = None,
    top: Annotated[bool, typer.Option("--top", help="Language model: the units that best track the position "
                                      "in the line, quotes and brackets.")] = False,
    label: Annotated[str | None, typer.Option(help="Conditional language model: read the text as this label's.")
                     ] = None,
    curves: Annotated[bool, typer.Option("--curves", help="Draw the training curves instead (needs -o).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the picture as an HTML page "
                                             "(--curves: .html or .svg).", readable=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON on stdout.")] = False,
):
    """How a model reads a text: units and gates (LM), tag probabilities, each token's share of a
    classification, attention (encoder-decoder); or the training curves.

    \b
      rnncli show -m model.npz "To be, or not to be" --unit 17
      rnncli show -m model.npz --top - < speech.txt
      rnncli show -m ner_model.npz "Anna moved to Paris" -o tags.html
      rnncli show -m model.npz --curves -o curves.html
    """
    from rnncli import render
    from rnncli.commands.show import run_show

    render.show_picture(run_show(text, model, unit, gate, top, curves, out, label, _given(ctx)), out, json_out)


@app.command()
def tune(
    data: Annotated[str, typer.Option("--data", "-d", help="tokens.npz to train every trial on.")] = "tokens.npz",
    config: Annotated[Path, typer.Option("--config", "-c", help="The base config each trial changes.")
                      ] = Path("config.yaml"),
    space: Annotated[Path, typer.Option("--space", help="YAML search space: key: [choices] or "
                                        "{uniform|log_uniform|int: [low, high]}.")] = Path("space.yaml"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the study, the trials and the results.",
                                      readable=False)] = Path("tuned"),
    budget: Annotated[str | None, typer.Option(help="Wall time for the study, e.g. 1h (trials in flight finish "
                                               "within it).")] = None,
    trials: Annotated[int | None, typer.Option(help="Stop after this many trials in the study (all workers).",
                                               min=1)] = None,
    jobs: Annotated[int, typer.Option(help="Trials at a time on this machine (threads per trial: cores / jobs).",
                                      min=1)] = 1,
    workers: Annotated[int | None, typer.Option(help="Train each trial on this many MPI workers (rnncli[mpi]) "
                                                "[default: the config's workers, else 1].", min=1)] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna RDB URL to share with other machines [default: an "
                                                "SQLite file in --out].")] = None,
    study: Annotated[str, typer.Option(help="The study's name in the storage.")] = "rnncli",
    pruner: Annotated[str, typer.Option(help="median, halving or none.")] = "median",
    seeds: Annotated[int, typer.Option(help="Then train the best config with this many seeds (an ensemble), "
                                       "after --budget: each member has the config's own max_time.", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
):
    """Search hyperparameters (Optuna): trials in parallel, bad ones pruned early, shared across machines.

    \b
      rnncli tune -d ner.npz --config configs/ner.yaml --space configs/ner.space.yaml --budget 1h -o ner_tuned/
      rnncli tune ... --jobs 2 --seeds 4        # two trials at a time; then a 4-seed ensemble
      rnncli tune ... --workers 2               # one trial at a time, trained on two workers
      rnncli tune ... --storage postgresql://user@db/rnncli --study ner   # the same command on each machine
    """
    from rnncli import console
    from rnncli.commands.tune import Tuner, check_tune_options, run_study

    seconds = check_tune_options(budget, trials, pruner, config, space)
    tuner = Tuner(data, config, space, out, storage=storage, study=study, jobs=jobs, seed=seed, pruner=pruner,
                  workers=workers)
    summary = run_study(tuner, seconds, trials, f"study {study}", seeds)
    if json_out:
        console.write_json(summary)


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="The checkpoint.")] = Path("model.npz"),
    out: Annotated[Path, typer.Option("--out", "-o", help="model.onnx (ONNX, for onnxruntime and other "
                                      "runtimes) or model.safetensors (a PyTorch state dict).", readable=False)
                   ] = Path("model.onnx"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was written as JSON on stdout.")] = False,
):
    """Write a model for another runtime: ONNX, or PyTorch's names in a safetensors file.

    \b
      rnncli export -m model.npz -o model.onnx
      rnncli export -m model.npz -o model.safetensors   # nn.Embedding / nn.LSTM / nn.Linear names
    """
    from rnncli import console
    from rnncli.commands.export import export_model

    summary = export_model(model, out, force)
    if json_out:
        console.write_json(summary)
    else:
        console.log(f"wrote {summary['out']} ({summary['format']}, {summary['bytes']:,} bytes)")


@app.command(name="import")
def import_(
    source: Annotated[Path, typer.Argument(help="A .safetensors state dict (from export, trained elsewhere).")],
    like: Annotated[Path, typer.Option("--like", help="The rnncli checkpoint whose configuration and "
                                       "vocabularies the weights belong to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The checkpoint to write.", readable=False)
                   ] = Path("imported.npz"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was written as JSON on stdout.")] = False,
):
    """Bring weights trained elsewhere back: a checkpoint for eval, predict and sample.

    \b
      rnncli import model.safetensors --like model.npz -o from_torch.npz
    """
    from rnncli import console
    from rnncli.commands.export import import_model

    summary = import_model(source, like, out, force)
    if json_out:
        console.write_json(summary)
    else:
        console.log(f"wrote {summary['out']}: {summary['tensors']} tensors from {summary['from']}")


# ---------------------------------------------------------------- eval, predict


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Text, TSV or CoNLL file, encoded with the model's vocabulary "
                                             "(- reads standard input); or a tokens.npz made with it, whose "
                                             "validation split is scored (all of it if it has none).")],
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="The checkpoint [default: model.npz]; repeat it to score an ensemble.")] = None,
    beam: Annotated[int | None, typer.Option(
        help="seq2seq: decode with a beam of this width (0: greedy) [default: the model's own, else greedy].",
        show_default=False)] = None,
    length_penalty: Annotated[float | None, typer.Option(
        help="seq2seq: rank beam hypotheses by log-probability / length^alpha [default: the model's own, else 1 "
             "for a beam: the mean per token].", callback=_finite, show_default=False)] = None,
    max_source_len: Annotated[int | None, typer.Option(
        help="seq2seq: the longest source accepted, in tokens [default: twice the longest training source].")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scores as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Score a model: loss/perplexity (lm), accuracy and F1 (classify), entity F1 (tag), BLEU,
    chrF and exact match (seq2seq).

    \b
      rnncli eval test.txt
      rnncli eval --model ner.npz test.conll --json
      rnncli eval -m ner1.npz -m ner2.npz test.conll      # an ensemble of two taggers
      rnncli eval -m mt.npz test.tsv --beam 5             # BLEU, chrF, exact match
    """
    from rnncli import console, render
    from rnncli.commands.evaluate import evaluate_models

    set_quiet(quiet)
    paths = model or [Path("model.npz")]
    if beam is not None and beam < 0:
        raise UsageError(f"--beam must be 0 (greedy) or more, not {beam}")
    metrics = evaluate_models(paths, data, beam=beam, max_source=max_source_len, length_penalty=length_penalty,
                              given=_given(ctx))
    if json_out:
        console.write_json(metrics)
    render.eval_report(metrics)


@app.command()
def predict(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Input file; - (the default) reads standard input.")] = "-",
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="The checkpoint [default: model.npz]; repeat it to use an ensemble.")] = None,
    format: Annotated[InputFormat | None, typer.Option(
        "--format", "-f", help="conll: read CoNLL sentences (tagging); jsonl: JSON lines, reading each object's "
        "text (classify), tokens (tag) or source (seq2seq) field [default: jsonl for a .jsonl file].")] = None,
    proba: Annotated[bool, typer.Option(
        "--proba", help="Add the label's probability (tagging: each tag's, given the sentence).")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="One JSON object per input line (tagging: per sentence).")] = False,
    beam: Annotated[int | None, typer.Option(
        help="seq2seq: beam width (0: greedy) [default: the model's own, else greedy].", show_default=False)] = None,
    length_penalty: Annotated[float | None, typer.Option(
        help="seq2seq: rank beam hypotheses by log-probability / length^alpha [default: the model's own, else 1 "
             "for a beam: the mean per token].", callback=_finite, show_default=False)] = None,
    n_best: Annotated[int, typer.Option(help="seq2seq: hypotheses per line under --json.")] = 1,
    greedy: Annotated[bool, typer.Option("--greedy", help="seq2seq: the likeliest token each step.")] = False,
    temp: Annotated[float, typer.Option("--temp", help="seq2seq: sample with this temperature (0: greedy).",
                                        callback=_finite)] = 0.0,
    top_k: Annotated[int | None, typer.Option(help="seq2seq sampling: among the k likeliest tokens.")] = None,
    top_p: Annotated[float | None, typer.Option(help="seq2seq sampling: nucleus of mass p.", callback=_finite)] = None,
    seed: Annotated[int | None, typer.Option(help="seq2seq sampling: seed.")] = None,
    max_source_len: Annotated[int | None, typer.Option(
        help="seq2seq: the longest source line read, in tokens [default: twice the longest training source].")
    ] = None,
    too_long: Annotated[TooLong, typer.Option(
        help="seq2seq: a longer line is skipped (a warning and an empty output line) or cut to the limit.")
    ] = TooLong.skip,
):
    """Label new input, a line in and a line out: a class per line, or token<TAB>tag per word.

    \b
      echo "a warm and funny film" | rnncli predict --model sentiment.npz --proba
      rnncli predict --model ner.npz sentences.txt > tagged.conll
      rnncli predict -m ner1.npz -m ner2.npz sentences.txt   # an ensemble of two taggers
      rnncli predict -m ner.npz --proba sentences.txt        # token<TAB>tag<TAB>p(tag | sentence)
      echo "i am cold ." | rnncli predict -m mt.npz --beam 5  # one translation per line
    """
    from rnncli import render
    from rnncli.commands.predict import open_predictor, predicted_records

    predictor, meta = open_predictor(model or [Path("model.npz")], _given(ctx))
    decoding = dict(beam=beam, length_penalty=length_penalty, n_best=n_best, temperature=0.0 if greedy else temp,
                    sampling=greedy or temp > 0, top_k=top_k, top_p=top_p, seed=seed, max_source=max_source_len,
                    cut=too_long == TooLong.cut)
    jsonl = format == InputFormat.jsonl or (format is None and source.endswith(".jsonl"))
    stream = predicted_records(predictor, meta, source, jsonl=jsonl, conll=format == InputFormat.conll,
                               proba=proba or json_out, decoding=decoding)
    for records in stream:
        sys.stdout.write("".join(render.predicted_text(r, meta, predictor, proba, json_out) for r in records))
        sys.stdout.flush()


@app.command()
def serve(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="A checkpoint to serve, named by its file's stem, or name=path (repeatable).")],
    host: Annotated[str, typer.Option(help="Address to listen on; other than loopback, set --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one, printed at start).")] = 8000,
    token: Annotated[str | None, typer.Option(
        envvar="RNNCLI_TOKEN", help="Require Authorization: Bearer TOKEN on /v1/ (or set RNNCLI_TOKEN).")] = None,
    max_batch: Annotated[int, typer.Option(help="Inputs answered in one batch.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(
        help="How long a request waits for others to share its batch.", callback=_finite)] = 2.0,
    max_body: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 4 * 1024 * 1024,
    max_inputs: Annotated[int, typer.Option(help="Inputs in one predict request.")] = 256,
    max_input_tokens: Annotated[int, typer.Option(help="Tokens (or frames) of one input.")] = 2000,
    max_seconds: Annotated[float, typer.Option(help="Seconds of one audio input.", callback=_finite)] = 60.0,
    max_tokens: Annotated[int, typer.Option(help="Tokens one generated sample may have.")] = 2000,
    max_n: Annotated[int, typer.Option(help="Samples in one generate request.")] = 16,
    max_beam: Annotated[int, typer.Option(help="Widest beam a request may ask for.")] = 16,
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's headers.", callback=_finite)] = 10.0,
    body_timeout: Annotated[float, typer.Option(
        help="Seconds a client has to send a request's body.", callback=_finite)] = 30.0,
):
    """Answer HTTP requests with the models, loaded once: a page at /, the API at /docs.

    \b
      rnncli serve -m sentiment.npz -m shakespeare=lm.npz
      curl -s localhost:8000/v1/predict -d '{"model": "sentiment", "inputs": ["a warm film"]}'
    """
    from rnncli.commands.serve import serve as run_server
    from rnncli.serve.limits import Limits

    limits = Limits(max_body=max_body, max_inputs=max_inputs, max_input_tokens=max_input_tokens,
                    max_seconds=max_seconds, max_tokens=max_tokens, max_n=max_n, max_beam=max_beam,
                    header_timeout=header_timeout, body_timeout=body_timeout, max_batch=max_batch,
                    max_wait=max_wait_ms / 1000)
    run_server(model, host, port, token, limits)


def _say(message):
    """One plain line on stderr: never wrapped, never styled, whatever the terminal; a password
    in a URL the message quotes (tune --storage) is masked."""
    print(mask_credentials(message), file=sys.stderr, flush=True)


def _mpi_world():
    """The MPI world this process joined (train on several workers), else None."""
    if "rnncli.parallel" not in sys.modules:  # loaded by the commands that may train on workers; not loaded
        return None  # here, where an import could fail itself (out of memory)
    from rnncli.parallel import joined

    return joined()


def _end_workers(code, everywhere=False):
    """Exit with `code`. On one of several MPI workers: an error every worker met at the same step
    is said by the lead alone; one this worker met alone ends the others too (they would wait for
    it in the next sum)."""
    world = _mpi_world()
    if world is not None and not everywhere:
        world.abort(code)
    sys.exit(code)


def _quiet_worker(everywhere):
    world = _mpi_world()
    return everywhere and world is not None and not world.lead


def main():
    """Entry point: run the app, turning errors into one line and an exit code."""
    try:
        code = app(standalone_mode=False)  # an int where a command ended with typer.Exit(code)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RnncliError as e:
        if _debug:
            raise
        everywhere = getattr(e, "everywhere", False)
        if not _quiet_worker(everywhere):
            _say(f"rnncli: error: {e}")
        _end_workers(e.exit_code, everywhere)
    except KeyboardInterrupt:
        _say("rnncli: interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except MemoryError as e:
        if _debug:
            raise
        _say(f"rnncli: error: out of memory{f' ({e})' if str(e) else ''}: a size option or an input is larger "
             "than this machine can hold")
        _end_workers(1)
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
        _end_workers(1)


__all__ = ["app", "main", "UsageError"]
