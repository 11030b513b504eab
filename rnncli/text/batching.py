"""Batches, time-major (T, B), for the two ways a model reads data.

Language models read one long stream (text/dataset.py: every sequence ends with <eos>), cut
as char-rnn does it into `batch_size` contiguous streams, each read in chunks of `seq_len`
steps; the hidden state is carried from one chunk to the next (truncated BPTT).
Classifiers and taggers read whole sequences, bucketed by length, padded and masked.

On several workers (parallel/) every worker plans the same global batches and reads its share:
`share(n)` is the slice of a batch of n streams or sequences that is its own.
"""

import math

import numpy as np

from rnncli.errors import RnncliError
from rnncli.text.vocab import BOS, EOS, PAD

# ---------------------------------------------------------------- language models: one stream


def stream_ids(split, fmt):
    """The split as one stream of ids (N,): plain text already ends every sequence with <eos>;
    tsv/conll sequences (a language model over their words) get one appended."""
    if fmt == "text":
        return split.ids
    return np.insert(split.ids, split.offsets[1:].astype(np.int64), EOS).astype(np.int32)  # (np.insert adds to them)


def lm_streams(ids, batch_size):
    """ids (N,) -> inputs and targets (B, n): B contiguous streams, targets shifted by one."""
    n = (len(ids) - 1) // batch_size
    if n < 1:
        raise RnncliError(f"the data ({len(ids)} tokens) is too small for --batch-size {batch_size}")
    x = ids[: n * batch_size].reshape(batch_size, n)
    y = ids[1 : n * batch_size + 1].reshape(batch_size, n)
    return x, y


def lm_chunks(x, y, seq_len, start=0):
    """Yield (chunk number, inputs (T, B), targets (T, B)), time-major, from chunk `start` on."""
    n = x.shape[1]
    for k in range(start, math.ceil(n / seq_len)):
        a, b = k * seq_len, min((k + 1) * seq_len, n)
        yield k, np.ascontiguousarray(x[:, a:b].T), np.ascontiguousarray(y[:, a:b].T)


class StreamBatches:
    """An epoch of language-model chunks; the state is carried between the chunks of an epoch.
    part: the streams this worker reads (a slice of the batch_size streams), or all."""

    def __init__(self, ids, batch_size, seq_len, part=slice(None)):
        x, y = lm_streams(ids, batch_size)
        self.x, self.y = x[part], y[part]
        self.seq_len = seq_len
        self.per_epoch = math.ceil(self.x.shape[1] / seq_len)

    def steps_for(self, epochs):
        return epochs * self.per_epoch

    def epoch(self, epoch, start):
        """Yield (chunk number, (inputs (T, B), targets (T, B))) from chunk `start` on."""
        for k, x, y in lm_chunks(self.x, self.y, self.seq_len, start):
            yield k, (x, y)


# ---------------------------------------------------------------- whole sequences: buckets


class SequenceBatches:
    """Bucketed batches of whole sequences; the order of epoch e comes from seed and e alone."""

    def __init__(self, split, batch_size, seed, make, share=None, augment=None):
        """make(split, index) -> a batch in its model's layout (labelled_batch, paired_batch, ...),
        its inputs and mask first; augment(inputs, mask, index, epoch) -> the inputs as training
        reads them (frames/augment.py), or None."""
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.make, self.share, self.augment = make, share, augment
        # (2 bytes a sequence where they fit: a classifier's corpus can hold tens of millions)
        self.lengths = split.lengths(np.uint16 if split.longest() < 1 << 16 else np.uint32)
        self.per_epoch = math.ceil(split.num_sequences / batch_size)
        self._planned = (None, None)  # (epoch, its EpochBatches): planned once, however often resumed

    def steps_for(self, epochs):
        return epochs * self.per_epoch

    def epoch(self, epoch, start):
        """Yield (batch number, the task model's loss arguments) from batch `start` on."""
        if self._planned[0] != epoch:
            self._planned = epoch, bucketed_batches(self.lengths, self.batch_size,
                                                    np.random.default_rng([self.seed, epoch]))
        order = self._planned[1]
        for k in range(start, len(order)):
            # this worker's sequences of the batch, padded to their own longest (None: no share)
            mine = order[k] if self.share is None else order[k][self.share(len(order[k]))]
            batch = self.make(self.split, mine) if len(mine) else None
            if batch is not None and self.augment is not None:
                batch = (self.augment(batch[0], batch[1], mine, epoch), *batch[1:])
            yield k, batch


