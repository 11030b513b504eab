"""rnncli predict: label input as it arrives, one answer per line (classify) or per sentence (tag).

Whatever input has already arrived is labelled in length-sorted batches, then answered: a pipe
gets an answer per line, a file goes through at batch speed.
"""

from rnncli.errors import UsageError
from rnncli.evaluate import predict_split
from rnncli.models import load_models
from rnncli.text.encode import encode_words
from rnncli.text.readers import read_groups
from rnncli.text.vocab import split_words


def open_predictor(model_paths):
    """-> (model, meta); a language model is refused."""
    model, meta = load_models(model_paths)
    if meta["task"] == "lm":
        raise UsageError(f"{model_paths[0]}: a language model does not label input; use sample or eval")
    return model, meta


def predictions(model, meta, source, conll=False, proba=False):
    """Yield, for each group of input that has arrived, a list with one record per line or
    sentence: {"tokens": words, "label": id, "probabilities": (C,)} (classify) or
    {"tokens": words, "tags": ids, "probabilities": (T,) or None} (tag); an empty line gives
    a record with no tokens, so output stays aligned with input."""
    task, data = meta["task"], meta["data"]
    char_features = meta["config"].get("char_features")
    for group in read_groups(source, conll=conll):
        if task == "classify":
            sentences = [split_words(line, data["lower"]) for _, line in group]
        else:
            sentences = [item if conll else split_words(item) for _, item in group]
        records = [{"tokens": ws} for ws in sentences]
        kept = [k for k, ws in enumerate(sentences) if ws]
        if kept:
            split = encode_words(data, [sentences[k] for k in kept])
            pred, probs = predict_split(model, task, split, char_features=char_features, proba=proba)
            for j, k in enumerate(kept):
                answer = {"label": int(pred[j])} if task == "classify" else {"tags": pred[j]}
                records[k].update(answer, probabilities=None if probs is None else probs[j])
        yield records
