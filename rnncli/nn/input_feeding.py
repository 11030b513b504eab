"""Input feeding (Luong et al. 2015, section 3.3): the decoder reads what it attended to last.

Without it, the decoder's RNN runs over the whole target first and attention reads its outputs
afterwards (nn/attention.py): each step's alignment is made without knowing the previous ones.
With it, step t reads its previous word beside the previous attentional state:

    x<t>  = [E y<t-1>; h~<t-1>]                       h~<0> = 0
    h<t>  = decoder stack (x<t>, its states)           every layer one step
    h~<t> = tanh(W_c [c<t>; h<t>] + b_c)               attention over the memory at step t
    h~<t> is dropped out (training), fed to the output layer and to step t+1

So the steps cannot be batched over time: the forward pass runs the decoder's cells one step at a
time (their ordinary forward on sequences of length 1), and the backward pass runs back through
the same steps, handing each step's d h~<t-1> and d states to the step before. Padding: a padded
step leaves every state unchanged (the cells' masks), and nothing after it is real.

Dropout sits where the plain decoder has it: on the input of layers above the first, and on h~<t>
(the dropped h~<t> is what the output layer reads and what step t+1 is fed, as OpenNMT feeds it).
"""

import numpy as np

from rnncli.nn.layers import dropout_mask
from rnncli.nn.names import layer_name, prefixed


class InputFeedingDecoder:
    """A unidirectional decoder stack whose first layer reads [E y; h~] (input size E + Hd) and
    attention, run step by step. Holds no parameters of its own: `stack` (the decoder's
    RecurrentStack) and `attention` (its Attention) keep theirs, and its backward names their
    gradients as they name their parameters."""

    def __init__(self, stack, attention, dropout=0.0):
        self.stack, self.attention, self.dropout = stack, attention, dropout
        self.dtype, self.hidden_size = stack.dtype, stack.hidden_size

    def initial_feed(self, batch):
        """h~<0>: zeros (B, Hd)."""
        return np.zeros((batch, self.hidden_size), self.dtype)

    def forward(self, y, init, target_mask, memory, memory_mask, train=False, rng=None):
        """y (T, B, E) embedded previous words, init (one state tuple per layer), target_mask (T, B),
        memory (S, B, He), memory_mask (S, B) -> h~ (T, B, Hd) (dropped out in training), the final
        states, attention weights alpha (B, T, S), and the cache for backward."""
        T, B, _ = y.shape
        prepared = self.attention.prepare(memory)
        states, feed = list(init), self.initial_feed(B)
        outs, alphas, caches = np.empty((T, B, self.hidden_size), self.dtype), [], []
        for t in range(T):
            # x<t> = [E y<t-1>; h~<t-1>], as a sequence of one step
            inp = np.concatenate([y[t], feed], axis=-1)[None]  # (1, B, E + Hd)
            mask_t = target_mask[t : t + 1]
            layer_caches = []
            for k, cells in enumerate(self.stack.layers):
                drop = dropout_mask(rng, inp.shape, self.dropout, self.dtype) if (train and k > 0) else None
                if drop is not None:
                    inp = inp * drop
                inp, states[k], cache = cells[0].forward(inp, states[k], mask_t)
                layer_caches.append((drop, cache))
            # h~<t> = tanh(W_c [c<t>; h<t>] + b_c)
            h_att, alpha, att_cache = self.attention.forward(inp, memory, memory_mask, prepared)
            drop = dropout_mask(rng, h_att.shape, self.dropout, self.dtype) if train else None
            feed = (h_att * drop if drop is not None else h_att)[0]  # (B, Hd): to the output and to step t+1
            outs[t] = feed
            alphas.append(alpha[:, 0])
            caches.append((layer_caches, att_cache, drop))
        return outs, states, np.stack(alphas, axis=1), (caches, y.shape[2], prepared[0])

    def backward(self, d_out, cache):
        """d_out (T, B, Hd) of the fed h~ -> dy (T, B, E), d_init (one tuple per layer), d_memory
        (S, B, He), the stack's grads {"l0.W_ax": ...} and the attention's {"W_c": ...}, each by its
        own names (the owner prefixes them)."""
        caches, E, M = cache  # M: the memory batch-major (B, S, He), as attention read it
        T, B, _ = d_out.shape
        dy = np.empty((T, B, E), self.dtype)
        d_states = [None] * self.stack.num_layers  # d of the states after step t (none after the last)
        d_feed = np.zeros((B, self.hidden_size), self.dtype)  # d h~<t> from step t+1's input
        d_memory, d_keys, att_grads = None, None, {}
        layer_grads = [{} for _ in range(self.stack.num_layers)]  # each layer's cell's, by its own names

        def add(grads, name, g):  # a parameter's gradient sums over the steps
            grads[name] = g if name not in grads else grads[name] + g

        for t in reversed(range(T)):
            layer_caches, att_cache, drop = caches[t]
            d = d_out[t] + d_feed  # h~<t> went to the output layer and to step t+1
            if drop is not None:
                d = d * drop[0]
            # what flows through the attention keys is summed over the steps and taken back once, below
            d_top, dM, step_grads, dK = self.attention.backward(d[None], att_cache, keys_later=True)
            d_memory = dM if d_memory is None else d_memory + dM
            if dK is not None:
                d_keys = dK if d_keys is None else d_keys + dK
            for name, g in step_grads.items():
                add(att_grads, name, g)
            for k in reversed(range(self.stack.num_layers)):
                layer_drop, cell_cache = layer_caches[k]
                d_top, d_states[k], cell_grads = self.stack.layers[k][0].backward(d_top, d_states[k], cell_cache)
                for name, g in cell_grads.items():
                    add(layer_grads[k], name, g)
                if layer_drop is not None:
                    d_top = d_top * layer_drop
            # d_top is now d of x<t> = [E y<t-1>; h~<t-1>]
            dy[t], d_feed = d_top[0, :, :E], d_top[0, :, E:]
        if d_keys is not None:  # keys = W m<s>, the same for every step
            key_grads, dM = self.attention.keys_backward(d_keys, M)
            d_memory += dM.transpose(1, 0, 2)
            for name, g in key_grads.items():
                add(att_grads, name, g)
        stack_grads = {}
        for k, grads in enumerate(layer_grads):  # named as the stack names its layers, once, after the loop
            stack_grads.update(prefixed(layer_name(k), grads))
        return dy, d_states, d_memory, stack_grads, att_grads

    def step(self, y_t, states, feed, memory, memory_mask, prepared):
        """One decoding step: y_t (N, E), states (one tuple per layer), feed h~<t-1> (N, Hd) ->
        h~<t> (N, Hd), the new states. prepared: attention.prepare(memory)."""
        h, states = self.stack.step(np.concatenate([y_t, feed], axis=-1), states)
        return self.attention.forward(h[None], memory, memory_mask, prepared)[0][0], states
