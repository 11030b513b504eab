"""Optimizers over a {name: array} dict, global-norm clipping and learning-rate decay.

Parameters are updated in place, so every layer that holds a reference sees the new values.
Each optimizer keeps its state as {name: array} too, so a checkpoint can store and restore it.
"""

import math

import numpy as np

from rnncli.nn.rows import RowGradient, values_of

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw")


class Optimizer:
    """One object for the six update rules; `kind` picks the rule.

    sgd       p -= lr * g
    momentum  v = mu v + g;               p -= lr * v
    adagrad   s += g^2;                    p -= lr * g / (sqrt(s) + eps)
    rmsprop   s = rho s + (1 - rho) g^2;   p -= lr * g / (sqrt(s) + eps)
    adam      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
              p -= lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
    adamw     adam, with weight decay applied to p directly (decoupled) instead of added to g.
    For the others weight decay is L2: g += wd * p.

    average = d > 0 also keeps an exponential moving average of the weights after each update,
    p_avg = d_t p_avg + (1 - d_t) p (starting from the first updated p), in the state as "avg.<name>".
    The average of the last ~1/(1 - d) points of a noisy trajectory usually generalises better
    than its last point; train.py evaluates and saves it. The decay warms up, d_t = min(d, (1 + t) / (10 + t)),
    so that early on the average spans about the last tenth of the steps taken: with d from the
    start, the average after 500 steps of d = 0.999 would still be 60 % the first, untrained weights.
    """

    def __init__(self, kind="adam", lr=2e-3, weight_decay=0.0, momentum=0.9, rho=0.95,
                 betas=(0.9, 0.999), eps=1e-8, average=0.0):
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r}")
        self.kind, self.lr, self.weight_decay, self.average = kind, lr, weight_decay, average
        self.momentum, self.rho, self.betas, self.eps = momentum, rho, betas, eps
        self.t = 0
        self.state = {}  # "m.<name>", "v.<name>": arrays shaped like the parameters
        self._work = {}

    def _slot(self, key, like):
        if key not in self.state:
            self.state[key] = np.zeros_like(like)
        return self.state[key]

    def _scratch(self, like):
        """A work array shaped like `like`, kept between steps (not part of the state)."""
        key = (like.shape, like.dtype)
        if key not in self._work:
            self._work[key] = np.empty_like(like)
        return self._work[key]

    def step(self, params, grads, lr=None):
        """Update every parameter that has a gradient (a frozen one has none). A RowGradient
        (nn/rows.py) updates only its rows, their moments included: the "lazy" update that
        PyTorch's SparseAdam makes, equal to the dense one where every row has a gradient (one
        marked lazy=False is only carried as rows, and updates densely).

        The update is elementwise, so a step of some rows of each parameter (views, with their
        gradients' rows) is that part of the whole step: data-parallel workers each step their
        own block of rows so (parallel/world.py), and this class knows nothing of it."""
        lr = self.lr if lr is None else lr
        self.t += 1
        decay = min(self.average, (1.0 + self.t) / (10.0 + self.t))
        logs = (_log_decays(self.state), _log_decays(self.state) + math.log(decay)) if self.average else None
        for name, p in params.items():
            g = grads.get(name)
            if g is None:
                continue
            if isinstance(g, RowGradient) and g.lazy:  # gather the rows and their moments, update, scatter back
                if self.average and "avg." + name in self.state:
                    _catch_up(self.state, name, p, g.rows, logs[0])  # the rows' averages, up to the last step
                full = {k: self._slot(k + name, p) for k in self.moment_slots()}
                rows_of = {k: a[g.rows] for k, a in full.items()}
                sub = p[g.rows]
                self._update(sub, g.values, lr, rows_of.__getitem__, np.empty_like(sub))
                p[g.rows] = sub
                for k, a in full.items():
                    a[g.rows] = rows_of[k]
                if self.average:
                    _lazy_average(self.state, name, p, g.rows, decay, logs[1])
                continue
            if isinstance(g, RowGradient):
                g = g.dense()
            moments = {k: self._slot(k + name, p) for k in self.moment_slots()}
            self._update(p, g, lr, moments.__getitem__, self._scratch(p))
            if self.average:
                avg = self.state.get("avg." + name)
                if avg is None:
                    self.state["avg." + name] = p.copy()
                else:
                    avg *= decay
                    avg += np.multiply(p, 1.0 - decay, out=self._scratch(p))

    def moment_slots(self):
        """The state slots the rule keeps per parameter ("m." and/or "v.")."""
        return {"sgd": (), "momentum": ("m.",), "adagrad": ("v.",), "rmsprop": ("v.",)}.get(self.kind, ("m.", "v."))

    def _update(self, p, g, lr, slot, tmp):
        """One parameter's update rule, in place; slot("m.") / slot("v.") give its moments, tmp is
        work space shaped like p."""
        wd = self.weight_decay
        b1, b2 = self.betas
        if wd and self.kind != "adamw":
            g = g + wd * p
        if self.kind == "sgd":
            p -= lr * g
        elif self.kind == "momentum":
            v = slot("m.")
            v *= self.momentum
            v += g
            p -= lr * v
        elif self.kind in ("adagrad", "rmsprop"):
            s = slot("v.")
            if self.kind == "adagrad":
                s += g * g
            else:
                s *= self.rho
                s += (1.0 - self.rho) * (g * g)
            p -= lr * g / (np.sqrt(s) + self.eps)
        else:
            # every product goes into one scratch array: no temporaries of the parameter's
            # size, which for an embedding matrix cost more than the arithmetic
            m, v = slot("m."), slot("v.")
            m *= b1
            m += np.multiply(g, 1.0 - b1, out=tmp)
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            if self.kind == "adamw" and wd:
                p -= (lr * wd) * p
            # fold both bias corrections into the step size and eps (one pass less per array)
            step_size = lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
            denom = np.sqrt(v, out=tmp)
            denom += self.eps * math.sqrt(1.0 - b2**self.t)
            update = np.divide(m, denom, out=tmp)
            update *= step_size
            p -= update

    def averaged(self, params):
        """{name: averaged weights} (the live weights where no average exists yet). Tables averaged
        lazily are brought up to date first."""
        for name, p in params.items():
            if "avgc." + name in self.state:
                _catch_up(self.state, name, p, np.arange(p.shape[0]), _log_decays(self.state))
        return {name: self.state.get("avg." + name, p) for name, p in params.items()}


