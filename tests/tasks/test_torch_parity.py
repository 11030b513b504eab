"""Optional: outputs match PyTorch's nn.RNN/GRU/LSTM with weights exchanged as docs/checkpoint.md says."""

import numpy as np
import pytest

from rnncli.interop import from_torch, to_torch
from rnncli.nn.stack import RecurrentStack

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_match_pytorch_both_ways(cell, bidirectional):
    T, B, D, H = 6, 3, 5, 4
    torch.manual_seed(0)
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        D, H, num_layers=2, bidirectional=bidirectional).double()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)
    ours = RecurrentStack(cell, D, H, np.random.default_rng(0), num_layers=2, bidirectional=bidirectional,
                          dtype=np.float64)
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    for name, arr in from_torch(state, cell, H).items():
        ours.params[name][...] = arr
    x = np.random.default_rng(1).standard_normal((T, B, D))
    expected, _ = module(torch.from_numpy(x))
    got, _, _ = ours.forward(x)
    np.testing.assert_allclose(got, expected.detach().numpy(), atol=1e-12)
    back = to_torch(ours.params, cell, H)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    again, _ = module(torch.from_numpy(x))
    np.testing.assert_allclose(again.detach().numpy(), got, atol=1e-12)
