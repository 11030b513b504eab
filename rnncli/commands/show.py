"""rnncli show: load the model, read the text (readout.py) and make its picture: what the terminal
shows, the numbers (--json) and, with -o, a self-contained HTML page (pictures.py); or the training
curves. Returns a Picture; render.show_picture prints it and writes the page."""

import sys
import typing

import numpy as np

from rnncli import console
from rnncli.errors import RnncliError, UsageError


def _text(text):
    if text is None:
        raise UsageError("give a text to show (or - to read standard input), or --curves")
    return sys.stdin.read() if text == "-" else text


class Picture(typing.NamedTuple):
    """What show makes: ("log", text) and ("show", a Rich renderable) items for the terminal, in
    order; the numbers (--json); and the page (HTML, or SVG) for -o."""

    terminal: list
    numbers: dict | None = None
    page: str | None = None


def run_show(text, model_path, unit=None, gate=None, top=False, curves=False, out=None, label=None, given=()):
    """-> the Picture of a text (or recording) read by the model, or of its training curves. out: where
    the page will go (-o), None for none; given: the options the user gave, checked against the model's
    task (tasks/options.py). The model's Task names its pictures (Task.text_picture, Task.frames_picture:
    functions below)."""
    from rnncli.tasks.options import check_options

    if curves:
        return _curves(model_path, out)
    from rnncli.models import load_model

    model, meta, _ = load_model(model_path)
    check_options("show", meta["task"], given)
    return picture_of(model, meta, str(model_path), text, out is not None,
                      dict(unit=unit, gate=gate, top=top, label=label))


def picture_of(model, meta, name, text, paged=True, options=None):
    """The Picture of a text (or a recording's path) read by a loaded model (its Task's picture);
    name: what the page calls the model; paged: make the page too (`serve` shows it)."""
    from rnncli.tasks.registry import task_named

    task = task_named(meta["task"])
    shown = Shown(model, meta, name, paged, [])
    if meta["data"].get("input") == "frames":
        return _frames(shown, text, globals()[task.frames_picture])
    options = options or dict(unit=None, gate=None, top=False, label=None)
    return globals()[task.text_picture](shown, _text(text), options)


class Shown(typing.NamedTuple):
    """What every picture needs: the model, its meta, its path, whether a page is asked for (-o),
    and the terminal's items so far."""

    model: object
    meta: dict
    path: str
    paged: bool
    terminal: list


def _tokens_shown(shown, result, tokens, colours, titles, caption):
    """Coloured tokens in the terminal, the numbers with --json, and with -o the page."""
    from rnncli import pictures
    from rnncli.charts import page
    from rnncli.markup import element

    sep = "" if shown.meta["data"].get("level") == "char" else " "
    shown.terminal.extend([("log", caption), ("show", pictures.rich_tokens(tokens, colours, sep))])
    html = page(f"{shown.path}: {shown.meta['task']}", element("p", caption),
                element("p", pictures.html_tokens(tokens, colours, titles, sep), style="line-height:1.9"))
    return Picture(shown.terminal, result, html if shown.paged else None)


def lm_picture(shown, text, options):
    """A language model's units or gates at every token (--unit, --gate, --top; --label: the text
    read as that label's)."""
    return _tokens_shown(shown, *_lm(shown, text, **options))


def tag_picture(shown, text, options):
    """Each token's tag, shaded by its probability given the whole sentence."""
    from rnncli import pictures
    from rnncli.readout import read_tagger

    result = read_tagger(shown.model, shown.meta, text)
    tokens = [f"{w}/{t}" for w, t in zip(result["tokens"], result["tags"], strict=True)]
    colours = [pictures.sequential(p) for p in result["probabilities"]]
    titles = [f"{t}: p = {p:.3f}" for t, p in zip(result["tags"], result["probabilities"], strict=True)]
    return _tokens_shown(shown, result, tokens, colours, titles,
                         "each token's tag, shaded by its probability given the whole sentence")


def classify_picture(shown, text, options):
    """Each token's share of the predicted label."""
    from rnncli import pictures
    from rnncli.readout import read_classifier

    result = read_classifier(shown.model, shown.meta, text)
    c = np.array(result["contributions"])
    scale = max(float(np.abs(c).max()), 1e-12)
    caption = (f"{result['label']} (p = {result['probability']:.3f}); colour: {result['how']}"
               + ("" if min(c) >= 0 else " (red: towards it, blue: against it)"))
    return _tokens_shown(shown, result, result["tokens"], [pictures.diverging(v / scale) for v in c],
                         [f"{v:+.4f}" for v in c], caption)


def regress_picture(shown, text, options):
    """The scores, and each token coloured by its share of the first score."""
    from rnncli import pictures
    from rnncli.readout import read_regression

    result = read_regression(shown.model, shown.meta, text)
    c = np.array(result["contributions"])
    scale = max(float(np.abs(c).max()), 1e-12)
    caption = (", ".join(f"{n} = {v:.4g}" for n, v in result["scores"].items()) + f"; colour: {result['how']}"
               + ("" if min(c) >= 0 else " (red: raises it, blue: lowers it)"))
    return _tokens_shown(shown, result, result["tokens"], [pictures.diverging(v / scale) for v in c],
                         [f"{v:+.4g}" for v in c], caption)


