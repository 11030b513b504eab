"""The mean and standard deviation that standardise numbers a model reads or predicts (frames in,
regression targets out): z = (x - mean) / sd, per dimension, from the training split.

Values a float64 holds can still have a spread it cannot (1e300 squared overflows): such data is
refused in one line rather than standardised into infinities and NaN with NumPy's warnings.
"""

import numpy as np

from rnncli.errors import RnncliError


def mean_and_sd(values, what, tiny=0.0):
    """values (N, D) -> (mean, sd) as lists of D floats; an sd of `tiny` or less becomes 1 (a constant
    dimension is left where it is). what: how the error names the values ("regression targets")."""
    x = np.asarray(values, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, sd = x.mean(axis=0), x.std(axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))):
        largest = float(np.abs(x).max())
        raise RnncliError(f"the {what} spread wider than a float64 holds (values up to {largest:.3g} in size): "
                          "rescale them (for example to other units, or their logarithm)")
    return mean.tolist(), [float(v) if v > tiny else 1.0 for v in sd]
