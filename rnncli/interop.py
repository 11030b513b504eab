"""Exchange recurrent weights with PyTorch's nn.RNN / nn.GRU / nn.LSTM state dicts.

Works on plain NumPy arrays (convert tensors with .numpy() / torch.from_numpy); PyTorch is
never imported here. The mapping (docs/checkpoint.md):
    W_ax <-> weight_ih_l{k}[_reverse]    W_aa <-> weight_hh_l{k}[_reverse]
    b    <-> bias_ih_l{k} + bias_hh_l{k}  (GRU n block: bias_ih only; its bias_hh part is b_an)
The GRU's update block is negated both ways: rnncli stores the lecture's Gu, PyTorch z = 1 - Gu.
"""

import numpy as np

from rnncli.nn.names import layer_name


def _negate_update_block(W, H):
    W = W.copy()
    W[H : 2 * H] *= -1
    return W


def to_torch(stack_params, cell, hidden, reset_after=True):
    """{"l0.W_ax": ..., ...} (a RecurrentStack's params) -> PyTorch state-dict names and arrays."""
    if cell == "gru" and not reset_after:
        raise ValueError("PyTorch has no GRU with the reset gate before the recurrent product")
    out = {}
    for name, arr in stack_params.items():
        layer, key = name.split(".")
        k, reverse = layer[1:].partition("_")[0], "_reverse" if layer.endswith("_reverse") else ""
        suffix = f"_l{k}{reverse}"
        if cell == "gru" and key in ("W_ax", "W_aa", "b"):
            arr = _negate_update_block(arr, hidden)
        if key == "W_ax":
            out["weight_ih" + suffix] = arr.copy()
        elif key == "W_aa":
            out["weight_hh" + suffix] = arr.copy()
        elif key == "b":
            out["bias_ih" + suffix] = arr.copy()
            out.setdefault("bias_hh" + suffix, np.zeros_like(arr))
        elif key == "b_an":
            bias_hh = out.setdefault("bias_hh" + suffix, np.zeros(3 * hidden, arr.dtype))
            bias_hh[2 * hidden :] = arr
    return out


def from_torch(state_dict, cell, hidden):
    """PyTorch state-dict arrays -> RecurrentStack parameter names and arrays."""
    out = {}
    for name, arr in state_dict.items():
        kind, _, rest = name.rpartition("_l")
        k, _, reverse = rest.partition("_")
        layer = layer_name(int(k), bool(reverse))
        arr = np.asarray(arr)
        if kind == "weight_ih":
            out[f"{layer}.W_ax"] = arr
        elif kind == "weight_hh":
            out[f"{layer}.W_aa"] = arr
    for layer in {n.split(".")[0] for n in out}:
        suffix = "_l" + layer[1:]
        b_ih, b_hh = np.asarray(state_dict["bias_ih" + suffix]), np.asarray(state_dict["bias_hh" + suffix])
        if cell == "gru":
            b = b_ih.copy()
            b[: 2 * hidden] += b_hh[: 2 * hidden]
            out[f"{layer}.b"] = b
            out[f"{layer}.b_an"] = b_hh[2 * hidden :].copy()
        else:
            out[f"{layer}.b"] = b_ih + b_hh
    if cell == "gru":
        for name in list(out):
            if name.endswith((".W_ax", ".W_aa", ".b")):
                out[name] = _negate_update_block(out[name], hidden)
    return out
