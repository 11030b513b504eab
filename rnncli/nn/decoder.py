"""The decoder of an encoder-decoder without input feeding: the stack over the whole target at
once, then (optionally) attention over the memory at every step, then dropout.

    h<1..T>  = decoder stack (E y<0..T-1>, a<0> from the bridge)
    h~<t>    = tanh(W_c [c<t>; h<t>] + b_c),  c<t> = sum_s alpha<t,s> m<s>      (nn/attention.py)
    h_in<t>  = dropout(h~<t>)  (or of h<t> without attention): what the output layer reads

The same interface as nn/input_feeding.InputFeedingDecoder, which runs the steps one at a time.
"""

from rnncli.nn.layers import dropout_mask


class AttentiveDecoder:
    """Holds no parameters of its own: `stack` (a unidirectional RecurrentStack) and `attention`
    (an Attention, or None) keep theirs; backward returns each one's gradients by its own names."""

    def __init__(self, stack, attention=None, dropout=0.0):
        self.stack, self.attention, self.dropout, self.dtype = stack, attention, dropout, stack.dtype

    def forward(self, y, init, target_mask, memory, memory_mask, train=False, rng=None):
        """y (T, B, E) embedded previous words, init (one state tuple per layer), target_mask (T, B),
        memory (S, B, He), memory_mask (S, B) -> h_in (T, B, Hd), the final states, attention
        weights alpha (B, T, S) (None without attention), and the cache for backward."""
        h, finals, stack_cache = self.stack.forward(y, init, target_mask, train=train, rng=rng)
        alpha = att_cache = None
        if self.attention:
            h, alpha, att_cache = self.attention.forward(h, memory, memory_mask)
        drop = dropout_mask(rng, h.shape, self.dropout, self.dtype) if train else None
        return (h * drop if drop is not None else h), finals, alpha, (stack_cache, att_cache, drop)

    def backward(self, d_out, cache):
        """d_out (T, B, Hd) of h_in -> dy (T, B, E), d_init (one tuple per layer), d_memory (None
        without attention), the stack's grads and the attention's (empty without it)."""
        stack_cache, att_cache, drop = cache
        if drop is not None:
            d_out = d_out * drop
        d_memory, att_grads = None, {}
        if self.attention:
            d_out, d_memory, att_grads = self.attention.backward(d_out, att_cache)
        dy, d_init, stack_grads = self.stack.backward(d_out, None, stack_cache)
        return dy, d_init, d_memory, stack_grads, att_grads

    def step(self, y_t, states, memory, memory_mask, prepared):
        """One decoding step: y_t (N, E), states -> h (N, Hd) for the output layer, the new states.
        prepared: attention.prepare(memory)."""
        h, states = self.stack.step(y_t, states)
        if self.attention:
            h = self.attention.forward(h[None], memory, memory_mask, prepared)[0][0]
        return h, states
