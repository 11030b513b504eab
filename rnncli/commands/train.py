"""rnncli train: the effective configuration, the data, and a run of train.train().

A fresh run needs a free (or --force) output; a resumed run keeps its architecture and data
and may change only its stopping limits (and its number of workers).

On several workers (parallel/) every worker prepares the same job; the lead alone checks and
locks the output. A failure on any worker before the first step is every worker's, and the
workers must agree on rnncli's version, the data and the configuration before they start.
"""

import dataclasses
import hashlib
import json

import numpy as np

from rnncli import __version__
from rnncli.commands.common import lock_output, refuse_overwrite, require_data
from rnncli.config import config_from_meta, make_config
from rnncli.errors import RnncliError, UsageError
from rnncli.models import read_checkpoint
from rnncli.pretrained import prepare
from rnncli.tasks.build import check_fits_in_memory, check_reduction, task_of
from rnncli.tasks.options import check_options, train_options_given
from rnncli.train import train

# what `--resume` may change: when to stop, not what is trained
RESUMABLE = ("epochs", "max_steps", "max_time", "eval_every", "patience", "workers")


@dataclasses.dataclass
class TrainingJob:
    cfg: object
    ds: object
    out: str
    resume: tuple | None = None
    pretrained: object = None  # word vectors matched to the data (pretrained.py)
    world: object = None  # the workers training together (parallel/); None: this process alone

    def run(self, callback=None):
        """Train; returns the summary dict."""
        return train(self.cfg, self.ds, self.out, self.resume, callback, self.pretrained, self.world)


def workers_to_start(config_path, overrides):
    """How many worker processes `train` should start on this machine: 0 when this process trains
    (one worker, or an MPI launcher already started the workers), else --workers (or the config's;
    for --resume, as many as the run had, so that it continues bit for bit)."""
    from rnncli.parallel import check_batch, launched_size

    if launched_size() > 1:
        return 0
    if overrides.get("resume") is None:
        cfg = make_config(config_path, {k: v for k, v in overrides.items() if k != "resume"})
        n = cfg.workers
        check_batch(cfg.batch_size, n)
    else:
        n = overrides.get("workers") or read_checkpoint(str(overrides["resume"]))[0].get("workers", 1)
    return 0 if n == 1 else n


def prepare_workers(data, out, config_path=None, overrides=None, resume=None, force=False):
    """prepare_training on every worker of the MPI job that started this process (or alone)."""
    from rnncli.parallel import get_world

    world = get_world((overrides or {}).get("workers"))
    if world.size == 1:
        return prepare_training(data, out, config_path, overrides, resume, force)
    error = job = notes = None
    try:
        job, notes = prepare_training(data, out, config_path, overrides, resume, force, lead=world.lead)
    except RnncliError as e:
        error = e
    first = world.agree_on_error(error)
    if first is not None:
        raise first
    world.agree({"rnncli version": __version__, "data": data_fingerprint(job.ds),
                 "configuration": dataclasses.asdict(job.cfg)})
    job.world = world
    job.cfg = dataclasses.replace(job.cfg, workers=world.size)  # what ran, whatever the config said
    return job, notes


def data_fingerprint(ds, chunk=1 << 24):
    """A short hash of a data set's contents (its meta and every array), the same on any machine. The
    arrays are read a chunk at a time and a mapped one's pages let go again, so that every worker can
    hash a data set larger than memory without copying it."""
    from rnncli.npzfile import in_chunks

    h = hashlib.sha256(json.dumps(ds.meta, sort_keys=True, default=str).encode())
    for split in (ds.train, ds.valid):
        for name, value in sorted(vars(split).items()) if split is not None else ():
            if isinstance(value, np.ndarray):
                h.update(name.encode())
                flat = value.reshape(-1) if value.flags.c_contiguous else np.ascontiguousarray(value).reshape(-1)
                for part in in_chunks(flat, chunk):
                    h.update(memoryview(part).cast("B"))
    return h.hexdigest()[:16]


def load_training_data(data):
    """A tokens.npz, or a raw file tokenized with the defaults; -> (Dataset, note or None)."""
    from rnncli.text.encode import tokenize
    from rnncli.text.store import load_dataset

    require_data(data)
    if data.endswith(".npz"):
        return load_dataset(data), None
    return tokenize([data]), f"{data}: not a .npz data set; tokenized it with the defaults"


def prepare_training(data, out, config_path=None, overrides=None, resume=None, force=False, lead=True):
    """Everything checked before the first step: -> (TrainingJob, notes for the user).
    lead False: a worker that does not write (it neither checks nor locks the output)."""
    overrides = overrides or {}
    if resume is None:
        cfg = make_config(config_path, overrides)
        require_data(data)  # a missing input is the first thing to hear about
        if lead:
            refuse_overwrite(out, force)
        ds, note = load_training_data(data)
        task = task_of(cfg, ds.meta)  # a task the data cannot train is refused before anything is shown
        check_options("train", task, train_options_given(cfg))
        cfg, pretrained, notes = prepare(cfg, ds, task, overrides.get("embed"))
        check_fits_in_memory(cfg, ds.meta)  # before the configuration is shown
        check_reduction(cfg, ds, task)
        return TrainingJob(cfg, ds, str(out), pretrained=pretrained), [note] * bool(note) + notes
    if lead:
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
