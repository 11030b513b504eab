"""rnncli predict: label input as it arrives, one answer per line (classify), per sentence (tag),
or one translation per line (seq2seq).

Whatever input has already arrived is labelled in length-sorted batches, then answered: a pipe
gets an answer per line, a file goes through at batch speed.
"""

from rnncli.errors import UsageError
from rnncli.models import load_models
from rnncli.tasks.options import check_options
from rnncli.tasks.registry import task_named
from rnncli.text.encode import encode_words, side_tokens
from rnncli.text.readers import read_groups


def open_predictor(model_paths, given=()):
    """-> (model, meta); a language model is refused. given: the options the user gave, checked
    against the model's task (tasks/options.py)."""
    model, meta = load_models(model_paths)
    if task_named(meta["task"]).generates:
        raise UsageError(f"{model_paths[0]}: a language model does not label input; use sample or eval")
    check_options("predict", meta["task"], given)
    return model, meta


def predicted_records(predictor, meta, source, jsonl, conll, proba, decoding):
    """The answers to every input of `source`, in batches of records (render.predicted_text writes
    them): a translation or transcription per line (decoding: the options of decode.py), or a
    label, tags or scores per line, sentence or recording."""
    if task_named(meta["task"]).decodes:
        from rnncli.decode import decoding as model_decoding
        from rnncli.sample import check_sampling_options

        d = decoding
        check_sampling_options(d["temperature"], d["top_k"], d["top_p"], 1)
        beam, length_penalty = model_decoding(meta["config"], d["beam"], d["length_penalty"], sampling=d["sampling"])
        if beam < 0 or d["n_best"] < 1 or (d["n_best"] > 1 and d["n_best"] > beam):
            raise UsageError("--beam must be 0 or more and --n-best at least 1 and at most --beam")
        if beam and d["temperature"]:
            raise UsageError("--beam and --temp exclude each other (beam search is not sampling)")
        check_decoding_limits(meta, beam, d["max_source"])
        return translations(predictor, meta, source, beam=beam, length_penalty=length_penalty, n_best=d["n_best"],
                            temperature=d["temperature"], top_k=d["top_k"], top_p=d["top_p"], seed=d["seed"],
                            jsonl=jsonl, max_source=d["max_source"], cut=d["cut"])
    if meta["data"].get("input") == "frames":  # recordings, features files or records of frames
        return frame_predictions(predictor, meta, source, proba=proba, jsonl=jsonl)
    return predictions(predictor, meta, source, conll=conll, proba=proba, jsonl=jsonl)


def check_decoding_limits(meta, beam, max_source):
    """--beam and --max-source-len before any work: a beam wider than the target vocabulary keeps
    nothing more (and would allocate for nothing)."""
    if max_source is not None and max_source < 1:
        raise UsageError(f"--max-source-len must be at least 1, not {max_source}")
    width = len(meta["data"]["target_vocab"])
    if beam > width:
        raise UsageError(f"--beam {beam:,} is wider than the target vocabulary ({width:,} tokens)")


def translations(model, meta, source, beam=0, length_penalty=0.0, n_best=1, temperature=0.0, top_k=None,
                 top_p=None, seed=None, jsonl=False, max_source=None, cut=False):
    """Yield, for each group of input lines that has arrived, one record per line:
    {"source": line, "hypotheses": [(text, normalised score, log-probability), ...] best first};
    an empty line gets no hypotheses (and an empty output line). jsonl: lines are JSON objects
    whose "source" field is translated. A line longer than the model's source limit
    (text/targets.py; max_source overrides it) is skipped with a warning and an empty output
    line, or with `cut` read up to the limit."""
    import numpy as np

    from rnncli import console
    from rnncli.text.targets import source_limit, too_long

    data, rng = meta["data"], np.random.default_rng(seed)
    decoding = dict(beam=beam, length_penalty=length_penalty, n_best=n_best, temperature=temperature, top_k=top_k,
                    top_p=top_p, rng=rng)
    if data.get("input") == "frames":
        yield from transcriptions(model, meta, source, jsonl, max_source, cut, decoding)
        return
    known, warned = set(data["vocab"]), False
    limit = source_limit(data, max_source)
    for group in read_groups(source, field="source" if jsonl else None):
        group = [(at, line or "") for at, line in group]
        sources = [side_tokens(line, data["level"], data["lower"]) for _, line in group]
        for k, ((at, _), tokens) in enumerate(zip(group, sources, strict=True)):
            if len(tokens) > limit:
                what = f"read its first {limit:,}" if cut else "skipped (an empty output line)"
                console.log(f"[yellow]warning:[/yellow] {at}: {too_long(len(tokens), limit)}; {what}")
                sources[k] = tokens[:limit] if cut else []
        if not warned and data["level"] == "char" and not data.get("source_unk_trained", True):
            # tokenize --vocab refuses this; a stream of lines to translate gets a warning and goes on
            unknown = next((t for tokens in sources for t in tokens if t not in known), None)
            if unknown is not None:
                console.log(f"[yellow]warning:[/yellow] character {unknown!r} is not in the model's vocabulary; "
                            "read as <unk>, which the model never learnt (said once)")
                warned = True
        yield decoded_records(model, data, [line for _, line in group], sources, decoding)


