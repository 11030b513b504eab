"""Training-step throughput of the NumPy core, side by side with PyTorch when it is importable.

    python bench/core.py [--repeats 7] [--cells lstm,gru,rnn] [--sizes 128x32x64,...]
    python bench/core.py --against ../before     # A/B: this tree against another rnncli checkout

One step = forward + backward + clip + Adam over embedding 64 -> cell -> 65-way softmax,
float32. Both sides run in this one process, with malloc keeping freed memory (as rnncli's
commands do: rnncli/memory.py) unless --malloc-default. Prints medians of the repeats,
tokens/s, GFLOP/s (matrix products only), the share of the float32 matmul ceiling measured in
this same run, and the ratio to PyTorch.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ab import alternate, other_tree  # noqa: E402

from rnncli.nn.layers import Embedding  # noqa: E402
from rnncli.nn.optim import Optimizer, clip_global_norm  # noqa: E402
from rnncli.tasks.lm import LanguageModel  # noqa: E402

V, E = 65, 64
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def matmul_ceiling(repeats=20):
    """Median GFLOP/s of a large float32 product on this machine, now."""
    a = np.random.rand(2048, 1024).astype(np.float32)
    b = np.random.rand(1024, 1024).astype(np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * 2048 * 1024 * 1024 / statistics.median(times) / 1e9


def parse_size(size):
    """"HxBxT" or "HxBxTxL" -> (hidden, batch, steps, layers)."""
    return (*(int(v) for v in size.split("x")), 1)[:4]


def step_flops(cell, H, B, T, L=1):
    """Matrix-product FLOPs of one training step (forward 1x, backward 2x), L layers."""
    G = GATES[cell]
    n = T * B
    fwd = 2 * n * (E * G * H + H * G * H + (L - 1) * 2 * H * G * H + H * V)
    return 3 * fwd


def numpy_step(cell, H, B, T, modules=None, L=1):
    """A function running one training step of a fresh model; `modules` = (LanguageModel,
    Optimizer, clip_global_norm) of another rnncli tree (--against), else this one's."""
    lm, optimizer, clip = modules or (LanguageModel, Optimizer, clip_global_norm)
    rng = np.random.default_rng(0)
    model = lm(V, rng, embed=E, hidden=H, cell=cell, layers=L)
    opt = optimizer("adam", lr=1e-3)
    ids = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))

    def step():
        loss, grads, _ = model.loss_and_grads(ids, targets)
        clip(grads, 5.0)
        opt.step(model.params, grads)

    return step


def time_numpy(cell, H, B, T, repeats, L=1):
    step = numpy_step(cell, H, B, T, L=L)
    times = []
    for r in range(repeats + 2):
        t = time.perf_counter()
        step()
        if r >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_other_tree(path):
    """(LanguageModel, Optimizer, clip_global_norm) of the rnncli checkout at `path`."""
    with other_tree(path):
        from rnncli.nn.optim import Optimizer as other_opt
        from rnncli.nn.optim import clip_global_norm as other_clip
        from rnncli.tasks.lm import LanguageModel as other_lm
    return other_lm, other_opt, other_clip


def time_against(cell, H, B, T, repeats, other, L=1):
    """Median step times (this tree, the other), alternating in one process (bench/ab.py)."""
    return alternate([numpy_step(cell, H, B, T, L=L), numpy_step(cell, H, B, T, other, L=L)], repeats)


