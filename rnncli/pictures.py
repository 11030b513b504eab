"""What `show` draws: tokens on coloured backgrounds (terminal and HTML), attention as a heat
map, training curves. Every HTML page is self-contained (charts.page): inline CSS, no scripts."""

import numpy as np

from rnncli.charts import line_chart, page
from rnncli.markup import element, join


def diverging(v):
    """v in [-1, 1] -> an RGB triple: blue for negative, white at 0, red for positive."""
    v = max(-1.0, min(1.0, float(v)))
    fade = int(255 * (1 - abs(v)))
    return (255, fade, fade) if v >= 0 else (fade, fade, 255)


def sequential(v):
    """v in [0, 1] -> white to green."""
    v = max(0.0, min(1.0, float(v)))
    return (int(255 - 155 * v), int(255 - 55 * v), int(255 - 155 * v))


def _shown(tok):
    return {"\n": "↵\n", " ": "␣", "\t": "⇥"}.get(tok, tok) if len(tok) == 1 else tok


def rich_tokens(tokens, colours, sep=""):
    """A rich Text of the tokens on their background colours."""
    from rich.text import Text

    text = Text()
    for k, (tok, (r, g, b)) in enumerate(zip(tokens, colours, strict=True)):
        text.append(("↵\n" if tok == "\n" else tok), style=f"black on rgb({r},{g},{b})")
        if sep and k < len(tokens) - 1:
            text.append(sep)
    return text


def html_tokens(tokens, colours, titles=None, sep=""):
    """<span class="tok"> per token, coloured, with a hover title; a newline token ends its line."""
    out = []
    for k, (tok, (r, g, b)) in enumerate(zip(tokens, colours, strict=True)):
        span = element("span", _shown(tok).rstrip("\n"), class_="tok", style=f"background:rgb({r},{g},{b})",
                       title=titles[k] if titles else None)
        out.append(join([span, element("br")]) if tok == "\n" else span)
    return join(out, sep)


def heatmap(rows, cols, weights, title):
    """An HTML table: one row per target token, one column per source token, cells shaded by weight
    (in a box that scrolls sideways when the source is longer than the window is wide)."""
    top = max(max(row) for row in weights) or 1.0  # shade against the largest weight, so structure shows
    head = element("tr", element("th"), *[element("th", _shown(c)) for c in cols])
    body = [element("tr", element("th", _shown(r)),
                    *[element("td", f"{w:.2f}", style=f"background:rgb{sequential(w / top)}", title=f"{w:.3f}")
                      for w in row])
            for r, row in zip(rows, weights, strict=True)]
    return join([element("h2", title), element("div", element("table", head, *body), class_="wide")])


def curves_page(path, history):
    """Train and validation loss, the score, the learning rate and tokens/s against steps."""
    return page(f"training curves of {path}", *[element("p", c) for c in curve_charts(history)])


def curve_charts(history):
    """The charts of a checkpoint's history, as SVG texts: the loss first."""
    steps = [h["step"] for h in history]
    loss = {"train loss": (steps, [h.get("train_loss") for h in history])}
    valid = [h.get("valid") or {} for h in history]
    if any("loss" in v for v in valid):
        loss["valid loss"] = (steps, [v.get("loss") for v in valid])
    charts = [line_chart(loss, "loss", "step", "loss")]
    for key, label in (("accuracy", "valid accuracy"), ("f1", "valid entity F1"), ("bleu", "valid BLEU")):
        if any(key in v for v in valid):
            charts.append(line_chart({label: (steps, [v.get(key) for v in valid])}, label, "step", label))
    charts.append(line_chart({"learning rate": (steps, [h.get("lr") for h in history])}, "learning rate", "step",
                             "lr"))
    if any(h.get("tokens_per_s") for h in history):  # recorded since this version
        charts.append(line_chart({"tokens/s": (steps, [h.get("tokens_per_s") for h in history])},
                                 "training speed", "step", "tokens per second"))
    return charts


def spectrogram(x, strips=(), cell=4, height=3):
    """Frames x (T, D), normalised (about -3..3), as an SVG picture: time left to right, the
    lowest band at the bottom, each cell shaded from white (low) to green (high); under it one
    strip of T cells per (name, values in [0, 1]) pair: per-frame probabilities."""
    from rnncli.charts import SVG

    T, D = x.shape
    v = np.clip((x + 3.0) / 6.0, 0.0, 1.0)
    parts = [element("rect", x=t * cell, y=(D - 1 - d) * height, width=cell, height=height,
                     fill="rgb({},{},{})".format(*sequential(v[t, d]))) for t in range(T) for d in range(D)]
    top = D * height + 4
    for k, (name, values) in enumerate(strips):
        y = top + k * 16
        parts += [element("rect", x=t * cell, y=y, width=cell, height=12,
                          fill="rgb({},{},{})".format(*sequential(values[t]))) for t in range(T)]
        parts.append(element("text", name, x=T * cell + 6, y=y + 10, font_size=11))
    width, total = T * cell + 160, top + 16 * len(strips) + 4
    return element("svg", *parts, xmlns=SVG, width=width, height=total, font_family="sans-serif")
