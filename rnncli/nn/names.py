"""How models name their parameters: every part names its own arrays ("W", "b", "l0.W_ax"), and
its owner puts the part's name in front ("head.W", "rnn.l0.W_ax"), for the parameters and for their
gradients alike. A checkpoint, the optimizer and the exporters see only the full dotted names."""


def prefixed(prefix, arrays):
    """{name: array} of one part -> {prefix.name: array}, the same arrays (not copies)."""
    return {f"{prefix}.{name}": arr for name, arr in arrays.items()}


def layer_name(k, direction=0):
    """The name of a recurrent stack's layer k, reading forward (direction 0) or backward (1)."""
    return f"l{k}_reverse" if direction else f"l{k}"