def time_torch(cell, H, B, T, repeats, L=1):
    import torch

    torch.manual_seed(0)
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    emb, rnn, head = torch.nn.Embedding(V, E), mod(E, H, L), torch.nn.Linear(H, V)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    ids = torch.randint(0, V, (T, B))
    targets = torch.randint(0, V, (T, B))
    times = []
    for r in range(repeats + 2):
        t = time.perf_counter()
        out, _ = rnn(emb(ids))
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if r >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def embedding_grad_comparison(repeats=20):
    """The scatter-add behind Embedding.backward against np.add.at, PTB-sized."""
    rng = np.random.default_rng(0)
    emb = Embedding(10000, 200, rng)
    ids = rng.integers(0, 10000, (35, 64))
    d = rng.standard_normal((35, 64, 200)).astype(np.float32)

    def add_at():
        dE = np.zeros_like(emb.params["E"])
        np.add.at(dE, ids.reshape(-1), d.reshape(-1, 200))
        return dE

    ours, naive = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        emb.backward(d, ids)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        add_at()
        naive.append(time.perf_counter() - t)
    assert np.allclose(emb.backward(d, ids)["E"], add_at(), atol=1e-4)
    return statistics.median(ours), statistics.median(naive)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--sizes", default="128x32x64,256x32x64,512x64x64,256x32x64x2",
                    help="hidden x batch x steps [x layers]; 256x32x64x2 is configs/char-lm.yaml's stack")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--against", metavar="DIR", help="another rnncli checkout to time side by side (A/B)")
    ap.add_argument("--malloc-default", action="store_true", help="leave glibc's malloc as it is (rnncli's "
                    "commands keep freed memory for reuse, rnncli/memory.py; so does this script unless told)")
    args = ap.parse_args()
    if not args.malloc_default:
        from rnncli.memory import keep_freed_memory

        print(f"malloc keeps freed memory (both sides): {keep_freed_memory()}")
    if args.against:
        main_against(args)
        return
    try:
        if args.no_torch:
            raise ImportError
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        have_torch = True
    except ImportError:
        have_torch = False
    ceiling = matmul_ceiling()
    print(f"numpy {np.__version__}; float32 matmul ceiling (2048x1024 @ 1024x1024, median): {ceiling:.0f} GFLOP/s")
    if have_torch:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = f"{'cell':5} {'H x B x T':>12} {'ours tok/s':>11} {'GFLOP/s':>8} {'% ceil':>7}"
    if have_torch:
        # PyTorch runs an LSTM through oneDNN's fused kernels when it can; "native" is its own
        # cell loop (torch.backends.mkldnn off), the path its GRU and RNN always take
        header += f" {'torch tok/s':>12} {'ratio':>6} {'native tok/s':>13} {'ratio':>6}"
    print(header)
    for cell in args.cells.split(","):
        for size in args.sizes.split(","):
            H, B, T, L = parse_size(size)
            ours = time_numpy(cell, H, B, T, args.repeats, L)
            gflops = step_flops(cell, H, B, T, L) / ours / 1e9
            line = f"{cell:5} {size:>12} {T * B / ours:11.0f} {gflops:8.1f} {100 * gflops / ceiling:6.0f}%"
            if have_torch:
                theirs = time_torch(cell, H, B, T, args.repeats, L)
                line += f" {T * B / theirs:12.0f} {theirs / ours:5.2f}x"
                with torch.backends.mkldnn.flags(enabled=False):
                    native = time_torch(cell, H, B, T, args.repeats, L)
                line += f" {T * B / native:13.0f} {native / ours:5.2f}x"
            print(line, flush=True)
    ours, naive = embedding_grad_comparison()
    print(f"embedding gradient (V=10000, D=200, 2240 ids): sort+reduceat {ours * 1e3:.2f} ms, "
          f"np.add.at {naive * 1e3:.2f} ms ({naive / ours:.1f}x)")


def main_against(args):
    other = load_other_tree(args.against)
    print(f"numpy {np.__version__}; this tree against {args.against}, steps alternated in one process")
    print(f"{'cell':5} {'H x B x T':>12} {'this tok/s':>11} {'other tok/s':>12} {'this/other':>11}")
    for cell in args.cells.split(","):
        for size in args.sizes.split(","):
            H, B, T, L = parse_size(size)
            ours, theirs = time_against(cell, H, B, T, args.repeats, other, L)
            print(f"{cell:5} {size:>12} {T * B / ours:11.0f} {T * B / theirs:12.0f} {theirs / ours:10.3f}x", flush=True)


if __name__ == "__main__":
    main()
