"""rnncli sample: text from a language model, as pieces to write as they come."""

import numpy as np

from rnncli.errors import UsageError
from rnncli.models import load_model
from rnncli.sample import check_sampling_options, generate
from rnncli.text.vocab import Vocab


def sample_texts(model_path, primes, temperature=1.0, top_k=None, top_p=None, max_len=1000, seed=None,
                 one_line=False):
    """Yield text pieces: for each prime, the prime and then each generated token, then a
    newline to end the sample. one_line (one prime per input line): newlines inside a
    sample become spaces, so each sample is one output line."""
    check_sampling_options(temperature, top_k, top_p, max_len)
    model, meta, _ = load_model(model_path)
    if meta.get("task") != "lm":
        raise UsageError(f"{model_path}: a {meta.get('task')} model does not generate text; use predict")
    data = meta["data"]
    vocab, level, lower = Vocab(data["vocab"]), data["level"], bool(data.get("lower"))
    rng = np.random.default_rng(seed)
    flat = (lambda s: s.replace("\n", " ")) if one_line else (lambda s: s)
    for prime in primes:
        last = prime
        if prime:
            yield flat(prime)
        for token in generate(model, vocab, level, prime, temperature, top_k, top_p, max_len, rng, lower=lower):
            yield flat(token)
            last = token
        if one_line or not last.endswith("\n"):
            yield "\n"