def decoded_records(model, data, sources, inputs, decoding):
    """One group of an encoder-decoder's inputs, decoded in batches -> one record per input,
    {"source": sources[k], "hypotheses": [(text, normalised score, log-probability), ...] best first};
    inputs: each source's tokens, or (speech) its frames (T, D); an empty or None input gets no
    hypotheses. decoding: translate_split's options (beam, n_best, temperature, rng, ...)."""
    from rnncli.evaluate import translate_split
    from rnncli.text.encode import encode_pairs
    from rnncli.text.vocab import join_tokens

    records = [{"source": source, "hypotheses": []} for source in sources]
    kept = [k for k, x in enumerate(inputs) if x is not None and len(x)]
    if kept:
        decoded = translate_split(model, encode_pairs(data, [inputs[k] for k in kept]), **decoding)
        for k, hyps in zip(kept, decoded, strict=True):
            records[k]["hypotheses"] = [(join_tokens(t, data["target_level"]), float(score), float(logp))
                                        for t, score, logp in hyps]
    return records


def too_short(model, length):
    """Why a recording of `length` frames is too short for a speech model's encoder, or None: its
    stacking and pyramid join `reduction` frames into each top-layer step, and a recording shorter
    than one such step gives the decoder less than one step to attend to."""
    if length < model.reduction:
        return (f"{length:,} frames, shorter than the encoder's reduction of {model.reduction:,} frames "
                "(--stack-frames x 2^--pyramid)")
    return None


def transcriptions(model, meta, source, jsonl, max_source, cut, decoding):
    """translations() for a speech model: each recording (or record of frames) and its transcript,
    one record per input line, {"source": the file or line, "hypotheses": [...]}. A recording that
    cannot be read, is shorter than the encoder's reduction or (without `cut`) longer than the
    model's limit is reported on stderr and answered with an empty line."""
    import numpy as np

    from rnncli import console
    from rnncli.text.targets import source_limit, too_long

    data = meta["data"]
    limit = source_limit(data, max_source)
    for group in frame_items(source, jsonl, data):
        arrays = []
        for at, x in group:
            if isinstance(x, np.ndarray) and len(x) > limit and cut:
                console.log(f"[yellow]warning:[/yellow] {at}: {too_long(len(x), limit, True)}; read its first "
                            f"{limit:,}")
                x = x[:limit]
            elif isinstance(x, np.ndarray) and (why := too_long(len(x), limit, True) if len(x) > limit
                                                else too_short(model, len(x))):
                x = f"{at}: {why}"
            if isinstance(x, str):
                console.log(f"[yellow]skipped:[/yellow] {x}")
                x = None
            arrays.append(x)
        records = decoded_records(model, data, [at for at, _ in group], arrays, decoding)
        key = task_named(meta["task"]).output_name(data)
        yield [dict(r, key=key) for r in records]


def predictions(model, meta, source, conll=False, proba=False, jsonl=False):
    """Yield, for each group of input that has arrived, a list with one record per line or
    sentence: {"tokens": words, "label": id, "probabilities": (C,)} (classify) or
    {"tokens": words, "tags": ids, "probabilities": (T,) or None} (tag) or {"tokens": words,
    "scores": [K numbers in their own units]} (regress); an empty line gives
    a record with no tokens, so output stays aligned with input. jsonl: lines are JSON objects,
    whose "text" (classify) or "tokens" (tag: a list of words, or a string) is read."""
    task, data = task_named(meta["task"]), meta["data"]
    for group in read_groups(source, conll=conll, field=task.input_field if jsonl else None):
        yield labelled_records(model, meta, [task.input_tokens(item, data) for _, item in group], proba)


