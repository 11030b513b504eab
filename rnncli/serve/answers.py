"""What a request is answered with: the functions `predict` and `sample` call, fed from a request's
inputs instead of a file, and each answer written as the CLI's `--json` record (Task.prediction_text),
so that one document describes both and the tests can compare them line for line.

A request is checked whole before any work (prepare_*): a bad input is a Problem naming its field,
never an empty answer as on the command line, where one bad line must not stop a pipeline. What
survives the checks is a Job: the model, the options that must be equal for two requests to share a
batch (`key`), and the inputs, ready for the model.
"""

import base64
import binascii
import json
import os
import tempfile
import typing

import numpy as np

from rnncli.errors import RnncliError


class Problem(Exception):
    """A request that cannot be answered: HTTP status, and the field and reason it is refused for."""

    def __init__(self, field, message, status=422):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.status = field, status


class Job(typing.NamedTuple):
    """Checked work for one model: inputs of one request, and the options they are answered with.
    key: requests with equal keys may be answered in one batch (None: never batched: a seeded
    sampling decoder draws from one generator for all its inputs, as `predict --temp --seed` does)."""

    served: object
    key: tuple | None
    options: dict
    inputs: list  # each a list of tokens, or frames (T, D)
    sources: list  # what each answer's "source" says (an encoder-decoder's)


def model_named(served, name, kind):
    """The Served model a request names, or a Problem: 404 for an unknown name, 422 for a model of
    the other kind (a language model asked to predict, a classifier asked to generate)."""
    s = served.get(name)
    if s is None:
        raise Problem("model", f"no model named {name!r}; this server has: {', '.join(served)}", 404)
    if kind == "generate" and not s.task.generates:
        raise Problem("model", f"{name!r} is a {s.meta['task']} model; it does not generate text (POST /v1/predict)")
    if kind == "predict" and s.task.generates:
        raise Problem("model", f"{name!r} is a language model; it does not label input (POST /v1/generate)")
    return s


# ---------------------------------------------------------------- predict


def prepare_predict(s, body, limits):
    """A /v1/predict body (already of the right types: app.py) -> Job, or a Problem."""
    inputs = body["inputs"]
    if not inputs:
        raise Problem("inputs", "give at least one input")
    if len(inputs) > limits.max_inputs:
        raise Problem("inputs", f"{len(inputs):,} inputs; at most {limits.max_inputs:,} in one request")
    if s.reads_frames:
        arrays = [_frames(s, x, f"inputs[{k}]", limits) for k, x in enumerate(inputs)]
        if s.task.decodes:
            return _decoding_job(s, body, arrays, [f"inputs[{k}]" for k in range(len(inputs))], limits)
        return Job(s, (s.name,), {}, arrays, [])
    tokens = [_tokens(s, x, f"inputs[{k}]", limits) for k, x in enumerate(inputs)]
    if s.task.decodes:
        return _decoding_job(s, body, tokens, list(inputs), limits)
    return Job(s, (s.name,), {}, tokens, [])


def _tokens(s, x, field, limits):
    """One text input -> the model's tokens, read as predict reads a JSON lines record's field."""
    if s.meta["task"] == "tag" and isinstance(x, list):
        if not all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in x):
            raise Problem(field, "a list of tokens must hold non-empty strings without spaces")
    elif not isinstance(x, str):
        raise Problem(field, f"a {s.meta['task']} model reads text: give a string"
                      + (" or a list of tokens" if s.meta["task"] == "tag" else ""))
    if s.task.decodes:
        from rnncli.text.encode import side_tokens

        tokens = side_tokens(x, s.meta["data"]["level"], s.meta["data"]["lower"])
    else:
        tokens = s.task.input_tokens(x, s.meta["data"])
    if not tokens:
        raise Problem(field, "is empty")
    if len(tokens) > limits.max_input_tokens:
        raise Problem(field, f"{len(tokens):,} tokens; at most {limits.max_input_tokens:,} (--max-input-tokens)")
    return tokens


def input_fields(data):
    """The fields an input of a model of frames may give: what its data was made of."""
    if "image" in data:
        return ("image", "pixels")
    return ("audio", "frames") if data.get("audio") else ("frames",)