def translation_picture(shown, text, options):
    """The translation, and its attention as a table (and with -o a heat map)."""
    from rnncli import pictures
    from rnncli.charts import page
    from rnncli.readout import read_translation

    result = read_translation(shown.model, shown.meta, text)
    shown.terminal.append(("show", " ".join(result["target"][:-1])))
    if result["attention"] is None:
        shown.terminal.append(("log", "this encoder-decoder has no attention to show"))
        return Picture(shown.terminal, {**result, "attention": None})
    shown.terminal.append(("show", _attention_table(result)))
    html = page("attention", pictures.heatmap(result["target"], result["source"], result["attention"],
                                              "attention: each target token (row) over the source"))
    return Picture(shown.terminal, {**result, "attention": np.round(result["attention"], 6).tolist()},
                   html if shown.paged else None)


def _lm(shown, text, unit, gate, top, label=None):
    from rnncli import pictures
    from rnncli.readout import GATES, read_lm, top_units

    model, meta = shown.model, shown.meta
    read = read_lm(model, meta, text, label)
    H = read["hidden"].shape[1]
    if unit is not None and not 0 <= unit < H:
        raise UsageError(f"--unit must be 0 to {H - 1} (the top layer has {H} units)")
    kind = meta["config"]["cell"]
    if gate is not None and gate not in GATES[kind]:
        raise UsageError(f"--gate of a {kind}: {', '.join(GATES[kind]) or 'none (it has no gates)'}")
    ranked = top_units(read["hidden"], read["tokens"]) if top or unit is None and gate is None else []
    if top:
        shown.terminal.append(("show", console.table("units that track something simple (|r| = Pearson correlation)",
                                                     ["feature", "unit:", "r:"],
                                                     [(f, str(u), f"{r:+.2f}") for f, u, r in ranked])))
    if gate is not None:
        values = read["gates"][gate][:, unit] if unit is not None else read["gates"][gate].mean(axis=1)
        colours = [pictures.sequential(v) for v in values]
        caption = f"gate {gate}" + (f" of unit {unit}" if unit is not None else " (mean over the units)")
    else:
        unit = unit if unit is not None else (ranked[0][1] if ranked else 0)
        values = read["hidden"][:, unit]
        colours = [pictures.diverging(v) for v in values]
        caption = f"hidden unit {unit} of the top layer (blue -1 .. red +1)"
    titles = [f"{caption}: {v:+.3f}; next: " + ", ".join(f"{pictures._shown(t)!s} {p:.2f}" for t, p in nxt)
              for v, nxt in zip(values, read["next"], strict=True)]
    result = {"tokens": read["tokens"], "values": [float(v) for v in values], "what": caption,
              "top_units": [{"feature": f, "unit": u, "r": r} for f, u, r in ranked], "next": read["next"]}
    return result, read["tokens"], colours, titles, caption


def _attention_table(result):
    source, weights = result["source"], result["attention"]
    if len(source) <= 8:
        rows = [(t, *[f"{w:.2f}" for w in row]) for t, row in zip(result["target"], weights, strict=True)]
        return console.table("attention (rows: target tokens, columns: source tokens)", ["", *source], rows)
    # too wide for a terminal: each target token's most attended source tokens (-o draws it all)
    rows = [(t, ", ".join(f"{source[s]!r} {row[s]:.2f}" for s in np.argsort(-row)[:3]))
            for t, row in zip(result["target"], weights, strict=True)]
    return console.table("attention: the three source tokens each target token attends to most",
                         ["target", "source tokens (weight)"], rows)


def _curves(model_path, out):
    from rnncli import pictures
    from rnncli.models import read_checkpoint

    meta, _ = read_checkpoint(model_path)
    history = meta.get("history") or []
    if not history:
        raise RnncliError(f"{model_path}: no training history to draw")
    if out is None:
        raise UsageError("--curves draws a picture: give -o curves.html (or .svg)")
    if str(out).endswith(".svg"):  # one picture: the loss
        return Picture([], page=pictures.curve_charts(history)[0])
    return Picture([], page=pictures.curves_page(str(model_path), history))


