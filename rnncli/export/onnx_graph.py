"""An rnncli model as an ONNX graph built from the standard operators.

    embedding        Gather(E, ids)
    recurrent layer  ONNX RNN / GRU / LSTM, one operator per layer (both directions in one), the
                     layers stacked: Y (T, dirs, B, H) -> (T, B, dirs*H) -> the next layer's X
    heads            MatMul + Add; Softmax / Sigmoid for class probabilities

Gate conventions, mapped here (docs/checkpoint.md has rnncli's):
    LSTM  rnncli i, f, g, o                  -> ONNX i, o, f, c
    GRU   rnncli r, u, n with u = the lecture's -> ONNX z, r, h with z = 1 - u: the u block is
          update gate Gu                         negated (sigmoid(-x) = 1 - sigmoid(x)) and moved first;
          reset_after=True  -> linear_before_reset=1 with Rb_h = b_an (PyTorch's form)
          reset_after=False -> linear_before_reset=0 (the lecture's form)
    RNN   tanh or relu: activations=["Tanh"|"Relu"] per direction
    bias  rnncli's one bias b = ONNX Wb (its Rb is zero, but for the GRU's b_an)
The graph is float32 (onnxruntime runs RNN/GRU/LSTM in float32 only); a float64 model is rounded.
Padding: classifiers and taggers take each sequence's length (`sequence_lens`), so a reverse
direction starts at the last real token, as rnncli's does; outputs past a sequence's end are not
defined by rnncli and are not to be read (a tagger's emissions there included).
"""

import json

import numpy as np

from rnncli.errors import RnncliError
from rnncli.nn.names import layer_name

OPSET = 17
INT32, INT64 = 6, 7  # onnx.TensorProto's element types, for Cast
_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


