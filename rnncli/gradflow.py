"""How far back a loss reaches: the lecture's vanishing gradients, measured on real text.

A language model reads T tokens x<1..T>; take the loss of its next prediction,
L = -log p(y | x<1..T>) for each sequence of the batch, and ask how strongly it depends on the
state d steps earlier:  g(d) = || dL / da<T-d> ||  (and || dL / dc<T-d> || for an LSTM's cell),
averaged over the batch, the states of every layer together. In a vanilla RNN each step back
multiplies the gradient by W_aa^T diag(g'), so g(d) shrinks geometrically; the GRU's update gate
and the LSTM's forget gate give it a path with factors near 1.

Exact, not estimated: for every d the model runs from its states at step T - d over the last d
tokens, and the backward pass's gradient with respect to those starting states is dL/da<T-d>.
"""

import numpy as np

from rnncli.nn.functional import softmax


def states_along(model, ids):
    """ids (T, B) -> [states before step 1, after step 1, ..., after step T] (one list per layer)."""
    states = model.rnn.initial_state(ids.shape[1])
    out = [states]
    E = model.embedding.params["E"]
    for t in range(ids.shape[0]):
        _, states = model.rnn.step(E[ids[t]], states)
        out.append(states)
    return out


def state_gradients(model, ids, next_ids, distances=None):
    """ids (T, B) read, next_ids (B,) predicted after them -> {"distance": (n,), "a": (n,), "c": (n,) or
    None}: the batch mean of each sequence's gradient norm at each distance d = 1..T (or `distances`)."""
    T, B = ids.shape
    distances = list(range(1, T + 1)) if distances is None else list(distances)
    along = states_along(model, ids)
    a_norms, c_norms = [], []
    for d in distances:
        start = [tuple(np.array(s, copy=True) for s in layer) for layer in along[T - d]]
        logits, _, (_, cache, _, h_in) = model.forward(ids[T - d :], start)
        d_logits = np.zeros_like(logits)
        d_logits[-1] = softmax(logits[-1].astype(np.float64)).astype(logits.dtype)  # sum over the batch of
        d_logits[-1, np.arange(B), next_ids] -= 1.0  # each sequence's own -log p(y)
        dh, _ = model.head.backward(d_logits, h_in)
        _, d_states, _ = model.rnn.backward(dh, None, cache)
        a_norms.append(np.sqrt(sum((s[0].astype(np.float64) ** 2).sum(axis=1) for s in d_states)).mean())
        if len(d_states[0]) > 1:
            c_norms.append(np.sqrt(sum((s[1].astype(np.float64) ** 2).sum(axis=1) for s in d_states)).mean())
    return {"distance": np.array(distances), "a": np.array(a_norms), "c": np.array(c_norms) if c_norms else None}


def windows(stream, steps, batch, rng):
    """`batch` random windows of steps + 1 tokens from a stream of ids: (ids (steps, B), next (B,))."""
    if len(stream) < steps + 2:
        raise ValueError(f"the data holds {len(stream)} tokens; --steps {steps} needs at least {steps + 2}")
    starts = rng.integers(0, len(stream) - steps - 1, batch)
    block = np.stack([stream[s : s + steps + 1] for s in starts], axis=1)  # (steps + 1, B)
    return np.ascontiguousarray(block[:-1]), block[-1]