def _frames(shown, path, picture):
    """A model of frames: its input (a recording or a .npy file) as a spectrogram, and what the
    model makes of it (picture: the Task's *_frames function below -> strips under the
    spectrogram, the numbers, a caption, the page's title, tables for the terminal)."""
    from rnncli import pictures
    from rnncli.charts import page
    from rnncli.commands.predict import frame_items
    from rnncli.markup import element
    from rnncli.text.encode import encode_frames

    if path is None or path == "-":
        raise UsageError("give the recording or .npy features file to show")
    data = shown.meta["data"]
    (_, x), = next(frame_items(path, False, data))
    if isinstance(x, str):
        raise RnncliError(x)
    frames = encode_frames(data, [x]).frames  # normalised as the model reads them
    result = {"frames": len(frames), "dim": int(frames.shape[1])}
    strips, found, caption, what, tables = picture(shown.model, shown.meta, frames)
    result.update(found)
    shown.terminal.extend([("show", t) for t in tables] + [("log", f"{path}: {len(frames)} frames of "
                                                                   f"{frames.shape[1]} numbers; {caption}")])
    if not shown.paged:
        return Picture(shown.terminal, result)
    if "image" in data:  # the picture as it was, not its normalised columns
        drawing = pictures.image(image_pixels(x, data["image"]), strips)
    else:
        drawing = pictures.spectrogram(frames, strips, data.get("audio"))
    return Picture(shown.terminal, result, page(f"{shown.path}: {what}", element("p", f"{path}: {caption}"),
                                                element("div", drawing, class_="wide")))


def image_pixels(columns, shape):
    """An image's frames (W, H * C) as read (not normalised) -> its pixels (H, W, C)."""
    H, W, C = shape
    return np.asarray(columns, np.float64).reshape(W, H, C).transpose(1, 0, 2)


def _one_sequence(frames):
    return frames[:, None, :], np.ones((len(frames), 1), np.float32)


def _top_layer(model, meta, frames):
    """A many-to-one model's top layer frame by frame: its mean gates and its most varying units,
    as strips and as numbers."""
    from rnncli.readout import read_frame_units

    gates, units = read_frame_units(model, frames, meta["config"]["cell"])
    names = {"i": "input gate", "f": "forget gate", "o": "output gate", "r": "reset gate", "u": "update gate"}
    strips = [(f"{names[g]} (mean)", v) for g, v in gates.items()]
    strips += [(f"unit {u}", (v + 1) / 2) for u, v in units.items()]  # tanh range onto [0, 1]
    return strips, {"gates": {names[g]: v.round(6).tolist() for g, v in gates.items()},
                    "units": {str(u): v.round(6).tolist() for u, v in units.items()}}


def classify_frames(model, meta, frames):
    """The label and its probability, under the top layer's gates and units."""
    strips, found = _top_layer(model, meta, frames)
    p = model.predict_proba(*_one_sequence(frames))[0]
    k = int(p.argmax())
    label = meta["data"]["labels"][k]
    return strips, {**found, "label": label, "probability": float(p[k])}, f"{label} (p = {p[k]:.3f})", \
        "classify of frames", []


def regress_frames(model, meta, frames):
    """The scores, under the top layer's gates and units."""
    strips, found = _top_layer(model, meta, frames)
    scores = dict(zip(meta["data"]["score_names"], map(float, model.predict(*_one_sequence(frames))[0]),
                      strict=True))
    return strips, {**found, "scores": scores}, ", ".join(f"{n} = {v:.4g}" for n, v in scores.items()), \
        "regress of frames", []


def tag_frames(model, meta, frames):
    """Each tag's probability, frame by frame."""
    tags, marginals = model.predict_with_marginals(*_one_sequence(frames))
    names = meta["data"]["tags"]
    found = {"tags": [names[t] for t in tags[:, 0]],
             "probabilities": {n: marginals[:, 0, k].round(6).tolist() for k, n in enumerate(names)}}
    return [(f"p({n})", marginals[:, 0, k]) for k, n in enumerate(names)], found, \
        "each tag's probability, frame by frame (darker: likelier)", "tag of frames", []


def caption_frames(model, meta, frames):
    """An image's caption, and for a model that attends, each word's attention over the columns."""
    strips, found, caption, _, tables = speech_frames(model, meta, frames)
    found["caption"] = found.pop("transcript")
    caption = caption.replace("over the frames", "over the image's columns")
    return strips, found, caption, "image captioning", tables


def speech_frames(model, meta, frames):
    """The transcript, and where in the recording each word was heard: a table of each token's
    peak, and each token's attention over the frames as strips."""
    from rnncli.readout import read_transcription

    read = read_transcription(model, meta, frames)
    words = read["target"]
    caption = " ".join(words[:-1]) or "(nothing)"
    found, strips, tables = {"transcript": caption, "tokens": words}, [], []
    if read["attention"] is not None:
        hop = (meta["data"].get("audio") or {}).get("hop_ms")
        rows = [(w, f"{p:,}" + (f" ({p * hop / 1000:.2f} s)" if hop else ""), f"{row.max():.2f}")
                for w, p, row in zip(words, read["peaks"], read["attention"], strict=True)]
        tables.append(console.table("where each token was heard: the frame it attended most",
                                    ["token", "frame", "weight:"], rows))
        # each token's row scaled to its own peak, so that a spread-out attention is still visible
        strips = [(w, row / max(row.max(), 1e-12)) for w, row in zip(words, read["per_frame"], strict=True)]
        found.update(attention=np.round(read["attention"], 6).tolist(), peaks=read["peaks"])
        caption += " (strips: each token's attention over the frames, scaled to its peak)"
    return strips, found, caption, "speech recognition", tables
