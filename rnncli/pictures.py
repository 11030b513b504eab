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
    def chart(series, title, y_label):
        return line_chart(series, title, "step", y_label, integer_x=True)

    charts = [chart(loss, "loss", "loss")]
    for key, label in (("accuracy", "valid accuracy"), ("f1", "valid entity F1"), ("bleu", "valid BLEU")):
        if any(key in v for v in valid):
            charts.append(chart({label: (steps, [v.get(key) for v in valid])}, label, label))
    charts.append(chart({"learning rate": (steps, [h.get("lr") for h in history])}, "learning rate", "lr"))
    if any(h.get("tokens_per_s") for h in history):  # recorded since this version
        charts.append(chart({"tokens/s": (steps, [h.get("tokens_per_s") for h in history])}, "training speed",
                            "tokens per second"))
    return charts


SECONDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
LEFT, TOP = 74, 10  # room for the frequency axis's labels, and above the picture


def spectrogram(x, strips=(), audio=None):
    """Frames x (T, D), normalised (about -3..3), as an SVG picture read at its own size: time left
    to right on an axis in seconds (frames without audio), the lowest band at the bottom on an
    axis of the mel bands' centre frequencies (dimensions without audio), a colour scale, each
    cell shaded from white (low) to green (high); under it one strip of T cells per (name, values
    in [0, 1]) pair: per-frame probabilities. audio: the model's recording settings (sample_rate,
    hop_ms, bands, deltas), or None for frames given as numbers."""
    from rnncli.charts import SVG

    T, D = x.shape
    cw, ch = max(4, -(-640 // T)), max(3, -(-160 // D))  # cells: at least 640 x 160 pixels in all
    v = np.clip((x + 3.0) / 6.0, 0.0, 1.0)
    parts = [element("rect", x=LEFT + t * cw, y=TOP + (D - 1 - d) * ch, width=cw, height=ch,
                     fill="rgb({},{},{})".format(*sequential(v[t, d]))) for t in range(T) for d in range(D)]
    parts += _frequency_axis(D, ch, audio) + _time_axis(T, cw, TOP + D * ch, audio)
    parts += _colour_scale(LEFT + T * cw + 12, D * ch)
    strip_top = TOP + D * ch + 42  # under the time axis
    parts += _strips(strips, strip_top, T, cw)
    width = LEFT + T * cw + (170 if strips else 60)
    return element("svg", *parts, xmlns=SVG, width=width, height=strip_top + 16 * len(strips) + 4,
                   font_family="sans-serif")


def image(pixels, strips=()):
    """An image (H, W, C) of values in [0, 1] as an SVG picture, drawn as it is (top row at the top,
    grey or colour), each pixel a square of at least 12 pixels; under it one strip of W cells per
    (name, values in [0, 1]) pair: a word's attention over the image's columns."""
    from rnncli.charts import SVG

    H, W, C = pixels.shape
    cell = max(12, -(-320 // max(H, W)))
    rgb = np.round(255 * np.clip(pixels if C == 3 else np.repeat(pixels, 3, axis=2), 0, 1)).astype(int)
    parts = [element("rect", x=LEFT + c * cell, y=TOP + r * cell, width=cell, height=cell,
                     fill="rgb({},{},{})".format(*rgb[r, c])) for r in range(H) for c in range(W)]
    strip_top = TOP + H * cell + 14
    parts += _strips(strips, strip_top, W, cell)
    width = LEFT + W * cell + (170 if strips else 20)
    return element("svg", *parts, xmlns=SVG, width=width, height=strip_top + 16 * len(strips) + 4,
                   font_family="sans-serif")


def _strips(strips, top, steps, width):
    """One row of `steps` cells `width` wide per (name, values in [0, 1]) pair, from `top` down, each
    named on its right: a token's probability or attention at every step."""
    parts = []
    for k, (name, values) in enumerate(strips):
        y = top + k * 16
        parts += [element("rect", x=LEFT + t * width, y=y, width=width, height=12,
                          fill="rgb({},{},{})".format(*sequential(values[t]))) for t in range(steps)]
        parts.append(element("text", name, x=LEFT + steps * width + 6, y=y + 10, font_size=11))
    return parts


def _frequency_axis(D, ch, audio):
    """Five ticks up the left side: each band's centre frequency (deltas, stacked above the bands,
    marked Δ), or the frame's dimension."""
    if audio:
        from rnncli.frames.audio import hz_to_mel, mel_to_hz

        bands = audio["bands"]
        centres = mel_to_hz(np.linspace(0.0, hz_to_mel(audio["sample_rate"] / 2.0), bands + 2))[1:-1]
        labels = [("Δ " if d >= bands else "") + f"{centres[d % bands]:,.0f} Hz" for d in range(D)]
    else:
        labels = [f"dim {d}" for d in range(D)]
    parts = []
    for d in sorted({int(round(k * (D - 1) / 4)) for k in range(5)}):
        y = TOP + (D - 1 - d) * ch + ch / 2
        parts.append(element("line", x1=LEFT - 4, x2=LEFT, y1=f"{y:.1f}", y2=f"{y:.1f}", stroke="#555"))
        parts.append(element("text", labels[d], x=LEFT - 6, y=f"{y + 4:.1f}", text_anchor="end", font_size=10))
    middle = TOP + D * ch / 2
    parts.append(element("text", "mel band" if audio else "frame dimension", x=12, y=middle, text_anchor="middle",
                         font_size=11, transform=f"rotate(-90 12 {middle:.1f})"))
    return parts


def _time_axis(T, cw, y, audio):
    """Ticks along the bottom: seconds for a recording (a round step, at most eight), frames otherwise."""
    from rnncli.charts import integer_ticks

    if audio:
        seconds, hop = T * audio["hop_ms"] / 1000.0, audio["hop_ms"] / 1000.0
        step = next((s for s in SECONDS if seconds / s <= 8), SECONDS[-1])
        ticks = [(k * step / hop, f"{k * step:g} s") for k in range(int(seconds / step) + 1)]
    else:
        ticks = [(t, f"{t:,}") for t in integer_ticks(0, T)]
    parts = []
    for t, label in ticks:
        px = f"{LEFT + t * cw:.1f}"
        parts.append(element("line", x1=px, x2=px, y1=y, y2=y + 4, stroke="#555"))
        parts.append(element("text", label, x=px, y=y + 16, text_anchor="middle", font_size=10))
    parts.append(element("text", "time" if audio else "frame", x=LEFT + T * cw / 2, y=y + 30, text_anchor="middle",
                         font_size=11))
    return parts


def _colour_scale(x, height, steps=12):
    """A vertical bar of the shades, high at the top, labelled in standard deviations (the frames
    are normalised)."""
    parts = [element("rect", x=x, y=f"{TOP + k * height / steps:.1f}", width=12, height=f"{height / steps + 0.5:.1f}",
                     fill="rgb({},{},{})".format(*sequential(1 - (k + 0.5) / steps))) for k in range(steps)]
    for value, y in (("+3 sd", TOP + 8), ("0", TOP + height / 2 + 4), ("−3 sd", TOP + height)):
        parts.append(element("text", value, x=x + 16, y=f"{y:.1f}", font_size=10))
    return parts
