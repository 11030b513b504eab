"""Central-difference gradient checking, in float64.

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The error is O(eps^2) from the Taylor series plus O(machine eps / eps) from rounding;
eps = 1e-6 in float64 balances the two near 1e-10. Differences below that rounding itself
(machine eps * max(|f|, 1) / eps per entry) count as agreement, as PyTorch's gradcheck has an
absolute tolerance beside its relative one: a loss that is constant in an array (a tagger of one
tag: every path is the only path) has analytic gradients of 1e-19 and numerical ones of 1e-13,
both zero, which a plain ratio would call unrelated; an attention matrix whose gradient is 1e-6
differs from its central difference by rounding alone.
"""

import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Gradient of the scalar function f() w.r.t. the array x, perturbing x in place."""
    return numerical_entries(f, x, range(x.size), eps).reshape(x.shape)


def relative_error(analytic, numeric, floor=0.0):
    """||a - n|| / (||a|| + ||n||): 0 for a perfect match, 1 for unrelated vectors; 0 too where
    ||a - n|| is within `floor`, the central difference's own rounding (check_gradients passes it):
    a smaller difference is not measured by the check, whatever the gradients' size."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    difference = np.linalg.norm(a - n)
    if difference <= floor:  # no larger than the rounding of the central difference: they agree
        return 0.0
    return float(difference / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300))


def check_gradients(f, arrays, analytic, eps=1e-6, entries=None, rng=None):
    """Compare analytic gradients with numerical ones for every array.

    f: () -> float, the loss recomputed from the current contents of `arrays`;
    arrays: {name: float64 array} (perturbed in place); analytic: {name: gradient}.
    entries: check at most this many entries of each array, drawn by rng (all when None).
    Returns {name: relative error}.
    """
    rounding = np.finfo(np.float64).eps * max(abs(f()), 1.0) / eps  # of one central difference
    if entries is None:
        return {name: relative_error(analytic[name], numerical_gradient(f, arr, eps), rounding * np.sqrt(arr.size))
                for name, arr in arrays.items()}
    rng = rng or np.random.default_rng(0)
    out = {}
    for name, arr in arrays.items():
        idx = rng.choice(arr.size, entries, replace=False) if arr.size > entries else np.arange(arr.size)
        out[name] = relative_error(np.asarray(analytic[name]).reshape(-1)[idx], numerical_entries(f, arr, idx, eps),
                                   rounding * np.sqrt(len(idx)))
    return out


def numerical_entries(f, x, idx, eps=1e-6):
    """The central difference of f() at the flat positions idx of x only."""
    flat, out = x.reshape(-1), np.zeros(len(idx))
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[j] = (plus - minus) / (2 * eps)
    return out
