"""A hyperparameter search space, as YAML beside a config (rnncli tune):

    lr: {log_uniform: [1e-4, 1e-2]}     a float drawn on a log scale
    dropout: {uniform: [0.2, 0.6]}      a float
    hidden: [128, 256]                  one of these values
    layers: {int: [1, 3]}               an integer in [low, high]

Keys are TrainConfig keys; every value a range can take is checked now, with the messages a config
file gets, so that no trial fails on a value the space allowed. Numbers read as in configs.
"""

import math

from rnncli.config import check_type, config_key, make_config
from rnncli.errors import UsageError

KINDS = ("uniform", "log_uniform", "int")


def read_space(path, config_path=None):
    """-> {key: ("choice", [values]) | (kind, low, high)}, checked against TrainConfig."""
    from rnncli.config import read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected a mapping of option: range, e.g. lr: {{log_uniform: [1e-4, 1e-2]}}")
    space = {}
    for raw_key, spec in data.items():
        key = config_key(raw_key, path)
        space[key] = _range(path, key, spec)
        for value in _corners(space[key]):  # the same checks a config value gets
            value = check_type(key, value, path)
            try:
                make_config(config_path, {key: value})
            except UsageError as e:
                raise UsageError(f"{path}: key '{key}' allows {value!r}: {e}") from None
    return space


def _range(path, key, spec):
    if isinstance(spec, list):
        if not spec:
            raise UsageError(f"{path}: key '{key}': an empty list of values")
        return ("choice", spec)
    if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS):
        raise UsageError(f"{path}: key '{key}': expected a list of values or one of "
                         f"{', '.join(f'{{{k}: [low, high]}}' for k in KINDS)}, found {spec!r}")
    kind, bounds = next(iter(spec.items()))
    ok = (isinstance(bounds, list) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds))
    if not ok or not bounds[0] < bounds[1]:
        raise UsageError(f"{path}: key '{key}': {kind} needs [low, high] with low < high, found {bounds!r}")
    if kind == "log_uniform" and bounds[0] <= 0:
        raise UsageError(f"{path}: key '{key}': log_uniform needs low > 0, found {bounds[0]!r}")
    if kind == "int" and not all(float(b).is_integer() for b in bounds):
        raise UsageError(f"{path}: key '{key}': int needs whole numbers, found {bounds!r}")
    return (kind, bounds[0], bounds[1])


def _corners(rng):
    if rng[0] == "choice":
        return rng[1]
    kind, low, high = rng
    return [int(low), int(high)] if kind == "int" else [float(low), float(high)]


def suggest(trial, space):
    """One Optuna trial's values for every key of the space."""
    out = {}
    for key, rng in space.items():
        if rng[0] == "choice":
            out[key] = trial.suggest_categorical(key, rng[1])
        elif rng[0] == "int":
            out[key] = trial.suggest_int(key, int(rng[1]), int(rng[2]))
        else:
            out[key] = trial.suggest_float(key, float(rng[1]), float(rng[2]), log=rng[0] == "log_uniform")
    return out


def within(space, values):
    """The values (key -> value) that the space could have suggested: a choice it lists, or a number
    inside its range (a whole one for int). The others are left out."""
    out = {}
    for key, rng in space.items():
        v = values.get(key)
        if rng[0] == "choice":
            if v is not None and v in rng[1]:
                out[key] = v
        elif (isinstance(v, (int, float)) and not isinstance(v, bool) and rng[1] <= v <= rng[2]
              and (rng[0] != "int" or float(v).is_integer())):
            out[key] = int(v) if rng[0] == "int" else float(v)
    return out
