"""An rnncli model as a PyTorch state dict (names and layouts PyTorch's modules load), and back.

    <x>_embedding.E / embedding.E    -> <x>.weight                  nn.Embedding
    <stack>.l{k}[_reverse].W_ax ...  -> <stack>.weight_ih_l{k}[_reverse], weight_hh_..., bias_ih_..., bias_hh_...
                                        nn.RNN / nn.GRU / nn.LSTM (rnncli/interop.py: the GRU's update
                                        block negated, the one bias split as PyTorch keeps two)
    char_cnn.W (F, 3*C)              -> char_cnn.weight (F, C, 3)   nn.Conv1d(C, F, 3, padding=1)
    <x>.W, <x>.b                     -> <x>.weight, <x>.bias        nn.Linear
    anything else (crf.start, attention.W_a, ...) keeps its name: plain tensors.
Saved with safetensors (its NumPy API: no torch needed); the file's metadata holds the task, the
configuration and the vocabularies under "rnncli", so `import` can check what it is given.
"""

import json
import re

import numpy as np

from rnncli import interop
from rnncli.errors import RnncliError
from rnncli.nn.names import prefixed

_STACK = re.compile(r"^(?P<stack>.+)\.l(?P<k>\d+)(?P<rev>_reverse)?\.(?P<key>W_ax|W_aa|b|b_an)$")


def _stacks(params):
    """{stack prefix: {"l0.W_ax": array, ...}} for every recurrent stack among the parameters."""
    out = {}
    for name, arr in params.items():
        m = _STACK.match(name)
        if m:
            out.setdefault(m["stack"], {})[name[len(m["stack"]) + 1 :]] = arr
    return out


def to_state_dict(params, cfg):
    """rnncli parameters -> {PyTorch name: array}."""
    if cfg["cell"] == "gru" and not cfg.get("reset_after", True):
        raise RnncliError("this GRU applies its reset gate before the recurrent product (the lecture's form, "
                          "--no-reset-after), which no PyTorch module computes; export it to ONNX instead "
                          "(-o model.onnx), or train with --reset-after")
    out = {}
    stacks = _stacks(params)
    for prefix, group in stacks.items():
        H = group["l0.W_aa"].shape[1]
        out.update(prefixed(prefix, interop.to_torch(group, cfg["cell"], H, True)))
    for name, arr in params.items():
        if _STACK.match(name):
            continue
        layer, _, key = name.rpartition(".")
        if name == "char_cnn.W":
            F, wC = arr.shape
            out["char_cnn.weight"] = np.ascontiguousarray(arr.reshape(F, 3, wC // 3).transpose(0, 2, 1))
        elif key in ("E", "W"):
            out[f"{layer}.weight"] = arr
        elif key == "b":
            out[f"{layer}.bias"] = arr
        else:
            out[name] = arr
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def from_state_dict(tensors, like_params, cfg, path):
    """{PyTorch name: array} -> rnncli parameters shaped as like_params; the first name or shape
    that does not fit is a one-line error naming it."""
    expected = to_state_dict(like_params, cfg)
    for name, arr in expected.items():
        if name not in tensors:
            raise RnncliError(f"{path}: no tensor {name!r} (expected {len(expected)} tensors such as "
                              f"{', '.join(list(expected)[:3])})")
        if tuple(tensors[name].shape) != arr.shape:
            raise RnncliError(f"{path}: tensor {name!r} has shape {tuple(tensors[name].shape)}, the model's is "
                              f"{arr.shape}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise RnncliError(f"{path}: tensor {extra[0]!r} has no place in this model ({len(extra)} such)")
    out = {}
    torch_of = {name: _torch_names(name) for name in like_params}
    for prefix in _stacks(like_params):
        H = like_params[f"{prefix}.l0.W_aa"].shape[1]
        group = {k[len(prefix) + 1 :]: np.asarray(v) for k, v in tensors.items() if k.startswith(prefix + ".")
                 and _STACK.match(k) is None and re.search(r"_(ih|hh)_l\d", k)}
        out.update(prefixed(prefix, interop.from_torch(group, cfg["cell"], H)))
    for name, arr in like_params.items():
        if name in out:
            continue
        t = np.asarray(tensors[torch_of[name]])
        if name == "char_cnn.W":
            t = t.transpose(0, 2, 1).reshape(arr.shape)
        out[name] = t.astype(arr.dtype)
    return {k: v.astype(like_params[k].dtype) for k, v in out.items()}


def _torch_names(name):
    layer, _, key = name.rpartition(".")
    if name == "char_cnn.W":
        return "char_cnn.weight"
    return {"E": f"{layer}.weight", "W": f"{layer}.weight", "b": f"{layer}.bias"}.get(key, name)


def serialize(params, meta):
    """-> (the safetensors file's bytes, its tensors): PyTorch's names, rnncli's task, configuration
    and vocabularies in the metadata."""
    from safetensors.numpy import save

    tensors = to_state_dict(params, meta["config"])
    info = {"task": meta["task"], "config": meta["config"], "data": meta["data"]}
    return save(tensors, metadata={"rnncli": json.dumps(info)}), tensors


def save(path, params, meta):
    """Write serialize's bytes to path, safely (npzfile.write_file)."""
    from rnncli.npzfile import write_file

    payload, tensors = serialize(params, meta)
    write_file(path, lambda f: f.write(payload))
    return tensors


def load(path):
    """-> ({name: array}, the "rnncli" metadata or None)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
            meta = (f.metadata() or {}).get("rnncli")
    except Exception as e:  # safetensors raises its own error types for damaged headers
        raise RnncliError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    for name, arr in tensors.items():  # as load_checkpoint refuses them: no later command could use them
        if arr.dtype.kind not in "fiu":
            raise RnncliError(f"{path}: tensor {name!r} has type {arr.dtype}, expected numbers")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise RnncliError(f"{path}: tensor {name!r} holds NaN or infinite values")
    from rnncli.npzfile import json_value

    if meta is None:
        return tensors, None
    info = json_value(meta, f"{path}: damaged rnncli metadata")
    if not isinstance(info, dict) or not isinstance(info.get("data"), dict):
        raise RnncliError(f"{path}: damaged rnncli metadata (expected a mapping with its data)")
    return tensors, info
