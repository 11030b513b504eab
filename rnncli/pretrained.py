"""Pretrained word vectors in a model (train --embeddings): the embedding size they set, the rows
they fill, the rows they add, and the coverage report shown before training.

    training words found (text/vectors.py: exact, else lower-case) start from their vector;
    the others keep their random start. Classifiers, taggers and an encoder-decoder's source side
    also get a row for every vector word the training data lacks, after the training vocabulary,
    so prediction reaches those words; a tagger's training and validation words that --min-freq
    cut get theirs too (their characters spell them out). A language model's input words are also
    the words it predicts, so it gets only the first part.
    Training updates only the rows a batch touched (nn/rows.py); --freeze-embeddings keeps the rows
    that came from the vectors fixed, while training words the vectors lack still learn theirs.
"""

import dataclasses
import os

import numpy as np

from rnncli.errors import UsageError
from rnncli.tasks.registry import task_named
from rnncli.text.encode import word_encoder
from rnncli.text.vectors import coverage, match, pretrained_vocab, read_vectors
from rnncli.text.vocab import UNK


def table_name(task):
    """The parameter that holds the input word vectors."""
    return task_named(task).embedding


class Pretrained:
    """Vectors matched to a data set's training vocabulary, for one task."""

    def __init__(self, vectors, data_meta, task, train_ids):
        vocab = data_meta["vocab"]
        self.vectors, self.vocab_size = vectors, len(vocab)
        self.rows, rules = match(vocab, vectors)
        self.extra = pretrained_vocab(vocab, vectors) if task_named(task).pretrained_rows else []
        self.report = {"file": os.path.basename(vectors.path), "words": len(vectors.words), "dim": vectors.dim,
                       **coverage(rules, np.bincount(train_ids, minlength=len(vocab))), "rows_added": len(self.extra)}

    def found(self):
        """(V,) bool: the training words whose row starts from a vector."""
        return self.rows >= 0

    def fill(self, E):
        """Write the vectors into the model's table E (V + added rows, D) in place."""
        found = self.found()
        E[: self.vocab_size][found] = self.vectors.matrix[self.rows[found]]
        if self.extra:
            E[self.vocab_size :] = self.vectors.matrix[[self.vectors.index[w] for w in self.extra]]


def model_data_meta(ds_meta, resumed_meta, pretrained):
    """The data meta a model is built from and saved with: the data set's, plus the pretrained rows
    (from the vectors of a fresh run, or from the checkpoint of a resumed one: no file read again)."""
    meta = {k: v for k, v in ds_meta.items() if k not in ("sources", "pretrained_vocab")}
    if resumed_meta is not None:
        meta.update({k: v for k, v in resumed_meta["data"].items() if k.startswith("pretrained")})
    elif pretrained is not None:
        meta.update(pretrained_vocab=pretrained.extra, pretrained=pretrained.report,
                    pretrained_found=np.packbits(pretrained.found()).tobytes().hex())
    return meta


def vector_rows(data_meta):
    """(V + added,) bool: the rows of a model's table that start from a vector (the training words found,
    then every added row). A checkpoint that did not record them froze its whole table: every row."""
    V, added = len(data_meta["vocab"]), len(data_meta.get("pretrained_vocab") or ())
    if "pretrained_found" not in data_meta:
        return np.ones(V + added, bool)
    found = np.unpackbits(np.frombuffer(bytes.fromhex(data_meta["pretrained_found"]), np.uint8))[:V].astype(bool)
    return np.r_[found, np.ones(added, bool)]


def attach_vectors(model, task, cfg, pretrained, data_meta):
    """Fill the model's table from the vectors (a fresh run), make its updates sparse, and keep the
    rows that came from the vectors fixed if asked (--freeze-embeddings)."""
    if pretrained is not None:
        pretrained.fill(model.params[table_name(task)])
    if not cfg.embeddings:
        return
    embedding = getattr(model, table_name(task).split(".")[0])  # the layer that owns the table
    embedding.sparse = True  # a large table: a step updates the rows its batch read, not all
    if cfg.freeze_embeddings:
        embedding.frozen = vector_rows(data_meta)


def reach_cut_words(split, data_meta):
    """A tagging split whose <unk> tokens are words --min-freq/--max-size cut: they are spelled out
    in its characters, so each gets its pretrained row if the vectors know it, in training as at
    prediction time. Other splits (no characters kept) come back as they are."""
    if split is None or split.chars is None or not data_meta.get("pretrained_vocab"):
        return split
    unknown = np.flatnonzero(split.ids == UNK)
    if not len(unknown):
        return split
    chars = data_meta["chars"]
    words = ["".join(chars[c] for c in split.chars[split.char_offsets[p] : split.char_offsets[p + 1]])
             for p in unknown]
    ids = split.ids.astype(np.int32)  # a copy wide enough for the rows the vectors add (ids are stored compact)
    ids[unknown] = word_encoder(data_meta).encode([w.lower() for w in words] if data_meta["lower"] else words)
    return dataclasses.replace(split, ids=ids)


def prepare(cfg, ds, task, embed_given):
    """-> (cfg with the vectors' embedding size, Pretrained, notes). embed_given: the --embed the user
    typed (None if not): one that differs from the vectors is refused; a config's or the default is
    replaced, and said so."""
    if cfg.freeze_embeddings and not cfg.embeddings:
        raise UsageError("--freeze-embeddings needs --embeddings (there is nothing pretrained to keep fixed)")
    if not cfg.embeddings:
        return cfg, None, []
    if ds.meta["level"] != "word":
        raise UsageError(f"--embeddings gives word vectors, but this data set is read by {ds.meta['level']}s "
                         "(tokenize --level word)")
    vectors = read_vectors(cfg.embeddings)
    if embed_given is not None and embed_given != vectors.dim:
        raise UsageError(f"--embed {embed_given} differs from the {vectors.dim} dimensions of {cfg.embeddings}; "
                         "leave --embed out to take theirs")
    notes = []
    if cfg.embed != vectors.dim:
        notes.append(f"embedding size {vectors.dim}, from {cfg.embeddings} (instead of {cfg.embed})")
    cfg = dataclasses.replace(cfg, embed=vectors.dim)
    return cfg, Pretrained(vectors, ds.meta, task, ds.train.ids), notes
