"""The models a server holds: each loaded once at start, under a name (its file's stem, or the
name of `-m name=path`), and described for GET /v1/models."""

import os
import re
import typing

from rnncli.errors import UsageError
from rnncli.tasks.registry import task_named

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Served(typing.NamedTuple):
    """One model behind the server: what `predict` or `sample` would open from its path."""

    name: str
    path: str
    model: object
    meta: dict
    guidance: float  # a conditional language model's default guidance (commands/sample.py); 1 otherwise

    @property
    def task(self):
        return task_named(self.meta["task"])

    @property
    def reads_frames(self):
        return self.meta["data"].get("input") == "frames"


def named_paths(specs):
    """-m values -> [(name, path)]: `name=path`, or a path named by its file's stem. Names must be
    unique and URL-safe (they are how requests choose a model)."""
    out = []
    for spec in map(str, specs):
        name, sep, path = spec.partition("=")
        if not sep or os.path.exists(spec):
            name, path = os.path.splitext(os.path.basename(spec))[0], spec
        if not NAME.fullmatch(name):
            raise UsageError(f"-m {spec}: a model's name is 1-64 letters, digits, '_', '.' or '-' (give name=path)")
        if any(name == other for other, _ in out):
            raise UsageError(f"-m {spec}: two models are named {name!r}; name one with name=path")
        out.append((name, path))
    if not out:
        raise UsageError("give at least one model to serve: -m model.npz")
    return out


def load_served(specs):
    """{name: Served} for the -m values, each checked and loaded as predict and sample load it."""
    from rnncli.commands.predict import open_predictor
    from rnncli.commands.sample import open_sampler

    served = {}
    for name, path in named_paths(specs):
        from rnncli.checkpoint import load_checkpoint

        meta, _ = load_checkpoint(path)  # which command opens it depends on its task
        if task_named(meta["task"]).generates:
            model, meta, guidance = open_sampler(path)
        else:
            (model, meta), guidance = open_predictor([path]), 1.0
        served[name] = Served(name, path, model, meta, guidance)
    return served


def describe(s):
    """One model as GET /v1/models shows it: its task, what it reads, its names and decoding defaults."""
    data, cfg, task = s.meta["data"], s.meta["config"], s.task
    out = {"name": s.name, "task": s.meta["task"], "kind": "generate" if task.generates else "predict",
           "input": _input_kind(data), "level": data.get("level")}
    names = task.answer_names(s.model) if not task.generates else None
    if names is not None:
        out["tags" if s.meta["task"] == "tag" else "labels" if s.meta["task"] == "classify" else "scores"] = list(names)
    if task.conditioned:
        out["labels"] = list(data["labels"])
    if task.decodes:
        from rnncli.decode import decoding

        beam, length_penalty = decoding(cfg)
        out["decoding"] = {"beam": beam, "length_penalty": length_penalty}
        if data.get("audio"):
            out["audio"] = dict(data["audio"])
    if "image" in data:
        out["image"] = dict(zip(("height", "width", "channels"), data["image"], strict=True))
    if task.generates:
        out["decoding"] = {"temperature": 1.0, "guidance": s.guidance}
    return out


def _input_kind(data):
    """What a model reads, as /v1/models and the page name it."""
    if data.get("input") != "frames":
        return "text"
    return "image" if "image" in data else "audio or frames" if data.get("audio") else "frames"
