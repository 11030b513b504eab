"""The one door every HTML page and SVG picture goes through: elements built from names and
text, never by pasting strings together.

Every string that reaches a page may come from a file someone else made: a label, a tag, a
vocabulary entry, the model's file name, the user's own text, a config value, a history field.
So text is escaped here, always; only what this module itself built (a `Markup`) passes through
as markup. Element and attribute names are checked against short lists of what our pages use:
no <script>, no event handlers (onload=...), no attribute that fetches from outside (href, src),
so even a bug in a caller cannot make a page run code or load anything.

    element("p", "a <b> label")               -> <p>a &lt;b&gt; label</p>
    element("span", "x", title='"hi"')         -> <span title="&quot;hi&quot;">x</span>
    element("svg", element("text", "t"), width=640)
"""

import html
import re

# the elements and attributes the pages and charts use; anything else is a programming error
TAGS = frozenset({"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "span", "br", "table",
                  "tr", "th", "td", "svg", "g", "text", "line", "rect", "polyline", "circle"})
VOID = frozenset({"meta", "br"})
ATTRIBUTES = frozenset({"lang", "charset", "class", "style", "title", "xmlns", "width", "height", "font-family",
                        "font-size", "x", "y", "x1", "x2", "y1", "y2", "text-anchor", "transform", "fill", "stroke",
                        "stroke-width", "points", "viewBox", "cx", "cy", "r"})
# a style attribute holds only what our own code writes: colours and sizes from numbers
_STYLE = re.compile(r"[a-z-]+:[#a-zA-Z0-9(),.% -]+(;[a-z-]+:[#a-zA-Z0-9(),.% -]+)*;?")


class Markup(str):
    """Text that is already HTML built by this module: passed through as it is."""


def escape(value):
    """Any value as HTML text (quotes included, so it is safe inside an attribute too)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts, sep=""):
    """Several pieces as one, each escaped unless it is Markup."""
    return Markup(escape(sep).join(escape(p) for p in parts))


def element(tag, *children, **attributes):
    """<tag attributes>children</tag>; attribute names may use _ for - (font_size=12), None skips
    an attribute. Children are escaped unless they are Markup."""
    if tag not in TAGS:
        raise ValueError(f"element {tag!r} is not one our pages use")
    attrs = []
    for name, value in attributes.items():
        if value is None:
            continue
        name = name.rstrip("_").replace("_", "-")
        if name not in ATTRIBUTES:
            raise ValueError(f"attribute {name!r} is not one our pages use")
        if name == "style" and not _STYLE.fullmatch(str(value)):
            raise ValueError(f"style {value!r} is not one our pages write")
        attrs.append(f' {name}="{escape(value)}"')
    opening = f"<{tag}{''.join(attrs)}>"
    if tag in VOID:
        return Markup(opening)
    return Markup(f"{opening}{join(children)}</{tag}>")


def style_sheet(css):
    """The page's fixed style sheet (our own text, never data): refuses anything that could close it."""
    if "<" in css or ">" in css:
        raise ValueError("a style sheet holds no < or >")
    return Markup(f"<style>{css}</style>")


def document(title, css, *body):
    """A whole self-contained page: inline style, no scripts, nothing fetched from outside."""
    head = element("head", element("meta", charset="utf-8"), element("title", title), style_sheet(css))
    return Markup("<!DOCTYPE html>\n" + element("html", head, element("body", element("h1", title), *body),
                                                  lang="en") + "\n")
