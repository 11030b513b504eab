"""The training options of the command line, made from TrainConfig's fields (rnncli/config.py):
each field is declared once, there, with its default, help and allowed values; here it becomes
an option of `train` (and of `gradcheck`, for the fields that shape a model).

    a field of choices      -> an option whose --help lists them (an Enum of them)
    a bool field            -> --name/--no-name
    a float field           -> NaN and infinity refused, naming the option
Every option defaults to None: "not given", so that a config file's value stands.
"""

import enum
import inspect
import math
import typing
from typing import Annotated

import typer

from rnncli.config import FIELDS, help_text

SWITCHES = {"freeze_embeddings": "--freeze-embeddings/--fine-tune-embeddings"}  # where --no-x would read badly


def finite(value):
    """Every float option: NaN and infinity are usage errors naming the option."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, not {value}")
    return value


def _base_type(name):
    args = [a for a in typing.get_args(FIELDS[name].type) if a is not type(None)]
    return args[0] if args else FIELDS[name].type


def choices_of(name):
    """The values TrainConfig field `name` allows, as an Enum (what --help lists)."""
    return enum.StrEnum("".join(w.title() for w in name.split("_")), {v: v for v in FIELDS[name].metadata["choices"]})


def config_option(name):
    """The Annotated type of the option for TrainConfig field `name`."""
    meta, kind = FIELDS[name].metadata, _base_type(name)
    flags, kw = (), {}
    if meta["choices"]:
        kind = choices_of(name)
    elif kind is bool:
        flags = (SWITCHES.get(name, f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}"),)
    elif kind is float:
        kw["callback"] = finite
    return Annotated[kind | None, typer.Option(*flags, help=help_text(name), **kw)]


def with_config_options(command):
    """Give `command` (which takes **options) an option for every TrainConfig field, after its own
    parameters and before its last three (--force, --json, --quiet): what Typer reads is the signature."""
    own = list(inspect.signature(command).parameters.values())
    keyword = [p for p in own if p.kind is inspect.Parameter.VAR_KEYWORD]
    own = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert keyword, "the command takes the options as **options"
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=config_option(name))
             for name in FIELDS]
    head, tail = own[:-3], own[-3:]
    as_keywords = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in head + tail]
    command.__signature__ = inspect.Signature(as_keywords[: len(head)] + added + as_keywords[len(head):])
    return command


def given_options(options):
    """The **options a command received -> {field: value}, enums as their strings."""
    return {k: v.value if isinstance(v, enum.Enum) else v for k, v in options.items() if k in FIELDS}
