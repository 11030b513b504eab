"""Reading YAML the way practitioners write it.

PyYAML follows YAML 1.1, where a float needs a dot: `lr: 1e-3` is read as the string '1e-3',
while YAML 1.2 (and JSON, and Python) read it as 0.001. Every YAML file the project reads goes
through this loader, which resolves such numbers as floats; everything else is safe_load's.
"""

import re

import yaml

from rnncli.errors import UsageError


class _Loader(yaml.SafeLoader):
    """SafeLoader plus YAML 1.2's floats with an exponent and no dot (1e-3, 5E+2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text, source="<yaml>"):
    """YAML text -> data; a syntax error is one line naming source:line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise UsageError(f"{source}{'' if line is None else f':{line + 1}'}: not valid YAML") from None
    except RecursionError:  # lists or mappings nested thousands deep
        raise UsageError(f"{source}: not valid YAML (nested too deeply)") from None
    except ValueError as e:  # a value its type cannot hold: an integer of 5,000 digits, the date 2026-02-31
        raise UsageError(f"{source}: not valid YAML ({str(e).splitlines()[0][:60]})") from None


def load_yaml(path):
    """A YAML file's data ({} for an empty file)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the config file ({e})") from None
    data = parse_yaml(text, path)
    return {} if data is None else data