def labelled_records(model, meta, sentences, proba=False):
    """One group of a labelling model's inputs (each a list of words), predicted in batches -> one
    record per input (predictions() says what each holds); an empty input gets a record with no
    tokens."""
    task, data = task_named(meta["task"]), meta["data"]
    records = [{"tokens": ws} for ws in sentences]
    kept = [k for k, ws in enumerate(sentences) if ws]
    if kept:
        split = encode_words(data, [sentences[k] for k in kept])
        pred, probs = task.predict(model, split, char_features=meta["config"].get("char_features"), proba=proba)
        for j, k in enumerate(kept):
            records[k].update(task.answer(pred[j]), probabilities=None if probs is None else probs[j])
    return records


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm")


def frame_items(source, jsonl, data):
    """What a frame model's predict and show read -> yields groups of (file:line, frames (T, D) or the
    one-line reason they could not be had). The source is one recording or features file, or a
    stream of lines: each a path to one, or with jsonl a JSON record holding frames, features or audio.
    data: the model's data meta; every file must fit its recording settings (sample rate, window,
    bands) and its frame size D."""
    from rnncli.errors import RnncliError, where
    from rnncli.frames.records import FIELDS, record_frames
    from rnncli.text.readers import json_object

    audio_meta = dict(data.get("audio") or {})
    if "image" in data:  # images: of the model's size
        audio_meta["image"] = list(data["image"])

    def one(obj, at):
        try:
            x = record_frames(obj, *at.rsplit(":", 1), audio_meta)
        except RnncliError as e:
            return str(e)
        if x.shape[1] != data["frame_dim"]:
            return f"{at}: frames of {x.shape[1]} numbers; the model reads {data['frame_dim']}"
        return x

    if str(source).lower().endswith((*AUDIO_SUFFIXES, *IMAGE_SUFFIXES, ".npy")):
        yield [(where(source, 1), one(_path_record(source), where(source, 1)))]
        return
    for group in read_groups(source):
        items = []
        for at, line in group:
            line = (line or "").strip()
            if not line:
                items.append((at, None))
            elif not jsonl:
                items.append((at, one(_path_record(line), at)))
            else:
                try:
                    obj = json_object(line, *at.rsplit(":", 1))
                except RnncliError as e:
                    items.append((at, str(e)))
                    continue
                items.append((at, one(obj, at) if any(k in obj for k in FIELDS) else
                              f"{at}: expected a field frames, features or audio"))
        yield items


def _path_record(path):
    """A path given to predict or show as the record it stands for: .npy features, an image, else a
    recording."""
    import os

    lower = path.lower()
    kind = "features" if lower.endswith(".npy") else "image" if lower.endswith(IMAGE_SUFFIXES) else "audio"
    return {kind: os.path.abspath(path)}


def frame_predictions(model, meta, source, proba=False, jsonl=False):
    """predictions() for a model that reads frames: one record per recording, features file or
    record. A path or record that cannot be read, or whose frames do not fit the model (another
    sample rate, another D), is reported on stderr and answered with an empty line, so a pipeline
    keeps one answer per input line."""
    from rnncli import console

    for group in frame_items(source, jsonl, meta["data"]):
        arrays = []
        for _, x in group:
            if isinstance(x, str):
                console.log(f"[yellow]skipped:[/yellow] {x}")
            arrays.append(None if isinstance(x, str) else x)
        yield framed_records(model, meta, arrays, proba)


def framed_records(model, meta, arrays, proba=False):
    """labelled_records() for a model that reads frames: arrays (T, D), None where an input could
    not be read (a record with no tokens)."""
    from rnncli.text.encode import encode_frames

    task = task_named(meta["task"])
    records = [{"tokens": [] if x is None else [str(t) for t in range(len(x))]} for x in arrays]  # frame numbers
    kept = [k for k, x in enumerate(arrays) if x is not None]
    if kept:
        pred, probs = task.predict(model, encode_frames(meta["data"], [arrays[k] for k in kept]), proba=proba)
        for j, k in enumerate(kept):
            records[k].update(task.answer(pred[j]), probabilities=None if probs is None else probs[j])
    return records
