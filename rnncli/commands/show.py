"""rnncli show: load the model, read the text (readout.py), draw it in the terminal and, with -o,
as a self-contained HTML page (pictures.py); or draw the training curves."""

import sys

import numpy as np

from rnncli import console
from rnncli.errors import RnncliError, UsageError
from rnncli.npzfile import write_file


def _text(text):
    if text is None:
        raise UsageError("give a text to show (or - to read standard input), or --curves")
    return sys.stdin.read() if text == "-" else text


def _write(out, page):
    write_file(out, lambda f: f.write(page.encode("utf-8")))
    console.log(f"wrote {out}")


def run_show(text, model_path, unit=None, gate=None, top=False, curves=False, out=None, json_out=False,
             label=None, given=()):
    """given: the options the user gave, checked against the model's task (tasks/options.py)."""
    from rnncli import pictures
    from rnncli.charts import page
    from rnncli.tasks.options import check_options

    if curves:
        return _curves(model_path, out)
    from rnncli.models import load_model

    model, meta, _ = load_model(model_path)
    task = meta["task"]
    check_options("show", task, given)
    if meta["data"].get("input") == "frames":
        return _frames(model, meta, text, out, json_out, model_path)
    text = _text(text)
    if task in ("lm", "clm"):
        result, tokens, colours, titles, caption = _lm(model, meta, text, unit, gate, top, label)
    elif task == "tag":
        from rnncli.readout import read_tagger

        result = read_tagger(model, meta, text)
        tokens = [f"{w}/{t}" for w, t in zip(result["tokens"], result["tags"], strict=True)]
        colours = [pictures.sequential(p) for p in result["probabilities"]]
        titles = [f"{t}: p = {p:.3f}" for t, p in zip(result["tags"], result["probabilities"], strict=True)]
        caption = "each token's tag, shaded by its probability given the whole sentence"
    elif task == "classify":
        from rnncli.readout import read_classifier

        result = read_classifier(model, meta, text)
        c = np.array(result["contributions"])
        scale = max(float(np.abs(c).max()), 1e-12)
        tokens, colours = result["tokens"], [pictures.diverging(v / scale) for v in c]
        titles = [f"{v:+.4f}" for v in c]
        caption = (f"{result['label']} (p = {result['probability']:.3f}); colour: {result['how']}"
                   + ("" if min(c) >= 0 else " (red: towards it, blue: against it)"))
    elif task == "regress":
        result, tokens, colours, titles, caption = _regression(model, meta, text)
    elif task == "seq2seq":
        from rnncli.readout import read_translation

        result = read_translation(model, meta, text)
        console.show(" ".join(result["target"][:-1]))
        if result["attention"] is None:
            console.log("this encoder-decoder has no attention to show")
        else:
            _attention_table(result)
        if json_out:
            console.write_json({**result, "attention": None if result["attention"] is None
                                else np.round(result["attention"], 6).tolist()})
        if out is not None and result["attention"] is not None:
            _write(out, page("attention", pictures.heatmap(result["target"], result["source"], result["attention"],
                                                            "attention: each target token (row) over the source")))
        return None
    else:
        raise UsageError(f"show reads language models, classifiers, regressions, taggers and encoder-decoders, not "
                         f"{task}")
    sep = "" if meta["data"].get("level") == "char" else " "
    console.log(caption)
    console.show(pictures.rich_tokens(tokens, colours, sep))
    if json_out:
        console.write_json(result)
    if out is not None:
        from rnncli.markup import element

        _write(out, page(f"{model_path}: {task}", element("p", caption),
                         element("p", pictures.html_tokens(tokens, colours, titles, sep), style="line-height:1.9")))
    return None


def _lm(model, meta, text, unit, gate, top, label=None):
    from rnncli import pictures
    from rnncli.readout import GATES, read_lm, top_units

    read = read_lm(model, meta, text, label)
    H = read["hidden"].shape[1]
    if unit is not None and not 0 <= unit < H:
        raise UsageError(f"--unit must be 0 to {H - 1} (the top layer has {H} units)")
    kind = meta["config"]["cell"]
    if gate is not None and gate not in GATES[kind]:
        raise UsageError(f"--gate of a {kind}: {', '.join(GATES[kind]) or 'none (it has no gates)'}")
    ranked = top_units(read["hidden"], read["tokens"]) if top or unit is None and gate is None else []
    if top:
        console.show(console.table("units that track something simple (|r| = Pearson correlation)",
                                   ["feature", "unit:", "r:"], [(f, str(u), f"{r:+.2f}") for f, u, r in ranked]))
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


def _regression(model, meta, text):
    """The scores, and each token coloured by its share of the first score."""
    from rnncli import pictures
    from rnncli.readout import read_regression

    result = read_regression(model, meta, text)
    c = np.array(result["contributions"])
    scale = max(float(np.abs(c).max()), 1e-12)
    colours = [pictures.diverging(v / scale) for v in c]
    caption = (", ".join(f"{n} = {v:.4g}" for n, v in result["scores"].items()) + f"; colour: {result['how']}"
               + ("" if min(c) >= 0 else " (red: raises it, blue: lowers it)"))
    return result, result["tokens"], colours, [f"{v:+.4g}" for v in c], caption


