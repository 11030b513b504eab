"""rnncli eval: score one model or an ensemble on a file or an encoded data set."""

from rnncli.errors import RnncliError
from rnncli.models import load_models
from rnncli.tasks.options import check_options
from rnncli.tasks.registry import task_named


def encode_for_model(data, meta, max_source=None, min_source=None):
    """-> (split, what was scored): a raw file encoded with the model's own vocabulary (all of
    it), or a tokens.npz checked against it (its validation split, or all of it if it has none)."""
    from rnncli.text.encode import tokenize
    from rnncli.text.store import load_dataset

    if str(data).endswith(".npz"):
        ds = load_dataset(data)
        if ds.meta["vocab"] != meta["data"]["vocab"]:
            raise RnncliError(f"{data}: tokenized with another vocabulary than the model's "
                              f"({len(ds.meta['vocab'])} vs {len(meta['data']['vocab'])} symbols); "
                              "tokenize it with --vocab MODEL")
        if ds.valid is not None:
            return ds.valid, "its validation split"
        return ds.train, "all of it (it has no validation split)"
    # JSON lines are detected; any other file is read in the model's format
    ds = tokenize([data], valid_frac=0, reuse=meta["data"], max_source=max_source, min_source=min_source)
    return ds.train, "all of it"


def evaluate_models(model_paths, data, beam=None, max_source=None, length_penalty=None, given=()):
    """The metrics dict `eval` reports, with what was scored and how many examples. beam and
    length_penalty None: the model's own decoding defaults (decode.decoding). given: the options the
    user gave, checked against the model's task (tasks/options.py)."""
    model, meta = load_models(model_paths)
    task = task_named(meta["task"])
    check_options("eval", task.name, given)
    decoding = task.decoding(meta["config"], beam, length_penalty)  # {} for a task that does not decode
    if decoding:
        from rnncli.commands.predict import check_decoding_limits

        check_decoding_limits(meta, decoding["beam"], max_source)
    split, part = encode_for_model(data, meta, max_source, getattr(model, "reduction", None))
    metrics = task.evaluate(model, split, meta["data"]["format"], meta["config"].get("char_features"), **decoding)
    if metrics is None:
        raise RnncliError(f"{data}: nothing to score")
    return {"task": task.name, "data": str(data), "models": [str(p) for p in model_paths], "scored": part,
            "examples": int(split.num_sequences), "level": meta["data"].get("level"), **metrics}