FIELD_FORMS = {"audio": '{"audio": base64 WAV}', "frames": '{"frames": [[...]]}',
               "image": '{"image": base64 PNG, PGM or PPM}', "pixels": '{"pixels": [[0-255, ...], ...]}'}


def _frames(s, x, field, limits):
    """One input of a model that reads frames: {"frames": [[...], ...]}, {"audio": base64 WAV},
    {"image": base64 PNG} or {"pixels": rows}, as its data was -> frames (T, D), read as predict
    reads a JSON lines record."""
    from rnncli.frames.records import record_frames

    data = s.meta["data"]
    allowed = input_fields(data)
    if not isinstance(x, dict) or len(x) != 1 or next(iter(x)) not in allowed:
        given = f" (not {next(iter(x))!r})" if isinstance(x, dict) and len(x) == 1 else ""
        raise Problem(field, f"this model reads {' or '.join(allowed)}{given}: give "
                      + " or ".join(FIELD_FORMS[k] for k in allowed))
    kind = next(iter(x))
    settings = dict(data.get("audio") or {})
    if "image" in data:
        settings["image"] = list(data["image"])
    with tempfile.TemporaryDirectory(prefix="rnncli-serve-") as folder:
        record = x
        if kind in ("audio", "image"):
            raw = _upload(x[kind], f"{field}.{kind}")
            if kind == "audio" and (raw[:4] != b"RIFF" or raw[8:12] != b"WAVE"):
                raise Problem(f"{field}.audio", "is not a WAV file (no RIFF/WAVE header)")
            record = {kind: os.path.join(folder, "upload.wav" if kind == "audio" else "upload.image")}
            with open(record[kind], "wb") as f:
                f.write(raw)
        try:
            frames = record_frames(record, field, None, settings)
        except RnncliError as e:
            raise Problem(None, str(e).replace(folder + os.sep, "")) from None
    if frames.shape[1] != data["frame_dim"]:
        raise Problem(field, f"frames of {frames.shape[1]} numbers; the model reads {data['frame_dim']}")
    if kind == "audio":
        seconds = len(frames) * data["audio"]["hop_ms"] / 1000
        if seconds > limits.max_seconds:
            raise Problem(field + ".audio", f"{seconds:,.1f} s of audio; at most {limits.max_seconds:g} s "
                          "(--max-seconds)")
    elif len(frames) > limits.max_input_tokens:
        raise Problem(field, f"{len(frames):,} frames; at most {limits.max_input_tokens:,} (--max-input-tokens)")
    return frames


def _upload(value, field):
    """A file sent as base64 text -> its bytes."""
    if not isinstance(value, str):
        raise Problem(field, "must be a base64 string of the file")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(field, "is not base64") from None


DECODING = ("beam", "length_penalty", "n_best", "temperature", "top_k", "top_p", "seed")


def _decoding_job(s, body, inputs, sources, limits):
    """An encoder-decoder's options, checked as `predict` checks them (the model's own beam unless
    the request sets one), and each source against the model's length limit."""
    from rnncli.commands.predict import too_short
    from rnncli.decode import decoding
    from rnncli.text.targets import source_limit, too_long

    o = {k: body.get(k) for k in DECODING}
    temperature = o["temperature"] or 0.0
    beam, length_penalty = decoding(s.meta["config"], o["beam"], o["length_penalty"], sampling=temperature > 0)
    n_best = o["n_best"] or 1
    if beam and temperature:
        raise Problem("beam", "beam and temperature exclude each other (beam search is not sampling)")
    width = len(s.meta["data"]["target_vocab"])
    if beam > min(limits.max_beam, width):
        raise Problem("beam", f"{beam:,} is wider than this server's limit of {min(limits.max_beam, width):,}")
    if n_best > max(beam, 1):
        raise Problem("n_best", f"{n_best} is more than the beam ({beam}) keeps")
    limit = source_limit(s.meta["data"])
    for k, x in enumerate(inputs):
        why = too_long(len(x), limit, s.reads_frames) if len(x) > limit else (
            too_short(s.model, len(x)) if s.reads_frames else None)
        if why:
            raise Problem(f"inputs[{k}]", why)
    options = dict(beam=beam, length_penalty=length_penalty, n_best=n_best, temperature=temperature,
                   top_k=o["top_k"], top_p=o["top_p"], seed=o["seed"])
    key = None if temperature else (s.name, beam, length_penalty, n_best)
    return Job(s, key, options, inputs, sources)