class TextChunks:
    """A conditional language model's batches: bucketed texts, each batch read in chunks of at most
    seq_len steps (truncated BPTT inside long texts, such as tunes); the order of epoch e comes
    from seed and e alone. How many chunks an epoch holds depends on which texts share a batch,
    so it is planned per epoch.

    label_dropout: the share of texts read with the label id `no_label` instead of their own. The
    choice is made per batch of texts from (seed, epoch, the batch's place in the plan), so all the
    chunks of a text agree and a run resumed mid-batch makes the same choice."""

    def __init__(self, split, batch_size, seed, seq_len, label_dropout=0.0, no_label=None, share=None):
        self.split, self.batch_size, self.seed, self.seq_len = split, batch_size, seed, seq_len
        self.label_dropout, self.no_label, self.share = label_dropout, no_label, share
        self.lengths = split.lengths() + 1  # framed: <eos> x1..xn in, x1..xn <eos> out
        self._plans = {}
        self.per_epoch = len(self.plan(0))

    def plan(self, epoch):
        """-> [(batch's text indices, chunk number within the batch)] in the order of the epoch."""
        if epoch not in self._plans:
            order = bucketed_batches(self.lengths, self.batch_size, np.random.default_rng([self.seed, epoch]))
            self._plans = {epoch: [(index, c) for index in order
                                   for c in range(math.ceil(self.lengths[index].max() / self.seq_len))]}
        return self._plans[epoch]

    def steps_for(self, epochs):
        if self.lengths.max() <= self.seq_len:  # every batch is one chunk
            return epochs * math.ceil(len(self.lengths) / self.batch_size)
        return sum(len(self.plan(e)) for e in range(epochs))

    def epoch(self, epoch, start):
        """Yield (chunk number, (inputs, mask, labels, targets, first)) from chunk `start` on: the
        model's loss arguments for one chunk, first=True where a batch of texts starts (None where
        this worker has no share of the batch; a chunk with no steps after its texts ended)."""
        plan = self.plan(epoch)
        self.per_epoch = len(plan)
        framed, framed_for = None, None
        for k in range(start, len(plan)):
            index, c = plan[k]
            if framed_for is not index:
                framed, framed_for = self._framed(index, epoch, k - c), index
            if framed is None:
                yield k, None
                continue
            inputs, mask, labels, targets = framed
            a, b = c * self.seq_len, (c + 1) * self.seq_len
            yield k, (inputs[a:b], mask[a:b], labels, targets[a:b], c == 0)

    def _framed(self, index, epoch, first):
        """The batch of texts `index`, whose first chunk is number `first` of the epoch's plan
        (this worker's share of it; None if it has none)."""
        drop = None
        if self.label_dropout > 0:  # drawn for the whole batch, so that a share gets the same draws
            drop = np.random.default_rng([self.seed, epoch, first, 2]).random(len(index)) < self.label_dropout
        if self.share is not None:
            mine = self.share(len(index))
            index, drop = index[mine], None if drop is None else drop[mine]
            if len(index) == 0:
                return None
        inputs, mask, labels, targets = framed_texts(self.split, index)
        if drop is not None:
            labels = np.where(drop, self.no_label, labels)
        return inputs, mask, labels, targets


# The layouts of a batch of whole sequences, as the models' losses take them (each Task picks its
# own); for frame input, frames (T, B, D) stand where the ids would.

def _inputs(split, index):
    """ids (T, B) or frames (T, B, D), mask (T, B), tags (T, B) or None, positions."""
    ids, mask, tags, _, pos = pad_batch(split, index)
    return (ids if split.frames is None else padded_frames(split, pos, mask)), mask, tags, pos


def labelled_batch(split, index):
    """(inputs, mask, labels (B,) or None): a classifier's."""
    ids, mask, _, _ = _inputs(split, index)
    return ids, mask, None if split.labels is None else split.labels[index]


def scored_batch(split, index):
    """(inputs, mask, scores (B, K) or None): a regression's."""
    ids, mask, _, _ = _inputs(split, index)
    return ids, mask, None if split.scores is None else split.scores[index]


def tagged_batch(split, index, char_features=False):
    """(inputs, mask, tags (T, B), chars, char mask): a tagger's (chars None without char_features)."""
    ids, mask, tags, pos = _inputs(split, index)
    chars, cmask = char_batch(split, pos, mask) if char_features else (None, None)
    return ids, mask, tags, chars, cmask


def paired_batch(split, index):
    """(source, source mask, target in, target out, target mask): an encoder-decoder's."""
    ids, mask, _, _ = _inputs(split, index)
    return (ids, mask, *pad_targets(split, index))


