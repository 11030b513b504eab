"""Charts written by hand as SVG (no plotting library, nothing fetched: the HTML reports are
self-contained), and the terminal's one-line version of a curve.

Why not matplotlib: an SVG line chart is a few dozen lines, keeps the reports text that diffs and
greps, and adds no dependency; a library would be an optional extra for one kind of picture.
"""

import math

from rnncli.markup import document, element
from rnncli.text.readers import is_number

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
BARS = "▁▂▃▄▅▆▇█"
SVG = "http://www.w3.org/2000/svg"


def sparkline(values, log=False, low=None, high=None):
    """One character per value, its height the value's place between low and high (log10 if log)."""
    vals = [math.log10(v) if log and v > 0 else (v if not log else None) for v in values]
    real = [v for v in vals if v is not None]
    if not real:
        return ""
    lo = min(real) if low is None else (math.log10(low) if log else low)
    hi = max(real) if high is None else (math.log10(high) if log else high)
    span = (hi - lo) or 1.0
    return "".join(" " if v is None else BARS[min(len(BARS) - 1, max(0, int((v - lo) / span * len(BARS))))]
                   for v in vals)


def _axis(low, high):
    """The y range to draw: a constant or nearly constant series gets a range around its value
    (a flat line at 0.002 on a 0.002..1 axis tells nothing), else the data's own range."""
    span, middle = high - low, (high + low) / 2
    if span > 1e-3 * max(abs(middle), 1e-300):
        return low, high
    half = abs(middle) * 0.05 if middle else 1.0
    return middle - half, middle + half


MARKED = 30  # a series of this many points or fewer also draws each point, so a lone one is seen


def integer_ticks(low, high, count=5):
    """About `count` whole numbers from low to high, evenly stepped (steps are counted, not measured)."""
    step = max(1, math.ceil((high - low) / (count - 1)))
    first = math.ceil(low)
    return list(range(first, math.floor(high) + 1, step))


def line_chart(series, title, x_label, y_label, log_y=False, width=640, height=360, integer_x=False):
    """series: {name: (xs, ys)} -> an <svg> element (markup.Markup); every text in it is escaped.
    integer_x: the x values are counts (steps), ticked at whole numbers only."""
    left, right, top, bottom = 70, 160, 30, 50

    def drawn(x, y):
        return is_number(x) and is_number(y) and (y > 0 or not log_y)  # a history may hold anything

    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True) if drawn(x, y)]
    if not pts:
        return element("svg", element("text", f"{title}: nothing to draw", x=10, y=25),
                       xmlns=SVG, width=width, height=40)

    def fy(y):
        return math.log10(y) if log_y else y

    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(fy(p[1]) for p in pts), max(fy(p[1]) for p in pts)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)
        y1 = y1 if y1 > y0 else y0 + 1
    else:
        y0, y1 = _axis(y0, y1)
    if x1 <= x0:  # one x: centre it, rather than at the left edge of a made-up range
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (fy(y) - y0) / (y1 - y0) * ph

    parts = [element("text", title, x=left, y=18, font_size=14),
             element("rect", x=left, y=top, width=pw, height=ph, fill="none", stroke="#999")]
    ticks = range(int(y0), int(y1) + 1) if log_y else [y0 + (y1 - y0) * k / 4 for k in range(5)]
    for t in ticks:
        y = f"{top + ph - (t - y0) / (y1 - y0) * ph:.1f}"
        label = f"1e{int(t)}" if log_y else f"{t:.4g}"
        parts.append(element("line", x1=left, x2=left + pw, y1=y, y2=y, stroke="#eee"))
        parts.append(element("text", label, x=left - 6, y=f"{float(y) + 4:.1f}", text_anchor="end"))
    x_ticks = integer_ticks(x0, x1) if integer_x else [x0 + (x1 - x0) * k / 4 for k in range(5)]
    for x in x_ticks:
        label = f"{x:,}" if integer_x else f"{round(x):,}" if x1 - x0 >= 8 else f"{x:.3g}"
        parts.append(element("text", label, x=f"{sx(x):.1f}", y=top + ph + 16, text_anchor="middle"))
    parts.append(element("text", x_label, x=left + pw / 2, y=height - 10, text_anchor="middle"))
    parts.append(element("text", y_label, x=14, y=top + ph / 2, transform=f"rotate(-90 14 {top + ph / 2})",
                         text_anchor="middle"))
    for k, (name, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [(sx(x), sy(y)) for x, y in zip(xs, ys, strict=True) if drawn(x, y)]
        parts.append(element("polyline", fill="none", stroke=colour, stroke_width=2,
                             points=" ".join(f"{x:.1f},{y:.1f}" for x, y in points)))
        if len(points) <= MARKED:
            parts += [element("circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r=3, fill=colour) for x, y in points]
        parts.append(element("text", name, x=left + pw + 10, y=top + 14 + 18 * k, fill=colour))
    return element("svg", *parts, xmlns=SVG, width=width, height=height, font_family="sans-serif", font_size=12)


# long token lines wrap (pre-wrap keeps a token's own spaces), wide tables scroll inside their box,
# so no page is wider than its window
# numbers never break (a table cell holds one number: 0.05 must not become "0." over "05"); a
# picture drawn to be read at its own size (a spectrogram) scrolls in its box instead of shrinking
CSS = ("body{font-family:sans-serif;margin:2em;max-width:70em;color:#222;overflow-wrap:anywhere}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
       "text-align:right}td{white-space:nowrap;overflow-wrap:normal}th{background:#f4f4f4}"
       ".tok{padding:0 1px;border-radius:2px;white-space:pre-wrap}"
       ".wide{overflow-x:auto;max-width:100%}svg{max-width:100%;height:auto}.wide svg{max-width:none}"
       "svg text{overflow-wrap:normal}")


def page(title, *body):
    """A self-contained HTML page: inline CSS, no scripts or links to anything outside it."""
    return document(title, CSS, *body)