class Graph:
    """Nodes, initializers and fresh names for one onnx.GraphProto."""

    def __init__(self, dtype, prefix=""):
        """prefix: on every fresh name (a subgraph's names must not repeat the outer graph's)."""
        from onnx import TensorProto

        self.dtype, self.prefix = np.dtype(dtype), prefix
        self.elem = TensorProto.DOUBLE if self.dtype == np.float64 else TensorProto.FLOAT
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint):
        self.n += 1
        return f"{self.prefix}{hint}_{self.n}"

    def const(self, hint, array, dtype=None):
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype or self.dtype), name))
        return name

    def ints(self, hint, values):
        return self.const(hint, np.asarray(values, np.int64), np.int64)

    def op(self, op_type, inputs, n_out=1, out=None, **attrs):
        from onnx import helper

        outs = out if out is not None else [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def matmul_add(self, x, W, b, hint, out=None):
        """x (..., in) @ W^T + b with W (out, in); out: the result's name (else a fresh one)."""
        y = self.op("MatMul", [x, self.const(hint + "_Wt", np.ascontiguousarray(W.T))])
        return self.op("Add", [y, self.const(hint + "_b", b)], out=None if out is None else [out])


def _blocks(arr, G):
    return np.split(arr, G, axis=0)


def onnx_weights(params, prefix, layer, cell, H, reset_after):
    """W (G*H, D), R (G*H, H), B (2*G*H,) of one direction in ONNX's gate order."""
    W, R, b = (params[f"{prefix}.{layer}.{k}"] for k in ("W_ax", "W_aa", "b"))
    Rb = np.zeros_like(b)
    if cell == "lstm":  # i f g o -> i o f c
        order = [0, 3, 1, 2]
        W, R, b = (np.concatenate([_blocks(a, 4)[i] for i in order]) for a in (W, R, b))
    elif cell == "gru":  # r u n -> z r h, z = 1 - u
        def reorder(a):
            r, u, n = _blocks(a, 3)
            return np.concatenate([-u, r, n])

        W, R, b = reorder(W), reorder(R), reorder(b)
        if reset_after:
            Rb[2 * H :] = params[f"{prefix}.{layer}.b_an"]
    return W, R, np.concatenate([b, Rb])


def recurrent_stack(g, x, params, prefix, cfg, layers, bidirectional, seq_lens="", initial=None, pyramid=0):
    """x (T, B, D) through the stack `prefix`; -> (top outputs (T, B, dirs*H), [Y_h of each layer],
    [Y_c of each layer] for an LSTM). initial: (h0, c0) names of (layers, B, H) inputs, or None.
    pyramid: the outputs of layers 0 .. pyramid-1 are joined in pairs (join_steps) before the next
    layer reads them; then the top outputs are (T / 2^pyramid, B, dirs*H)."""
    cell, H = cfg["cell"], params[f"{prefix}.l0.W_aa"].shape[1]
    dirs = 2 if bidirectional else 1
    finals_h, finals_c = [], []
    for k in range(layers):
        if 0 < k <= pyramid:
            x, seq_lens = join_steps(g, x, seq_lens, 2, dirs * H)
        names = [layer_name(k, d) for d in range(dirs)]
        Ws, Rs, Bs = zip(*(onnx_weights(params, prefix, n, cell, H, cfg["reset_after"]) for n in names), strict=True)
        inputs = [x, g.const(f"{prefix}_l{k}_W", np.stack(Ws)), g.const(f"{prefix}_l{k}_R", np.stack(Rs)),
                  g.const(f"{prefix}_l{k}_B", np.stack(Bs)), seq_lens]
        if initial is not None:
            starts, ends, axes = g.ints("s", [k]), g.ints("e", [k + 1]), g.ints("a", [0])
            inputs += [g.op("Slice", [initial[0], starts, ends, axes])]
            if cell == "lstm":
                inputs += [g.op("Slice", [initial[1], starts, ends, axes])]
        attrs = {"hidden_size": H, "direction": "bidirectional" if dirs == 2 else "forward"}
        if cell == "rnn":
            attrs["activations"] = ["Relu" if cfg["activation"] == "relu" else "Tanh"] * dirs
        if cell == "gru":
            attrs["linear_before_reset"] = 1 if cfg["reset_after"] else 0
        outs = g.op(_OPS[cell], inputs, n_out=3 if cell == "lstm" else 2, **attrs)
        Y, Y_h = outs[0], outs[1]
        finals_h.append(Y_h)
        if cell == "lstm":
            finals_c.append(outs[2])
        Y = g.op("Transpose", [Y], perm=[0, 2, 1, 3])  # (T, B, dirs, H)
        x = g.op("Reshape", [Y, g.ints("shape", [0, 0, dirs * H])])
    return x, finals_h, finals_c


def join_steps(g, x, lengths, k, width):
    """nn/reduce.py's join_steps: x (T, B, F=width) with lengths (B,) int32 -> (ceil(T/k), B, k F) and the
    lengths ceil(L/k); steps past a sequence's end are zeroed first, as rnncli does."""
    real = g.op("Unsqueeze", [_lengths_mask(g, x, lengths), g.ints("ax", [2])])  # (T, B, 1)
    x = g.op("Where", [real, x, g.const("zero", 0.0)])
    shape = g.op("Shape", [x])
    T = g.op("Slice", [shape, g.ints("s", [0]), g.ints("e", [1]), g.ints("a", [0])])
    B = g.op("Slice", [shape, g.ints("s", [1]), g.ints("e", [2]), g.ints("a", [0])])
    kk = g.ints("k", [k])
    missing = g.op("Mod", [g.op("Sub", [kk, g.op("Mod", [T, kk])]), kk])  # zero steps that fill the last group
    pads = g.op("Concat", [g.ints("before", [0, 0, 0]), missing, g.ints("after", [0, 0])], axis=0)
    x = g.op("Pad", [x, pads])
    x = g.op("Reshape", [x, g.op("Concat", [g.ints("m1", [-1]), kk, B, g.ints("F", [width])], axis=0)])
    x = g.op("Transpose", [x], perm=[0, 2, 1, 3])  # (T/k, B, k, F)
    x = g.op("Reshape", [x, g.ints("shape", [0, 0, k * width])])
    lengths = g.op("Div", [g.op("Add", [lengths, g.const("k_1", k - 1, np.int32)]), g.const("k", k, np.int32)])
    return x, lengths


def _lengths_mask(g, ids, lengths):
    """(T, B) bool: step t of sequence b is real."""
    T = g.op("Gather", [g.op("Shape", [ids]), g.ints("zero", 0)])
    steps = g.op("Range", [g.ints("start", 0), T, g.ints("one", 1)])
    return g.op("Less", [g.op("Unsqueeze", [steps, g.ints("ax", [1])]),
                         g.op("Unsqueeze", [g.op("Cast", [lengths], to=INT64), g.ints("ax", [0])])])


def _char_features(g, params, cfg, chars):
    """chars (T, B, Lc) int64 -> word features (T, B, 2*Hc), as tasks/tag.py reads them."""
    Ec = params["char_embedding.E"]
    shape = g.op("Shape", [chars])
    Lc = g.op("Slice", [shape, g.ints("s", [2]), g.ints("e", [3]), g.ints("a", [0])])
    flat = g.op("Reshape", [chars, g.op("Concat", [g.ints("m1", [-1]), Lc], axis=0)])  # (N, Lc), N = T*B
    cols = g.op("Transpose", [flat], perm=[1, 0])  # (Lc, N)
    real = g.op("Greater", [cols, g.ints("pad", 0)])  # <pad> is id 0: no real character has it
    x = g.op("Gather", [g.const("char_E", Ec), cols])  # (Lc, N, C)
    if cfg["char_encoder"] == "cnn":
        W, b = params["char_cnn.W"], params["char_cnn.b"]
        x = g.op("Where", [g.op("Unsqueeze", [real, g.ints("ax", [2])]), x, g.const("zero", 0.0)])
        padded = g.op("Pad", [x, g.ints("pads", [1, 0, 0, 1, 0, 0])])  # a zero character either side
        window = [g.op("Slice", [padded, g.ints("s", [k]), g.ints("e", [k - 2 if k < 2 else 2**62]),
                                 g.ints("a", [0])]) for k in range(3)]
        Z = g.matmul_add(g.op("Concat", window, axis=-1), W, b, "char_cnn")  # (Lc, N, F)
        neg = g.const("neg_inf", -np.inf)
        Z = g.op("Where", [g.op("Unsqueeze", [real, g.ints("ax", [2])]), Z, neg])
        top = g.op("ReduceMax", [Z], axes=[0], keepdims=0)  # (N, F)
        has = g.op("ReduceMax", [g.op("Cast", [real], to=g.elem)], axes=[0], keepdims=1)  # (1, N)
        has = g.op("Greater", [g.op("Transpose", [has], perm=[1, 0]), g.const("half", 0.5)])  # (N, 1)
        feats = g.op("Where", [has, g.op("Tanh", [top]), g.const("zero", 0.0)])
    else:
        n_chars = g.op("ReduceSum", [g.op("Cast", [real], to=INT32), g.ints("ax", [0])], keepdims=0)
        n_chars = g.op("Max", [n_chars, g.const("one", 1, np.int32)])  # a padded word reads one <pad>
        _, finals_h, _ = recurrent_stack(g, x, params, "char_rnn", cfg, 1, True, seq_lens=n_chars)
        feats = g.op("Reshape", [g.op("Transpose", [finals_h[0]], perm=[1, 0, 2]), g.ints("shape", [0, -1])])
    TB = g.op("Slice", [shape, g.ints("s", [0]), g.ints("e", [2]), g.ints("a", [0])])
    return g.op("Reshape", [feats, g.op("Concat", [TB, g.ints("m1", [-1])], axis=0)])


def build(model, meta):
    """-> onnx.ModelProto of any task's model: its Task names its graph (Task.graph, one of the
    *_graph functions below)."""
    from onnx import helper

    from rnncli.tasks.registry import TASKS

    task, cfg, data = meta["task"], meta["config"], meta["data"]
    if task not in TASKS:
        raise RnncliError(f"ONNX export of a {task} model is not supported")
    # float32 always: onnxruntime's RNN/GRU/LSTM kernels take no float64 (a float64 model is rounded)
    params = {k: np.asarray(v, np.float32) for k, v in model.params.items()}
    g = Graph(np.float32)
    inputs, outputs = globals()[TASKS[task].graph](g, model, params, cfg, data)
    graph = helper.make_graph(g.nodes, f"rnncli_{task}", inputs, outputs, initializer=g.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnncli")
    onnx_model.ir_version = 8
    helper.set_model_props(onnx_model, _metadata(meta))
    return onnx_model


def _input(g, params, data):
    """The model's input: ids (T, B) through the embedding, or frames (T, B, D) as tokenize made them,
    normalised here, then projected. -> (the inputs' value infos, the input's name, x)."""
    from onnx import TensorProto, helper

    if data.get("input") != "frames":
        return ([helper.make_tensor_value_info("ids", TensorProto.INT64, ["T", "B"])], "ids",
                g.op("Gather", [g.const("E", params["embedding.E"]), "ids"]))
    mean, sd = (np.asarray(data[k], np.float32) for k in ("frame_mean", "frame_std"))
    x = g.op("Div", [g.op("Sub", ["frames", g.const("frame_mean", mean)]), g.const("frame_std", sd)])
    if "input.W" in params:
        x = g.matmul_add(x, params["input.W"], params["input.b"], "input")
    return [helper.make_tensor_value_info("frames", g.elem, ["T", "B", data["frame_dim"]])], "frames", x


def lm_graph(g, model, params, cfg, data):
    """A language model: embedding, one recurrent stack read one way from given states, the head."""
    from onnx import helper

    inputs, _, x = _input(g, params, data)
    outputs = []
    H, L = cfg["hidden"], cfg["layers"]
    inputs.append(helper.make_tensor_value_info("h0", g.elem, [L, "B", H]))
    initial = ("h0", "c0") if cfg["cell"] == "lstm" else ("h0",)
    if cfg["cell"] == "lstm":
        inputs.append(helper.make_tensor_value_info("c0", g.elem, [L, "B", H]))
    top, fh, fc = recurrent_stack(g, x, params, "rnn", cfg, L, False, initial=initial)
    g.matmul_add(top, params["head.W"], params["head.b"], "head", out="logits")
    g.op("Concat", fh, out=["hN"], axis=0)
    outputs += [helper.make_tensor_value_info("logits", g.elem, ["T", "B", len(data["vocab"])]),
                helper.make_tensor_value_info("hN", g.elem, [L, "B", H])]
    if fc:
        g.op("Concat", fc, out=["cN"], axis=0)
        outputs.append(helper.make_tensor_value_info("cN", g.elem, [L, "B", H]))
    return inputs, outputs


def _encoded(g, params, cfg, data, char_features=False):
    """A classifier's, regression's or tagger's input through its (bidirectional unless configured
    otherwise) stack, padded batches with their lengths. -> (inputs, input name, top, finals)."""
    from onnx import TensorProto, helper

    inputs, ids, x = _input(g, params, data)
    inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]))
    if char_features:
        inputs.append(helper.make_tensor_value_info("chars", TensorProto.INT64, ["T", "B", "Lc"]))
        x = g.op("Concat", [x, _char_features(g, params, cfg, "chars")], axis=-1)
    bidirectional = cfg.get("bidirectional") is not False  # None: the tasks' default, True
    top, fh, _ = recurrent_stack(g, x, params, "rnn", cfg, cfg["layers"], bidirectional, seq_lens="lengths")
    return inputs, ids, top, fh


