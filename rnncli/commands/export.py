"""rnncli export / import: a checkpoint to ONNX or to a PyTorch state dict (safetensors), and a
state dict trained elsewhere back into a checkpoint shaped like an rnncli model."""

import os

from rnncli.commands.common import refuse_overwrite
from rnncli.errors import RnncliError, UsageError
from rnncli.npzfile import write_file

FORMATS = {".onnx": "onnx", ".safetensors": "safetensors"}


def _need(module, what):
    try:
        return __import__(module)
    except ImportError:
        raise RnncliError(f"{what} needs the `{module}` package: pip install 'rnncli[export]'") from None


def export_model(model_path, out, force=False):
    """-> a summary dict of what was written."""
    from rnncli.models import load_model

    kind = FORMATS.get(os.path.splitext(str(out))[1])
    if kind is None:
        raise UsageError(f"{out}: the output's extension picks the format: .onnx or .safetensors")
    refuse_overwrite(out, force)
    model, meta, _ = load_model(model_path)
    if kind == "onnx":
        onnx = _need("onnx", "ONNX export")
        from rnncli.export.onnx_graph import OPSET, build

        graph = build(model, meta)
        onnx.checker.check_model(graph)
        payload = graph.SerializeToString()
        facts = {"opset": OPSET, "nodes": len(graph.graph.node),
                 "inputs": [i.name for i in graph.graph.input], "outputs": [o.name for o in graph.graph.output]}
    else:
        _need("safetensors", "safetensors export")
        from rnncli.export.state_dict import serialize

        payload, tensors = serialize(model.params, meta)
        facts = {"tensors": len(tensors), "names": sorted(tensors)[:6]}
    write_file(out, lambda f: f.write(payload))
    return {"model": str(model_path), "out": str(out), "format": kind, "task": meta["task"],
            "bytes": len(payload), **facts}


def import_model(path, like, out, force=False):
    """Weights from a safetensors state dict, everything else (configuration, vocabularies) from
    the rnncli checkpoint `like`; -> a summary dict."""
    from rnncli.checkpoint import save_checkpoint
    from rnncli.export.state_dict import from_state_dict, load
    from rnncli.models import load_model

    _need("safetensors", "import")
    if not str(path).endswith(".safetensors"):
        raise UsageError(f"{path}: import reads a .safetensors state dict")
    if not os.path.exists(path):
        raise RnncliError(f"{path}: no such file")
    refuse_overwrite(out, force)
    model, meta, _ = load_model(like)
    tensors, saved = load(path)
    if saved is not None:
        for key in ("vocab", "labels", "tags", "chars", "target_vocab"):
            if saved["data"].get(key) != meta["data"].get(key):
                raise RnncliError(f"{path}: its {key.replace('_', ' ')} differs from {like}'s; ids would mean "
                                  "other tokens")
    params = from_state_dict(tensors, model.params, meta["config"], path)
    new_meta = {**meta, "imported_from": os.path.basename(str(path)), "history": [], "best_score": None,
                "best_step": None}
    save_checkpoint(out, new_meta, params)
    return {"from": str(path), "like": str(like), "out": str(out), "task": meta["task"], "tensors": len(tensors)}
