"""One rule for checking a model's gradients against numerical ones, shared by the test files."""

import os
import subprocess
import sys

import numpy as np

from rnncli.nn.gradcheck import check_gradients, numerical_gradient


def assert_model_gradients(model, data, eps=1e-5, entries=20, tiny=1e-4, seed=4):
    """model.loss_and_grads(*data) against central differences in float64, 20 entries of every
    array drawn at random (all of a small one). A gradient near zero (attention behind a saturated
    score) has no meaningful relative error: there the whole difference must be at rounding level."""

    def run():
        return model.loss_and_grads(*data, rng=np.random.default_rng(seed))

    _, grads = run()
    assert set(grads) == set(model.params)
    errors = check_gradients(lambda: run()[0], dict(model.params), grads, eps=eps, entries=entries,
                             rng=np.random.default_rng(0))
    for name in [n for n, e in errors.items() if e >= 1e-6]:
        numeric = numerical_gradient(lambda: run()[0], model.params[name], eps=eps)
        assert np.linalg.norm(grads[name]) < tiny and np.abs(numeric - grads[name]).max() < 1e-9, (name, errors)


def run_guide_block(doc, heading, cwd, samples):
    """A guide's first code block under `heading`, line by line in bash, as a user pastes it (`python`
    is this interpreter, sample_data/ the repository's): -> the CompletedProcess of each line."""
    guide = open(os.path.join(samples, "..", "docs", doc), encoding="utf-8").read()
    block = guide.split(f"{heading}\n", 1)[1].split("```\n", 2)[1]
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    os.symlink(samples, os.path.join(cwd, "sample_data"))
    outputs = []
    for line in block.strip().splitlines():
        command = line.split("  #")[0].replace("python ", f"{sys.executable} ", 1)
        r = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (line, r.stderr[-500:])
        outputs.append(r)
    return outputs
