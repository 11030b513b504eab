"""Charts written by hand as SVG (no plotting library, nothing fetched: the HTML reports are
self-contained), and the terminal's one-line version of a curve.

Why not matplotlib: an SVG line chart is a few dozen lines, keeps the reports text that diffs and
greps, and adds no dependency; a library would be an optional extra for one kind of picture.
"""

import html
import math

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
BARS = "▁▂▃▄▅▆▇█"


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


def line_chart(series, title, x_label, y_label, log_y=False, width=640, height=360):
    """series: {name: (xs, ys)} -> an <svg> element as text."""
    left, right, top, bottom = 70, 160, 30, 50
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True)
           if y is not None and (y > 0 or not log_y)]
    if not pts:
        return f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='40'><text x='10' y='25'>" \
               f"{html.escape(title)}: nothing to draw</text></svg>"

    def fy(y):
        return math.log10(y) if log_y else y

    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(fy(p[1]) for p in pts), max(fy(p[1]) for p in pts)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pw, ph = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - (fy(y) - y0) / (y1 - y0) * ph

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
             f"font-size='12'>", f"<text x='{left}' y='18' font-size='14'>{html.escape(title)}</text>",
             f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    ticks = range(int(y0), int(y1) + 1) if log_y else [y0 + (y1 - y0) * k / 4 for k in range(5)]
    for t in ticks:
        y = top + ph - (t - y0) / (y1 - y0) * ph
        label = f"1e{int(t)}" if log_y else f"{t:.3g}"
        parts.append(f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
                     f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{label}</text>")
    for k in range(5):
        x = x0 + (x1 - x0) * k / 4
        label = f"{round(x):,}" if x1 - x0 >= 8 else f"{x:.3g}"  # steps and distances are whole numbers
        parts.append(f"<text x='{sx(x):.1f}' y='{top + ph + 16}' text-anchor='middle'>{label}</text>")
    parts.append(f"<text x='{left + pw / 2}' y='{height - 10}' text-anchor='middle'>{html.escape(x_label)}</text>")
    parts.append(f"<text x='14' y='{top + ph / 2}' transform='rotate(-90 14 {top + ph / 2})' "
                 f"text-anchor='middle'>{html.escape(y_label)}</text>")
    for k, (name, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True)
                        if y is not None and (y > 0 or not log_y))
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{path}'/>")
        parts.append(f"<text x='{left + pw + 10}' y='{top + 14 + 18 * k}' fill='{colour}'>{html.escape(name)}</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def page(title, body):
    """A self-contained HTML page: inline CSS, no scripts or links to anything outside it."""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;"
            "text-align:right}th{background:#f4f4f4}.tok{padding:0 1px;border-radius:2px;white-space:pre}"
            "</style></head><body>" f"<h1>{html.escape(title)}</h1>{body}</body></html>\n")
