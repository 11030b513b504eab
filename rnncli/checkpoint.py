"""model.npz: everything a run needs to be used, inspected or resumed, loadable without pickle.

Arrays:  param.<name>   the latest parameters (dotted names, docs/checkpoint.md)
         best.<name>    the parameters with the best validation score so far
         opt.<slot>     optimizer state (Adam moments, ...)
         carry.<k>.<j>  the hidden state carried between language-model chunks
Meta (JSON): format_version, config, data (vocabularies), step, epoch, chunk, rng state,
         optimizer step count, history of evaluations, best score.
"""

import numpy as np

from rnncli.errors import RnncliError
from rnncli.npzfile import load_npz, save_npz

FORMAT_VERSION = 1
KIND = "rnncli-model"


def save_checkpoint(path, meta, params, best=None, opt_state=None, carry=None):
    arrays = {f"param.{k}": v for k, v in params.items()}
    for k, v in (best or {}).items():
        arrays[f"best.{k}"] = v
    for k, v in (opt_state or {}).items():
        arrays[f"opt.{k}"] = v
    for i, state in enumerate(carry or []):
        for j, arr in enumerate(state):
            arrays[f"carry.{i}.{j}"] = arr
    save_npz(path, arrays, dict(meta, kind=KIND, format_version=FORMAT_VERSION))


def load_checkpoint(path):
    """-> (meta, groups) with groups = {"param": {...}, "best": {...}, "opt": {...}, "carry": {...}}.
    Only the file is checked here; models.read_checkpoint adds the meta fields and the shapes the
    configuration implies (checkpoint_checks.py), and assign_params the names and shapes again."""
    arrays, meta = load_npz(path, "model")
    if meta.get("kind") != KIND:
        raise RnncliError(f"{path}: not an rnncli model (is it a tokens.npz data set?)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RnncliError(f"{path}: model format {version} is newer than this rnncli reads "
                          f"({FORMAT_VERSION}); upgrade rnncli")
    for key in ("config", "data"):
        if not isinstance(meta.get(key), dict):
            raise RnncliError(f"{path}: damaged model (no {key})")
    groups = {"param": {}, "best": {}, "opt": {}, "carry": {}}
    for name, arr in arrays.items():
        group, _, rest = name.partition(".")
        if group not in groups or not rest:
            raise RnncliError(f"{path}: unexpected array {name!r}")
        if arr.dtype.kind not in "fiu":
            raise RnncliError(f"{path}: array {name!r} has type {arr.dtype}, expected numbers")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise RnncliError(f"{path}: array {name!r} holds NaN or infinite values")
        groups[group][rest] = arr
    if not groups["param"]:
        raise RnncliError(f"{path}: damaged model (no parameters)")
    return meta, groups


def check_names(path, expected, loaded):
    """The names of the arrays loaded are the model's, none missing, none more."""
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    if missing or extra:
        raise RnncliError(f"{path}: parameters do not fit the model's configuration "
                          f"(missing {missing[:3]}, unexpected {extra[:3]})")


def assign_params(path, params, loaded, dtype):
    """Copy loaded arrays into the model's own arrays, checking names and shapes."""
    check_names(path, params, loaded)
    for name, arr in params.items():
        if loaded[name].shape != arr.shape:
            raise RnncliError(f"{path}: parameter {name} has shape {loaded[name].shape}, "
                              f"expected {arr.shape}")
        arr[...] = loaded[name].astype(dtype, copy=False)