def classify_graph(g, model, params, cfg, data):
    inputs, ids, top, fh = _encoded(g, params, cfg, data)
    return inputs, [_classify_head(g, params, cfg, data, top, fh, ids)]


def regress_graph(g, model, params, cfg, data):
    inputs, ids, top, fh = _encoded(g, params, cfg, data)
    return inputs, [_regress_head(g, params, data, _pooled(g, cfg, top, fh, ids))]


def tag_graph(g, model, params, cfg, data):
    """A tagger: each step's emissions, and with a CRF its transitions and Viterbi outputs."""
    from onnx import helper

    inputs, _, top, _ = _encoded(g, params, cfg, data, char_features=bool(cfg.get("char_features")))
    g.matmul_add(top, params["head.W"], params["head.b"], "head", out="emissions")
    K = len(data["tags"])
    return inputs, [helper.make_tensor_value_info("emissions", g.elem, ["T", "B", K]),
                    *_crf_outputs(g, model, params, K)]


def _initial_states(g, params, prefix, layers, n_states, xs):
    """InitialState (nn/layers.py) per layer: xs[k][j] (B, in) -> state j of layer k, a<0> = tanh(W x + b),
    c<0> = W' x + b'; -> names of (layers, B, H) tensors, one per state array."""
    out = []
    for j in range(n_states):
        part = "ac"[j]
        per_layer = []
        for k in range(layers):
            z = g.matmul_add(xs[k][j], params[f"{prefix}.l{k}.{part}.W"], params[f"{prefix}.l{k}.{part}.b"], prefix)
            per_layer.append(g.op("Unsqueeze", [g.op("Tanh", [z]) if j == 0 else z, g.ints("ax", [0])]))
        out.append(g.op("Concat", per_layer, axis=0))
    return out