def _attention_table(result):
    source, weights = result["source"], result["attention"]
    if len(source) <= 8:
        rows = [(t, *[f"{w:.2f}" for w in row]) for t, row in zip(result["target"], weights, strict=True)]
        console.show(console.table("attention (rows: target tokens, columns: source tokens)", ["", *source], rows))
        return
    # too wide for a terminal: each target token's most attended source tokens (-o draws it all)
    rows = [(t, ", ".join(f"{source[s]!r} {row[s]:.2f}" for s in np.argsort(-row)[:3]))
            for t, row in zip(result["target"], weights, strict=True)]
    console.show(console.table("attention: the three source tokens each target token attends to most",
                               ["target", "source tokens (weight)"], rows))


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
        svg = pictures.curve_charts(history)[0]
        write_file(out, lambda f: f.write(svg.encode("utf-8")))
        console.log(f"wrote {out}")
    else:
        _write(out, pictures.curves_page(str(model_path), history))


def _frames(model, meta, path, out, json_out, model_path):
    """A model of frames: its input (a recording or a .npy file) as a spectrogram, and what the model
    makes of it: the label and its probability or the scores, with its top layer's mean gates and
    its most varying units frame by frame; each tag's probability frame by frame; or a speech
    model's transcript with each token's attention over the frames."""
    from rnncli import pictures
    from rnncli.charts import page
    from rnncli.commands.predict import frame_items
    from rnncli.markup import element
    from rnncli.text.encode import encode_frames

    if path is None or path == "-":
        raise UsageError("give the recording or .npy features file to show")
    data, task = meta["data"], meta["task"]
    (_, x), = next(frame_items(path, False, data))
    if isinstance(x, str):
        raise RnncliError(x)
    frames = encode_frames(data, [x]).frames  # normalised as the model reads them
    batch, mask = frames[:, None, :], np.ones((len(frames), 1), np.float32)
    strips, result = [], {"frames": len(frames), "dim": int(frames.shape[1])}
    if task in ("classify", "regress"):  # what the top layer does frame by frame
        from rnncli.readout import read_frame_units

        gates, units = read_frame_units(model, frames, meta["config"]["cell"])
        names = {"i": "input gate", "f": "forget gate", "o": "output gate", "r": "reset gate", "u": "update gate"}
        strips += [(f"{names[g]} (mean)", v) for g, v in gates.items()]
        strips += [(f"unit {u}", (v + 1) / 2) for u, v in units.items()]  # tanh range onto [0, 1]
        result["gates"] = {names[g]: v.round(6).tolist() for g, v in gates.items()}
        result["units"] = {str(u): v.round(6).tolist() for u, v in units.items()}
    if task == "classify":
        p = model.predict_proba(batch, mask)[0]
        k = int(p.argmax())
        result.update(label=data["labels"][k], probability=float(p[k]))
        caption = f"{data['labels'][k]} (p = {p[k]:.3f})"
    elif task == "seq2seq":  # speech: the transcript, and where in the recording each word was heard
        from rnncli.readout import read_transcription

        read = read_transcription(model, meta, frames)
        words = read["target"]
        caption = " ".join(words[:-1]) or "(nothing)"
        result.update(transcript=caption, tokens=words)
        if read["attention"] is not None:
            hop = (data.get("audio") or {}).get("hop_ms")
            rows = [(w, f"{p:,}" + (f" ({p * hop / 1000:.2f} s)" if hop else ""), f"{row.max():.2f}")
                    for w, p, row in zip(words, read["peaks"], read["attention"], strict=True)]
            console.show(console.table("where each token was heard: the frame it attended most",
                                       ["token", "frame", "weight:"], rows))
            # each token's row scaled to its own peak, so that a spread-out attention is still visible
            strips = [(w, row / max(row.max(), 1e-12)) for w, row in zip(words, read["per_frame"], strict=True)]
            result["attention"] = np.round(read["attention"], 6).tolist()
            result["peaks"] = read["peaks"]
            caption += " (strips: each token's attention over the frames, scaled to its peak)"
    elif task == "regress":
        scores = model.predict(batch, mask)[0]
        result["scores"] = dict(zip(data["score_names"], map(float, scores), strict=True))
        caption = ", ".join(f"{n} = {v:.4g}" for n, v in result["scores"].items())
    else:
        tags, marginals = model.predict_with_marginals(batch, mask)
        names = data["tags"]
        result.update(tags=[names[t] for t in tags[:, 0]], probabilities={n: marginals[:, 0, k].round(6).tolist()
                                                                         for k, n in enumerate(names)})
        strips = [(f"p({n})", marginals[:, 0, k]) for k, n in enumerate(names)]
        caption = "each tag's probability, frame by frame (darker: likelier)"
    console.log(f"{path}: {len(frames)} frames of {frames.shape[1]} numbers; {caption}")
    if json_out:
        console.write_json(result)
    if out is not None:
        what = "speech recognition" if task == "seq2seq" else f"{task} of frames"
        _write(out, page(f"{model_path}: {what}", element("p", f"{path}: {caption}"),
                         element("div", pictures.spectrogram(frames, strips, data.get("audio")), class_="wide")))
