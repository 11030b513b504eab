"""An encoder-decoder's reading of its source: words or frames in, memory and final states out.

    token ids (S, B) -> embedding E x<t>                                  (translation)
    frames (S, B, D) -> [k neighbouring frames joined: (S/k, B, k D)] -> W x<t> + b   (speech)
    -> the encoder stack (nn/stack.py; bidirectional, and a pyramid that halves the rate between
       layers) -> memory m<1..S'> (S', B, He), the attention's keys, and each layer's final states
"""

from rnncli.nn.layers import Embedding, FrameInput
from rnncli.nn.names import prefixed
from rnncli.nn.reduce import join_steps, reduced_mask
from rnncli.nn.stack import RecurrentStack


def source_reader(vocab_size, embed, rng, dtype, frame_dim=None, input_projection=None, stack_frames=1):
    """What reads the source's steps: an embedding of its words, or (frame_dim: frames of that many
    numbers) a projection of stack_frames joined frames, input_projection wide (None: embed, 0: none)."""
    if frame_dim is None:
        return Embedding(vocab_size, embed, rng, dtype)
    return FrameInput(frame_dim * stack_frames, embed if input_projection is None else input_projection, rng, dtype)


class SourceEncoder:
    """Parameters under the model's names: "source_embedding.E" (words) or "input.W", "input.b"
    (frames), and "encoder.*" (the stack's)."""

    def __init__(self, reader, cell, hidden, rng, layers=1, bidirectional=False, pyramid=0, stack_frames=1,
                 **common):
        """reader: source_reader's; stack_frames: frames joined into one step; common: the stack's
        dropout, dtype, activation, reset_after."""
        self.frames, self.stack_frames = isinstance(reader, FrameInput), stack_frames
        if self.frames:
            self.input = reader
            self.params = prefixed("input", reader.params)
        else:
            self.embedding = reader
            self.params = {"source_embedding.E": reader.params["E"]}
        self.stack = RecurrentStack(cell, reader.width, hidden, rng, num_layers=layers, bidirectional=bidirectional,
                                    pyramid=pyramid, **common)
        self.params.update(prefixed("encoder", self.stack.params))

    @property
    def reduction(self):
        """How many source steps (frames) one step of the stack's top layer stands for."""
        return (self.stack_frames if self.frames else 1) * 2**self.stack.pyramid

    def memory_mask(self, source_mask):
        """source mask (S, B) -> the mask of the memory, which attention reads: as it is for words;
        for frames shortened by stacking and the pyramid."""
        mask = reduced_mask(source_mask, self.stack_frames) if self.frames and self.stack_frames > 1 else source_mask
        return self.stack.output_mask(mask)

    def forward(self, source, source_mask, train=False, rng=None):
        """source ids (S, B) or frames (S, B, D) -> memory (S', B, He), final states, what backward needs."""
        read, mask = source, source_mask
        if not self.frames:
            x = self.embedding.forward(source)  # (S, B, E)
        else:
            if self.stack_frames > 1:
                read, mask = join_steps(source, source_mask, self.stack_frames)  # (S/k, B, k D)
            x = self.input.forward(read)  # (S/k, B, E)
        memory, finals, stack_cache = self.stack.forward(x, None, mask, train=train, rng=rng)
        return memory, finals, (read, stack_cache)

    def backward(self, d_memory, d_finals, cache):
        """d of the memory and of the final states -> grads by the model's names."""
        read, stack_cache = cache
        dx, _, grads = self.stack.backward(d_memory, d_finals, stack_cache)
        grads = prefixed("encoder", grads)
        if self.frames:
            grads.update(prefixed("input", self.input.backward(dx, read)))
        else:
            grads["source_embedding.E"] = self.embedding.backward(dx, read)["E"]
        return grads