def conditional_lm_graph(g, model, params, cfg, data):
    """ids (T, B) read from each label's initial state (and with the label beside every input)."""
    from onnx import TensorProto, helper

    L, H, cond = cfg["layers"], cfg["hidden"], cfg["condition"]
    n_states = 2 if cfg["cell"] == "lstm" else 1
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["T", "B"]),
              helper.make_tensor_value_info("labels", TensorProto.INT64, ["B"])]
    x = g.op("Gather", [g.const("E", params["embedding.E"]), "ids"])
    lab = g.op("Gather", [g.const("label_E", params["label_embedding.E"]), "labels"])  # (B, Dl)
    if cond in ("input", "both"):  # [E[y]; l] at every step
        T = g.op("Slice", [g.op("Shape", ["ids"]), g.ints("s", [0]), g.ints("e", [1]), g.ints("a", [0])])
        reps = g.op("Concat", [T, g.ints("one", [1, 1])], axis=0)
        x = g.op("Concat", [x, g.op("Tile", [g.op("Unsqueeze", [lab, g.ints("ax", [0])]), reps])], axis=-1)
    initial = None
    if cond in ("state", "both"):
        initial = tuple(_initial_states(g, params, "init", L, n_states, [[lab] * n_states] * L))
    top, fh, fc = recurrent_stack(g, x, params, "rnn", cfg, L, False, initial=initial)
    g.matmul_add(top, params["head.W"], params["head.b"], "head", out="logits")
    g.op("Concat", fh, out=["hN"], axis=0)
    outputs = [helper.make_tensor_value_info("logits", g.elem, ["T", "B", len(data["vocab"])]),
               helper.make_tensor_value_info("hN", g.elem, [L, "B", H])]
    if fc:
        g.op("Concat", fc, out=["cN"], axis=0)
        outputs.append(helper.make_tensor_value_info("cN", g.elem, [L, "B", H]))
    return inputs, outputs


