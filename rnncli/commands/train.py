"""rnncli train: the effective configuration, the data, and a run of train.train().

A fresh run needs a free (or --force) output; a resumed run keeps its architecture and data
and may change only its stopping limits.
"""

import dataclasses

from rnncli.commands.common import lock_output, refuse_overwrite, require_data
from rnncli.config import config_from_meta, make_config
from rnncli.errors import RnncliError, UsageError
from rnncli.models import read_checkpoint
from rnncli.pretrained import prepare
from rnncli.tasks.build import check_fits_in_memory, task_of
from rnncli.train import train

# what `--resume` may change: when to stop, not what is trained
RESUMABLE = ("epochs", "max_steps", "max_time", "eval_every", "patience")


@dataclasses.dataclass
class TrainingJob:
    cfg: object
    ds: object
    out: str
    resume: tuple | None = None
    pretrained: object = None  # word vectors matched to the data (pretrained.py)

    def run(self, callback=None):
        """Train; returns the summary dict."""
        return train(self.cfg, self.ds, self.out, self.resume, callback, self.pretrained)


def load_training_data(data):
    """A tokens.npz, or a raw file tokenized with the defaults; -> (Dataset, note or None)."""
    from rnncli.text.encode import tokenize
    from rnncli.text.store import load_dataset

    require_data(data)
    if data.endswith(".npz"):
        return load_dataset(data), None
    return tokenize([data]), f"{data}: not a .npz data set; tokenized it with the defaults"


def prepare_training(data, out, config_path=None, overrides=None, resume=None, force=False):
    """Everything checked before the first step: -> (TrainingJob, notes for the user)."""
    overrides = overrides or {}
    if resume is None:
        cfg = make_config(config_path, overrides)
        require_data(data)  # a missing input is the first thing to hear about
        refuse_overwrite(out, force)
        ds, note = load_training_data(data)
        task = task_of(cfg, ds.meta)  # a task the data cannot train is refused before anything is shown
        cfg, pretrained, notes = prepare(cfg, ds, task, overrides.get("embed"))
        check_fits_in_memory(cfg, ds.meta)  # before the configuration is shown
        return TrainingJob(cfg, ds, str(out), pretrained=pretrained), [note] * bool(note) + notes
    lock_output(resume)
    meta, groups = read_checkpoint(resume)
    base = config_from_meta(resume, meta["config"])
    changed = sorted(k for k, v in overrides.items()
                     if v is not None and k not in RESUMABLE and v != getattr(base, k))
    if changed or config_path:
        raise UsageError(f"--resume continues a run as configured; cannot change {changed or 'the config file'}")
    cfg = make_config(None, {k: overrides.get(k) for k in RESUMABLE}, base=base)
    ds, note = load_training_data(data)
    if ds.meta["vocab"] != meta["data"]["vocab"]:
        raise RnncliError(f"{data}: vocabulary differs from {resume}'s "
                          f"({len(ds.meta['vocab'])} vs {len(meta['data']['vocab'])} symbols)")
    return TrainingJob(cfg, ds, str(resume), (meta, groups)), [note] if note else []
