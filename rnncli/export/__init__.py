"""Models out of rnncli and back: ONNX graphs for serving (onnx_graph.py) and PyTorch state
dicts in safetensors files for training elsewhere (state_dict.py). Both need the `[export]` extra."""