def seq2seq_graph(g, model, params, cfg, data):
    """source (S, B) with its lengths, teacher-forced target inputs <bos> y1.. (T, B) -> logits
    (T, B, Vt) and, with attention, the weights (B, T, S'). A runtime decodes greedily or with a beam
    by running it on the growing target prefix. Speech: the source is frames (S, B, D) as tokenize
    makes them, normalised, stacked and projected here, read by a pyramid that shortens it to S'."""
    from onnx import TensorProto, helper

    L = cfg["layers"]
    L_dec = cfg.get("decoder_layers") or L
    bidirectional = cfg.get("bidirectional") is not False
    n_states = 2 if cfg["cell"] == "lstm" else 1
    lengths = "source_lengths"
    if data.get("input") == "frames":
        D = data["frame_dim"]
        source = helper.make_tensor_value_info("frames", g.elem, ["S", "B", D])
        mean, sd = (np.asarray(data[k], np.float32) for k in ("frame_mean", "frame_std"))
        x = g.op("Div", [g.op("Sub", ["frames", g.const("frame_mean", mean)]), g.const("frame_std", sd)])
        if cfg.get("stack_frames", 1) > 1:
            x, lengths = join_steps(g, x, lengths, cfg["stack_frames"], D)
        if "input.W" in params:
            x = g.matmul_add(x, params["input.W"], params["input.b"], "input")
    else:
        source = helper.make_tensor_value_info("source", TensorProto.INT64, ["S", "B"])
        x = g.op("Gather", [g.const("source_E", params["source_embedding.E"]), "source"])
    inputs = [source, helper.make_tensor_value_info("source_lengths", TensorProto.INT32, ["B"]),
              helper.make_tensor_value_info("target_in", TensorProto.INT64, ["T", "B"])]
    pyramid = cfg.get("pyramid", 0)
    memory, fh, fc = recurrent_stack(g, x, params, "encoder", cfg, L, bidirectional, seq_lens=lengths,
                                     pyramid=pyramid)
    for _ in range(pyramid):  # the memory's lengths, as the pyramid shortened them
        lengths = g.op("Div", [g.op("Add", [lengths, g.const("one", 1, np.int32)]), g.const("two", 2, np.int32)])
    finals = [f[L - L_dec :] for f in (fh, fc)][:n_states]  # the encoder's top layers start the decoder's
    if "bridge.l0.a.W" in params:  # the bridge: [forward; backward] of each layer -> the decoder's size
        joined = [[g.op("Reshape", [g.op("Transpose", [f[k]], perm=[1, 0, 2]), g.ints("shape", [0, -1])])
                   for f in finals] for k in range(L_dec)]
        initial = tuple(_initial_states(g, params, "bridge", L_dec, n_states, joined))
    else:  # the lecture's: each layer's final state as it is
        initial = tuple(g.op("Concat", f, axis=0) for f in finals)
    y = g.op("Gather", [g.const("target_E", params["target_embedding.E"]), "target_in"])
    outputs = []
    if cfg.get("input_feeding"):
        h, alpha = _input_fed_decoder(g, params, cfg, y, initial, memory, lengths, L_dec)
        g.op("Identity", [alpha], out=["attention"])
        outputs.append(helper.make_tensor_value_info("attention", g.elem, ["B", "T", "S'"]))
        g.matmul_add(h, params["head.W"], params["head.b"], "head", out="logits")
        outputs.insert(0, helper.make_tensor_value_info("logits", g.elem, ["T", "B", len(data["target_vocab"])]))
        return inputs, outputs
    h, _, _ = recurrent_stack(g, y, params, "decoder", cfg, L_dec, False, initial=initial)
    if cfg.get("attention") not in (None, "none"):
        h, alpha = _attention(g, params, cfg["attention"], h, memory, lengths)
        g.op("Identity", [alpha], out=["attention"])
        outputs.append(helper.make_tensor_value_info("attention", g.elem, ["B", "T", "S'"]))
    g.matmul_add(h, params["head.W"], params["head.b"], "head", out="logits")
    outputs.insert(0, helper.make_tensor_value_info("logits", g.elem, ["T", "B", len(data["target_vocab"])]))
    return inputs, outputs


