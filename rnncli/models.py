"""From a checkpoint to a ready model: the configuration it stores, the model that
configuration describes (tasks/build.py), the saved weights copied in. Several checkpoints
make an ensemble (ensemble.py) after checking that they read the same data alike."""

from rnncli.checkpoint import assign_params, load_checkpoint
from rnncli.checkpoint_checks import check_checkpoint
from rnncli.config import config_from_meta
from rnncli.errors import RnncliError
from rnncli.tasks.build import build_model
from rnncli.tasks.registry import task_named


def read_checkpoint(path):
    """load_checkpoint, then every meta field and the shapes the configuration implies, checked
    before anything is built from them (checkpoint_checks.py): how every command opens a model."""
    meta, groups = load_checkpoint(path)
    check_checkpoint(path, meta, groups)
    return meta, groups


def load_model(path, which="best"):
    """-> (model, meta, groups): parameters from `best` when present, else the latest."""
    meta, groups = read_checkpoint(path)
    cfg = config_from_meta(path, meta["config"])
    model = build_model(cfg, meta["data"])
    params = groups["best"] if which == "best" and groups["best"] else groups["param"]
    assign_params(path, model.params, params, model.dtype)
    return model, meta, groups


def model_paths(paths):
    """-m values -> checkpoint paths: `@list.txt` or `list.txt` is a file of model paths, one per line
    (relative to the list's folder; blank lines and # comments skipped), as `tune --seeds` writes."""
    import os

    out = []
    for p in map(str, paths):
        listing = p[1:] if p.startswith("@") else p if p.endswith(".txt") else None
        if listing is None:
            out.append(p)
            continue
        try:
            with open(listing, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise RnncliError(f"{listing}: cannot read the list of models: {e.strerror}") from None
        except UnicodeDecodeError:
            raise RnncliError(f"{listing}: the list of models is not UTF-8 text") from None
        except ValueError as e:  # e.g. a NUL byte in the list file's name
            raise RnncliError(f"{listing}: cannot read the list of models: {e}") from None
        found = [os.path.join(os.path.dirname(listing), ln.strip()) for ln in lines
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not found:
            raise RnncliError(f"{listing}: lists no models")
        out += found
    return out


def load_models(paths):
    """One checkpoint -> (model, meta); several -> (Ensemble, meta of the first, with
    char_features on when any member reads characters, so the batches carry them).
    A list file (model_paths) stands for the models it lists."""
    from rnncli.ensemble import SHARED, Ensemble

    paths = model_paths(paths)

    loaded = [load_model(p)[:2] for p in paths]
    if len(loaded) == 1:
        return loaded[0]
    first_path, (_, first) = paths[0], loaded[0]
    task = task_named(first["task"])
    if not task.ensembles:
        what = "an encoder-decoder" if task.decodes else "a language model"
        raise RnncliError(f"{first_path}: {what} cannot be part of an ensemble "
                          "(ensembles are for classifiers, taggers and regressions)")
    for path, (_, meta) in zip(paths[1:], loaded[1:], strict=True):
        if meta["task"] != first["task"]:
            raise RnncliError(f"{path}: a {meta['task']} model cannot join {first_path}, a {first['task']} model")
        for key, what in SHARED.items():
            if meta["data"].get(key) != first["data"].get(key):
                raise RnncliError(f"{path}: another {what} than {first_path}; the members of an ensemble "
                                  "must be trained on data tokenized alike (tokenize with --vocab)")
    char_features = any(meta["config"].get("char_features") for _, meta in loaded)
    meta = {**first, "config": {**first["config"], "char_features": char_features}}
    return Ensemble([model for model, _ in loaded]), meta