# ---------------------------------------------------------------- the average of a large table, lazily
# A row no batch touched keeps its weights p, so its average moves towards p by the decays of the
# steps it missed: avg = p + (prod of d_s) (avg_then - p). Keeping the running sum of log d_s
# ("avgC.", one number) and each row's value of it when its average was last brought up to date
# ("avgc.<name>") makes that exact without touching all rows at every step.


def _log_decays(state):
    return float(state.get("avgC.", np.zeros(()))[()])


def _catch_up(state, name, p, rows, now):
    """Bring the average of `rows` from their last update to the sum of log decays `now`."""
    avg, synced = state["avg." + name], state["avgc." + name]
    factor = np.exp(now - synced[rows])[:, None].astype(p.dtype)
    avg[rows] = p[rows] + factor * (avg[rows] - p[rows])
    synced[rows] = now


def _lazy_average(state, name, p, rows, decay, now):
    """This step's average update for the rows it changed; the others wait (_catch_up)."""
    if "avg." + name not in state:
        state["avg." + name] = p.copy()
        state["avgc." + name] = np.full(p.shape[0], now)
    else:
        avg = state["avg." + name]
        avg[rows] = decay * avg[rows] + (1.0 - decay) * p[rows]
        state["avgc." + name][rows] = now
    state["avgC."] = np.array(now)


def global_norm(grads):
    """The L2 norm of all gradients together (a RowGradient counts its rows)."""
    return math.sqrt(sum(float(np.vdot(v, v)) for v in map(values_of, grads.values())))


def clip_global_norm(grads, max_norm, total=None):
    """Scale all gradients together so that their joint L2 norm is at most max_norm.

    Clipping the global norm keeps the update's direction; clipping each array separately
    would not. Returns the norm before clipping. max_norm <= 0 disables clipping.
    total: the norm, when the caller knows it better (data-parallel workers each hold a block).
    """
    total = global_norm(grads) if total is None else total
    if max_norm > 0 and math.isfinite(total) and total > max_norm:  # a non-finite norm is the caller's to refuse
        scale = max_norm / (total + 1e-6)
        for g in grads.values():
            values_of(g)[...] *= scale
    return total


def decayed_lr(lr, decay, epoch):
    """Exponential decay per epoch: lr * decay^epoch (decay = 1 keeps lr constant)."""
    return lr * decay**epoch


def scheduled_lr(lr, schedule, done, step=0, warmup=0):
    """The learning rate once a share `done` (0..1) of the run has passed, at step `step`.

    constant: lr; linear: lr (1 - done); cosine: lr (1 + cos(pi done)) / 2, both 0 at the end.
    A warm-up ramps lr up linearly over its first `warmup` steps, as (step + 1) / warmup.
    """
    done = min(max(done, 0.0), 1.0)
    factor = {"constant": 1.0, "linear": 1.0 - done, "cosine": 0.5 * (1.0 + math.cos(math.pi * done))}[schedule]
    if warmup and step < warmup:
        factor *= (step + 1) / warmup
    return lr * factor