def caption_graph(g, model, params, cfg, data):
    """An image captioner: with attention, seq2seq_graph over the image's columns; else frames
    (S, B, D), normalised, flattened to v (B, S*D), each decoder layer started at tanh(W v + b) (an
    LSTM's c at W' v + b'), teacher-forced target inputs (T, B) -> logits (T, B, Vt). The inputs are
    seq2seq_graph's (source_lengths is read by the attending model only)."""
    from onnx import TensorProto, helper

    if cfg.get("attention") not in (None, "none"):
        return seq2seq_graph(g, model, params, cfg, data)
    L, n_states, D = cfg["layers"], 2 if cfg["cell"] == "lstm" else 1, data["frame_dim"]
    mean, sd = (np.asarray(data[k], np.float32) for k in ("frame_mean", "frame_std"))
    x = g.op("Div", [g.op("Sub", ["frames", g.const("frame_mean", mean)]), g.const("frame_std", sd)])
    v = g.op("Reshape", [g.op("Transpose", [x], perm=[1, 0, 2]), g.ints("shape", [0, -1])])  # [x<1>; ...; x<S>]
    initial = tuple(_initial_states(g, params, "bridge", L, n_states, [[v] * n_states] * L))
    y = g.op("Gather", [g.const("target_E", params["target_embedding.E"]), "target_in"])
    h, _, _ = recurrent_stack(g, y, params, "decoder", cfg, L, False, initial=initial)
    g.matmul_add(h, params["head.W"], params["head.b"], "head", out="logits")
    inputs = [helper.make_tensor_value_info("frames", g.elem, ["S", "B", D]),
              helper.make_tensor_value_info("source_lengths", TensorProto.INT32, ["B"]),
              helper.make_tensor_value_info("target_in", TensorProto.INT64, ["T", "B"])]
    return inputs, [helper.make_tensor_value_info("logits", g.elem, ["T", "B", len(data["target_vocab"])])]