def answer(job, inputs=None, sources=None):
    """The answers to a job's inputs (or to the inputs of several jobs of one key, merged): one
    dict per input, the record `predict --json` writes for it."""
    from rnncli.commands import predict

    s = job.served
    inputs = job.inputs if inputs is None else inputs
    if s.task.decodes:
        o = dict(job.options)
        decoding = dict(beam=o["beam"], length_penalty=o["length_penalty"], n_best=o["n_best"],
                        temperature=o["temperature"], top_k=o["top_k"], top_p=o["top_p"],
                        rng=np.random.default_rng(o["seed"]))
        records = predict.decoded_records(s.model, s.meta["data"], job.sources if sources is None else sources,
                                          inputs, decoding)
        if s.reads_frames:
            records = [dict(r, key=s.task.output_name(s.meta["data"])) for r in records]
    elif s.reads_frames:
        records = predict.framed_records(s.model, s.meta, inputs, proba=True)
    else:
        records = predict.labelled_records(s.model, s.meta, inputs, proba=True)
    names = s.task.answer_names(s.model)
    return [json.loads(s.task.prediction_text(r, names, True, True)) for r in records]


# ---------------------------------------------------------------- generate

OPTION_FIELDS = {"--temp": "temperature", "--top-k": "top_k", "--top-p": "top_p", "--guidance": "guidance",
                 "--max-len": "max_tokens"}


def prepare_generate(s, body, limits):
    """A /v1/generate body -> the options of commands.sample.samples, checked as `sample` checks
    them and against the server's limits."""
    from rnncli.commands.sample import resolve_labels
    from rnncli.sample import check_sampling_options

    temperature, max_tokens, n = body["temperature"], body["max_tokens"], body["n"]
    if max_tokens > limits.max_tokens:
        raise Problem("max_tokens", f"{max_tokens:,}; at most {limits.max_tokens:,} (--max-tokens)")
    if n > limits.max_n:
        raise Problem("n", f"{n}; at most {limits.max_n} samples in one request")
    guidance = s.guidance if body.get("guidance") is None else body["guidance"]
    try:
        check_sampling_options(temperature, body.get("top_k"), body.get("top_p"), max_tokens, guidance)
    except RnncliError as e:  # its words name the CLI's options; a request names its fields
        option, rest = str(e).split(" ", 1)
        raise Problem(OPTION_FIELDS.get(option, option), rest) from None
    if guidance != 1 and getattr(s.model, "no_label", None) is None:
        raise Problem("guidance", "needs a conditional language model trained with --label-dropout")
    prime = body.get("prime") or ""
    if len(prime) > limits.max_input_tokens * 16:
        raise Problem("prime", f"{len(prime):,} characters; at most {limits.max_input_tokens * 16:,}")
    label = body.get("label")
    labels = [label] if isinstance(label, str) else list(label or [])
    try:
        resolve_labels(s.name, s.meta, labels, n, np.random.default_rng(0))  # checks them; draws nothing yet
    except RnncliError as e:
        raise Problem("label", str(e).replace("--label", "label")) from None
    return dict(prime=prime, labels=labels, n=n, seed=body.get("seed"), temperature=temperature,
                top_k=body.get("top_k"), top_p=body.get("top_p"), max_len=max_tokens, guidance=guidance)


def samples(s, o):
    """The samples of a checked /v1/generate request, as `sample` draws them -> yields (label name,
    prime, pieces), each piece (text, probability; None for the prime)."""
    from rnncli.commands.sample import samples as drawn

    return drawn(s.model, s.meta, s.name, [o["prime"]], o["labels"], o["n"], o["seed"], False, with_probability=True,
                 temperature=o["temperature"], top_k=o["top_k"], top_p=o["top_p"], max_len=o["max_len"],
                 guidance=o["guidance"])