def bucketed_batches(lengths, batch_size, rng=None):
    """Lists of sequence indices whose lengths are close, so little time goes to padding.

    With rng: sequences are shuffled, sorted by length within windows of 50 batches, and the
    batches themselves shuffled (an EpochBatches); without: sorted by length (evaluation).
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return EpochBatches(lengths, batch_size, rng)


class EpochBatches:
    """An epoch's bucketed batches, held as one array of sequence indices (4 bytes a sequence)
    and the order of the batches, rather than as a list of arrays: a classifier's corpus of
    millions of examples is planned in a few tens of megabytes. batches[k] is the k-th batch."""

    def __init__(self, lengths, batch_size, rng):
        n = len(lengths)
        order = np.arange(n, dtype=np.uint32)
        rng.shuffle(order)  # in place: the same draw as rng.permutation(n), in half its memory
        window = batch_size * 50
        for i in range(0, n, window):
            part = order[i : i + window]
            part[:] = part[np.argsort(lengths[part], kind="stable")]
        self.order, self.batch_size = order, batch_size
        self.batch_order = rng.permutation(math.ceil(n / batch_size))

    def __len__(self):
        return len(self.batch_order)

    def __getitem__(self, k):
        j = int(self.batch_order[k]) * self.batch_size
        return self.order[j : j + self.batch_size].astype(np.int64)

    def __iter__(self):
        return (self[k] for k in range(len(self)))


def pad_batch(split, index, max_len=None):
    """Sequences `index` of a Split -> ids (T, B), mask (T, B) float32, tags (T, B) or None, lengths (B,)."""
    starts, ends = split.offsets[index], split.offsets[index + 1]
    lengths = ends - starts
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    T = max(int(lengths.max()), 1)
    t = np.arange(T)[:, None]
    mask = t < lengths[None, :]
    pos = np.where(mask, starts[None, :] + t, 0)
    ids = np.where(mask, split.ids[pos], PAD).astype(np.int32)
    tags = None if split.tags is None else np.where(mask, split.tags[pos], 0).astype(np.int32)
    return ids, mask.astype(np.float32), tags, lengths, pos


def padded_frames(split, pos, mask):
    """Inputs that are numbers: x (T, B, D) at pad_batch's positions, zeros at padded steps."""
    return split.frames[pos] * mask[:, :, None]


def padded_inputs(split, index):
    """The sequences `index` as a model reads them: ids (T, B), or frames (T, B, D); and the mask (T, B)."""
    ids, mask, _, _, pos = pad_batch(split, index)
    return (ids if split.frames is None else padded_frames(split, pos, mask)), mask


def _framed(flat, starts, ends, first):
    """Sequences flat[starts[b]:ends[b]] framed for teacher forcing: inputs `first` y1..yn,
    outputs y1..yn <eos>, each (T, B) with T = the longest n + 1, and their mask (T, B) float32."""
    lengths = ends - starts + 1
    T = int(lengths.max())
    t = np.arange(T)[:, None]
    mask = t < lengths[None, :]
    inside = t < (lengths - 1)[None, :]  # a real token at this position
    tokens = np.where(inside, flat[np.where(inside, starts[None, :] + t, 0)], PAD)
    outputs = np.where(inside, tokens, np.where(mask, EOS, PAD)).astype(np.int32)
    inputs = np.full((T, len(starts)), PAD, np.int32)
    inputs[0] = first
    inputs[1:] = np.where(mask[1:], tokens[:-1], PAD)
    return inputs, outputs, mask.astype(np.float32)


def framed_texts(split, index):
    """Texts for a conditional language model, each read on its own: inputs <eos> x1..xn,
    targets x1..xn <eos>, as (inputs, mask, labels (B,), targets): the model's loss arguments."""
    inputs, targets, mask = _framed(split.ids, split.offsets[index], split.offsets[index + 1], EOS)
    return inputs, mask, split.labels[index], targets


def pad_targets(split, index):
    """Target sides framed for teacher forcing: inputs <bos> y1..yn, outputs y1..yn <eos>,
    each (T, B) with T = the longest n + 1, and their mask (T, B)."""
    return _framed(split.targets, split.target_offsets[index], split.target_offsets[index + 1], BOS)


def char_batch(split, pos, mask, max_chars=20):
    """Characters of each token position of a padded batch: chars (Lc, T*B), char mask (Lc, T*B).
    Words are cut to max_chars (long tokens are rare and their prefix carries the signal)."""
    flat_pos = pos.reshape(-1)
    real = mask.reshape(-1) > 0
    c_start = split.char_offsets[flat_pos]
    c_len = np.where(real, np.minimum(split.char_offsets[flat_pos + 1] - c_start, max_chars), 0)
    Lc = max(int(c_len.max()), 1)
    t = np.arange(Lc)[:, None]
    cmask = t < c_len[None, :]
    chars = np.where(cmask, split.chars[np.where(cmask, c_start[None, :] + t, 0)], PAD).astype(np.int32)
    return chars, cmask.astype(np.float32)