def _input_fed_decoder(g, params, cfg, y, initial, memory, lengths, layers):
    """nn/input_feeding.py as an ONNX Scan over the target steps: the body reads y<t> (B, E) and carries
    each layer's states and h~<t-1>; every layer is a one-step RNN/GRU/LSTM operator, then attention
    over the memory (read from the outer graph). -> h~ (T, B, Hd), alpha (B, T, S)."""
    from onnx import helper

    cell, H = cfg["cell"], params["decoder.l0.W_aa"].shape[1]  # the decoder's width
    body = Graph(g.dtype, prefix="step_")
    n_states = 2 if cell == "lstm" else 1
    state_in = [[f"s{j}_l{k}_in" for j in range(n_states)] for k in range(layers)]  # each (1, B, H)
    inputs = [helper.make_tensor_value_info(name, g.elem, [1, "B", H]) for names in state_in for name in names]
    inputs += [helper.make_tensor_value_info("feed_in", g.elem, ["B", H]),
               helper.make_tensor_value_info("y_t", g.elem, ["B", cfg["embed"]])]
    x = body.op("Unsqueeze", [body.op("Concat", ["y_t", "feed_in"], axis=-1), body.ints("ax", [0])])  # (1, B, E+H)
    state_out = []
    for k in range(layers):
        W, R, B = onnx_weights(params, "decoder", f"l{k}", cell, H, cfg["reset_after"])
        attrs = {"hidden_size": H, "direction": "forward"}
        if cell == "rnn":
            attrs["activations"] = ["Relu" if cfg["activation"] == "relu" else "Tanh"]
        if cell == "gru":
            attrs["linear_before_reset"] = 1 if cfg["reset_after"] else 0
        outs = body.op(_OPS[cell], [x, body.const(f"W{k}", W[None]), body.const(f"R{k}", R[None]),
                                    body.const(f"B{k}", B[None]), "", *state_in[k]], n_out=1 + n_states, **attrs)
        state_out.append(outs[1:])
        x = body.op("Squeeze", [outs[0], body.ints("ax", [1])])  # (1, B, H): the next layer's one step
    h_tilde, alpha = _attention(body, params, cfg["attention"], x, memory, lengths)  # (1, B, H), (B, 1, S)
    names_out = [f"s{j}_l{k}_out" for k in range(layers) for j in range(n_states)]
    for name, value in zip(names_out, [s for outs in state_out for s in outs], strict=True):
        body.op("Identity", [value], out=[name])
    body.op("Squeeze", [h_tilde, body.ints("ax", [0])], out=["feed_out"])
    body.op("Identity", ["feed_out"], out=["h_tilde_t"])
    body.op("Squeeze", [alpha, body.ints("ax", [1])], out=["alpha_t"])  # (B, S)
    outputs = [helper.make_tensor_value_info(n, g.elem, [1, "B", H]) for n in names_out]
    outputs += [helper.make_tensor_value_info("feed_out", g.elem, ["B", H]),
                helper.make_tensor_value_info("h_tilde_t", g.elem, ["B", H]),
                helper.make_tensor_value_info("alpha_t", g.elem, ["B", "S"])]
    graph = helper.make_graph(body.nodes, "input_feeding_step", inputs, outputs, initializer=body.inits)
    # the initial states: layer k's slice of each (layers, B, H) input; h~<0> = 0 shaped as y<0> is
    starts = [[g.op("Slice", [initial[j], g.ints("s", [k]), g.ints("e", [k + 1]), g.ints("a", [0])])
               for j in range(n_states)] for k in range(layers)]
    zero_feed = g.op("Mul", [g.op("ReduceSum", [g.op("Gather", [y, g.ints("t0", 0)]), g.ints("ax", [1])], keepdims=1),
                            g.const("zero_row", np.zeros((1, H)))])  # (B, H) zeros, B from the data
    results = g.op("Scan", [*[s for st in starts for s in st], zero_feed, y], n_out=len(names_out) + 3,
                   body=graph, num_scan_inputs=1)
    h_all, alphas = results[-2], results[-1]  # (T, B, H), (T, B, S)
    return h_all, g.op("Transpose", [alphas], perm=[1, 0, 2])


def _attention(g, params, kind, h, memory, lengths):
    """nn/attention.py's global attention over memory (S, B, He) of `lengths` real steps:
    -> h~ (T, B, Hd), alpha (B, T, S)."""
    Q = g.op("Transpose", [h], perm=[1, 0, 2])  # (B, T, Hd)
    M = g.op("Transpose", [memory], perm=[1, 0, 2])  # (B, S, He)
    if kind == "dot":
        e = g.op("MatMul", [Q, g.op("Transpose", [M], perm=[0, 2, 1])])
    elif kind == "general":
        keys = g.op("MatMul", [M, g.const("W_a_t", np.ascontiguousarray(params["attention.W_a"].T))])
        e = g.op("MatMul", [Q, g.op("Transpose", [keys], perm=[0, 2, 1])])
    else:
        keys = g.op("MatMul", [M, g.const("W_k_t", np.ascontiguousarray(params["attention.W_k"].T))])  # (B, S, Hd)
        q = g.op("MatMul", [Q, g.const("W_q_t", np.ascontiguousarray(params["attention.W_q"].T))])  # (B, T, Hd)
        U = g.op("Tanh", [g.op("Add", [g.op("Unsqueeze", [q, g.ints("ax", [2])]),
                                      g.op("Unsqueeze", [keys, g.ints("ax", [1])])])])  # (B, T, S, Hd)
        e = g.op("Squeeze", [g.op("MatMul", [U, g.const("v", params["attention.v"][:, None])]), g.ints("ax", [3])])
    real = g.op("Transpose", [_lengths_mask(g, memory, lengths)], perm=[1, 0])  # (B, S)
    e = g.op("Where", [g.op("Unsqueeze", [real, g.ints("ax", [1])]), e, g.const("neg_inf", -np.inf)])
    alpha = g.op("Softmax", [e], axis=-1)
    context = g.op("MatMul", [alpha, M])  # (B, T, He)
    joined = g.op("Concat", [context, Q], axis=-1)
    out = g.op("Tanh", [g.matmul_add(joined, params["attention.W_c"], params["attention.b_c"], "att_c")])
    return g.op("Transpose", [out], perm=[1, 0, 2]), alpha


def _pooled(g, cfg, top, finals_h, ids):
    """The classifier's and the regressor's pooling of the top layer's states -> (B, F)."""
    if cfg["pool"] == "last":
        pooled = g.op("Reshape", [g.op("Transpose", [finals_h[-1]], perm=[1, 0, 2]), g.ints("shape", [0, -1])])
    else:
        real = g.op("Unsqueeze", [_lengths_mask(g, ids, "lengths"), g.ints("ax", [2])])  # (T, B, 1)
        if cfg["pool"] == "mean":
            total = g.op("ReduceSum", [g.op("Where", [real, top, g.const("zero", 0.0)]), g.ints("ax", [0])],
                         keepdims=0)
            count = g.op("Max", [g.op("Cast", [g.op("Unsqueeze", ["lengths", g.ints("ax", [1])])], to=g.elem),
                                 g.const("one", 1.0)])
            pooled = g.op("Div", [total, count])
        else:
            pooled = g.op("ReduceMax", [g.op("Where", [real, top, g.const("neg_inf", -np.inf)])], axes=[0],
                          keepdims=0)
    return pooled


def _regress_head(g, params, data, pooled):
    """scores (B, K) in their own units: the head's standardised output times sd plus mean."""
    from onnx import helper

    z = g.matmul_add(pooled, params["head.W"], params["head.b"], "head")
    sd, mean = (np.asarray(data[k], np.float32) for k in ("score_std", "score_mean"))
    g.op("Add", [g.op("Mul", [z, g.const("score_std", sd)]), g.const("score_mean", mean)], out=["scores"])
    return helper.make_tensor_value_info("scores", g.elem, ["B", len(data["score_names"])])


def _classify_head(g, params, cfg, data, top, finals_h, ids):
    from onnx import helper

    pooled = _pooled(g, cfg, top, finals_h, ids)
    logits = g.matmul_add(pooled, params["head.W"], params["head.b"], "head")
    if len(data["labels"]) == 2:  # one logit: p(second label) = sigmoid
        p1 = g.op("Sigmoid", [logits])
        g.op("Concat", [g.op("Sub", [g.const("one", 1.0), p1]), p1], out=["probabilities"], axis=1)
    else:
        g.op("Softmax", [logits], out=["probabilities"], axis=1)
    return helper.make_tensor_value_info("probabilities", g.elem, ["B", len(data["labels"])])


def _crf_outputs(g, model, params, K):
    """The CRF's scores and, for IOB2 tags, which moves the scheme allows, as constant outputs."""
    from onnx import TensorProto, helper

    outs = []
    if "crf.trans" in params:
        for name, shape in (("start", [K]), ("trans", [K, K]), ("end", [K])):
            g.op("Identity", [g.const(f"crf_{name}", params[f"crf.{name}"])], out=[f"crf_{name}"])
            outs.append(helper.make_tensor_value_info(f"crf_{name}", g.elem, shape))
    if model.allowed is not None:
        for name, arr, shape in (("allowed_start", model.allowed[0], [K]), ("allowed_trans", model.allowed[1],
                                                                           [K, K])):
            g.op("Identity", [g.const(name, arr, np.bool_)], out=[name])
            outs.append(helper.make_tensor_value_info(name, TensorProto.BOOL, shape))
    return outs


def _metadata(meta):
    """What a consumer needs to encode text and read the outputs without rnncli."""
    data, cfg = meta["data"], meta["config"]
    props = {"rnncli_task": meta["task"], "rnncli_config": json.dumps(cfg),
             "vocab": json.dumps(data["vocab"]), "level": data.get("level", "word"),
             "lower": json.dumps(bool(data.get("lower"))),
             "special_ids": json.dumps({"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3})}
    for key in ("labels", "tags", "chars", "pretrained_vocab", "score_names", "score_mean", "score_std", "input",
                "frame_dim", "frame_mean", "frame_std", "audio"):
        if data.get(key):
            props[key] = json.dumps(data[key])
    return props
