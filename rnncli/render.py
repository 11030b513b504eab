"""How results are shown: Rich tables and the progress bar for people (stderr), lines and JSON
for scripts (stdout). The commands (commands/) return data; nothing here computes."""

import os
import sys

from rnncli import console


def pct(v):
    return f"{100 * v:.2f}"


def show_char(token):
    return repr(token)[1:-1] if len(token) == 1 else token


# ---------------------------------------------------------------- tokenize


def tokenize_report(s):
    kind = f"{s['format']} (JSON lines: {s['fields']})" if s.get("input") == "jsonl" else s["format"]
    rows = [("format / level", f"{kind} / {s['level']}"),
            ("train sequences", f"{s['train']['sequences']:,}"),
            ("train tokens", f"{s['train']['tokens']:,}")]
    if "valid" in s:
        rows += [("valid sequences", f"{s['valid']['sequences']:,}"),
                 ("valid tokens", f"{s['valid']['tokens']:,}")]
    side = " for the source" if "target_level" in s else ""
    rows += [("validation", s["validation"]),
             ("vocabulary", f"{s['vocab_size']:,} (with 4 specials){side}"),
             ("coverage", f"{100 * s['coverage']:.2f} %"),
             ("unknown rate", ", ".join(f"{k} {100 * v:.2f} %" for k, v in s["unk_rate"].items())),
             ("most common", "  ".join(f"{show_char(t)} {c:,}" for t, c in s["top_tokens"]))]
    for key in ("labels", "tags"):
        if key in s:
            rows.append((key, "  ".join(f"{n} {c:,}" for n, c in s[key].items())))
    if "frames" in s:  # no vocabulary: the frames are the input
        rows = [(k.replace("tokens", "frames"), v) for k, v in rows
                if k not in ("vocabulary", "coverage", "unknown rate", "most common")]
        f = s["frames"]
        rate = f", {f['frame_rate']:g} frames/s from {f['sample_rate']:,} Hz audio" if "frame_rate" in f else ""
        rows.append(("frames", f"D = {f['dim']}, T min {f['frames'][0]:,} / median {f['frames'][1]:g} / "
                               f"max {f['frames'][2]:,}{rate}; normalised per dimension"))
    for name, (low, mean, high) in s.get("scores", {}).items():
        rows.append((f"{name} (train)", f"min {low:.4g}, mean {mean:.4g}, max {high:.4g}"))
    if "target_level" in s:
        rows.insert(1, ("task", "seq2seq: speech (recording -> transcript)" if "frames" in s
                         else "seq2seq: source<TAB>target pairs"))
        rows += [("target level", s["target_level"]), ("target vocabulary", f"{s['target_vocab_size']:,}"),
                 ("train target tokens", f"{s['train']['target_tokens']:,}")]
    warnings(s["warnings"])
    console.show(console.table(f"tokenized -> {s['out']}", ["", "value"], rows))


def warnings(messages):
    for m in messages:
        console.log(f"[yellow]warning:[/yellow] {m}")


# ---------------------------------------------------------------- train


def config_table(cfg_dict):
    console.show(console.table("configuration", ["option", "value"], list(cfg_dict.items())))


def gradient_tables(report):
    """The vanishing-gradient report: norms at chosen distances, each model's curve as a sparkline."""
    from rnncli.charts import sparkline
    from rnncli.commands.gradients import SHOWN

    models = report["models"]
    columns = [(name, key) for name, m in models.items() for key in ("a", "c") if m[key] is not None]
    shown = [d for d in SHOWN if d <= report["steps"]]
    rows = []
    for d in shown:
        rows.append((str(d), *[f"{models[name][key][d - 1]:.1e}" for name, key in columns]))
    console.show(console.table(
        f"||dL/da<T-d>|| (and ||dL/dc<T-d>||), the loss of the prediction after {report['steps']} tokens, "
        f"mean over {report['batch']} windows of {report['data']}",
        ["d", *[f"{name}: {'a' if key == 'a' else 'c (cell)'}:" for name, key in columns]], rows))
    values = [v for name, key in columns for v in models[name][key] if v > 0]
    low, high = min(values), max(values)
    for name, key in columns:
        curve = models[name][key]
        every = -(-len(curve) // 50)  # at most 50 characters: every k-th distance
        console.log(f"{name + ' ' + key:<28} {sparkline(curve[::every], log=True, low=low, high=high)}  "
                    f"{curve[0]:.0e} -> {curve[-1]:.0e}  (log scale, d = 1 .. {len(curve)}"
                    f"{f', every {every}th' if every > 1 else ''})")


def gradient_page(report):
    """The report as a self-contained HTML page with an SVG chart."""
    from rnncli.charts import line_chart, page
    from rnncli.commands.gradients import SHOWN
    from rnncli.markup import element

    series = {f"{name} {key}": (m["distance"], m[key]) for name, m in report["models"].items()
              for key in ("a", "c") if m[key] is not None}
    chart = line_chart(series, "gradient norm against distance", "distance d (steps before the prediction)",
                       "||dL/d state|| (log scale)", log_y=True)
    shown = [d for d in SHOWN if d <= report["steps"]]
    head = element("tr", element("th", "d"), *[element("th", n) for n in series])
    body = [element("tr", element("td", d), *[element("td", f"{ys[d - 1]:.2e}") for _, ys in series.values()])
            for d in shown]
    text = element("p", f"The loss of the prediction after {report['steps']} tokens, back-propagated: the norm of "
                        f"its gradient with respect to the state d steps earlier, averaged over {report['batch']} "
                        f"windows of {report['data']}.")
    return page("Vanishing gradients", text, chart, element("div", element("table", head, *body), class_="wide"))


def gradcheck_table(what, rows, tol):
    """parameter, shape, relative error, pass/fail, as a table."""
    def verdict(err):
        return "[green]pass[/green]" if err <= tol else "[bold red]FAIL[/bold red]"

    console.show(console.table(f"gradient check, {what} (tolerance {tol:g})",
                               ["parameter", "shape", "relative error:", "check"],
                               [(name, "x".join(map(str, shape)), f"{err:.1e}", verdict(err))
                                for name, shape, err in rows]))


def coverage_table(report):
    """How much of the training data the pretrained vectors know, by matching rule."""
    def share(n, total):
        return f"{100 * n / max(total, 1):.1f} %"

    r = report
    rows = [(f"{rule} ({how})", share(r[f"tokens_{rule}"], r["tokens"]), share(r[f"types_{rule}"], r["types"]))
            for rule, how in (("exact", "the word itself"), ("lower", "its lower-case form"))]
    rows.append(("found", share(r["tokens_exact"] + r["tokens_lower"], r["tokens"]),
                 share(r["types_exact"] + r["types_lower"], r["types"])))
    console.show(console.table(
        f"{r['file']}: {r['words']:,} vectors of {r['dim']}; {r['rows_added']:,} words the training data lacks "
        "are added for prediction", ["training words found by", "tokens", "types"], rows))


def describe(metrics, level="word"):
    """One line of the headline validation figures."""
    if "perplexity" in metrics and "bleu" not in metrics and "wer" not in metrics:
        unit = "char" if level == "char" else "word"
        return (f"valid loss {metrics['loss']:.4f}, perplexity {metrics['perplexity']:.2f}, "
                f"{metrics['bits_per_token']:.3f} bits per {unit}")
    if "wer" in metrics:
        return (f"valid loss {metrics['loss']:.4f}, WER {100 * metrics['wer']:.2f} %, "
                f"CER {100 * metrics['cer']:.2f} %, sentences right {100 * metrics['sentence_accuracy']:.2f} %")
    if "bleu" in metrics:
        return (f"valid loss {metrics['loss']:.4f}, exact match {100 * metrics['exact_match']:.2f} %, "
                f"BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}")
    if "rmse" in metrics:
        return (f"valid RMSE {metrics['rmse']:.4g}, R² {metrics['r2']:.4f}, Pearson r {metrics['pearson']:.4f}, "
                f"Spearman ρ {metrics['spearman']:.4f}")
    if "accuracy" in metrics:
        return f"valid accuracy {100 * metrics['accuracy']:.2f} %, macro-F1 {100 * metrics['macro_f1']:.2f}"
    return (f"valid entity F1 {100 * metrics['f1']:.2f} (precision {100 * metrics['precision']:.2f}, "
            f"recall {100 * metrics['recall']:.2f})")


class TokenizeProgress:
    """tokenize's callback for a corpus it streams: a bar per pass over the files, in MB and MB/s."""

    def __init__(self, inputs):
        self.total = sum(os.path.getsize(p) for p in inputs if p != "-" and os.path.isfile(p))
        self.stage = self.bar = None

    def __call__(self, stage, nbytes):
        if stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.stage = stage
            # on a terminal only: a log or a pipe keeps tokenize's one line of report (or of error)
            self.bar = console.progress(self.total, f"tokenize: {stage}", unit="B",
                                        disable=console.is_quiet() or not console.is_terminal())
            self.bar.unit_scale, self.bar.unit_divisor = True, 1024
        self.bar.update(nbytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


class TrainProgress:
    """The training callback: a tqdm bar with loss, learning rate and tokens/s, and a line per
    evaluation. Use as a context manager so the bar is closed whatever happens."""

    def __init__(self, level):
        self.level = level
        self.bar = console.progress(None, "train", unit="step")

    def __call__(self, p):
        if p.event == "eval":
            if p.metrics and not console.is_quiet():
                self.bar.write(f"step {p.step}: {describe(p.metrics, self.level)}", file=sys.stderr)
            return
        if self.bar.total is None and p.total is not None:
            self.bar.total, self.bar.n = p.total, p.step - 1  # a resumed run starts part-way
        self.bar.update(1)
        self.bar.set_postfix_str(f"loss {p.loss:.3f} lr {p.lr:.2g} {p.tokens_per_s:,.0f} tok/s", refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


def train_summary(s):
    rows = [("steps", f"{s['steps']:,}"), ("epochs", s["epochs"]), ("stopped", s["stop"]),
            ("time", f"{s['elapsed']:.1f} s")]
    if s.get("train_loss") is not None:
        rows.append(("last train loss", f"{s['train_loss']:.4f}"))
    if s.get("valid"):
        rows.append(("last validation", describe(s["valid"], s["level"])))
    read = s.get("validation_read") or {}
    sample = (f"; each validation read a fixed sample of {read['tokens']:,} of its {read['of_tokens']:,} tokens "
              "(--eval-tokens)") if read.get("sample") else ""
    rows.append(("validation data", s["validation"] + sample))
    if s.get("best_score") is not None:
        from rnncli.tasks.registry import task_named

        task = task_named(s["task"])
        label, best = task.score_name, task.reported_score(s["best_score"]) * (100 if task.maximizes else 1)
        if s["selected_on"] != "validation":
            label = "train loss"
            best = s["best_score"]
        rows.append((f"best {'valid ' if s['selected_on'] == 'validation' else ''}{label}",
                     f"{best:.4f} (step {s['best_step']})"))
    if s.get("workers", 1) > 1 and s.get("step_seconds"):
        share = s["reduce_seconds"] / s["step_seconds"]
        rows.append(("workers", f"{s['workers']} (the exchange between workers took {100 * share:.0f} % of each step)"))
    rows.append(("checkpoint", s["out"]))
    if s["selected_on"] != "validation":
        warnings(["no validation data: the best model was chosen on the training loss"])
    console.show(console.table("training summary", ["", "value"], rows))


# ---------------------------------------------------------------- eval


def eval_report(m):
    """eval's report: what was scored, then the tables of the model's Task (Task.report names the
    function below that draws them)."""
    from rnncli.tasks.registry import task_named

    task = task_named(m["task"])
    if len(m["models"]) > 1:
        console.log(f"ensemble of {len(m['models'])} models: {', '.join(m['models'])}")
    console.log(f"{m['data']}: scored {m['scored']}, {m['examples']:,} {'sequences' if task.generates else 'examples'}")
    globals()[task.report](m)


def lm_report(m):
    unit = "char" if m["level"] == "char" else "word"
    console.show(console.table(f"{m['data']}: language model", ["", "value:"], [
        ("tokens", f"{m['tokens']:,}"), ("loss (nats per token)", f"{m['loss']:.4f}"),
        ("perplexity", f"{m['perplexity']:.2f}"), (f"bits per {unit}", f"{m['bits_per_token']:.4f}")]))


def conditional_lm_report(m):
    unit = "char" if m["level"] == "char" else "word"
    rows = [(name, f"{x['tokens']:,}", f"{x['loss']:.4f}", f"{x['perplexity']:.2f}", f"{x['bits_per_token']:.4f}")
            for name, x in m["labels"].items()]
    rows.append(("all", f"{m['tokens']:,}", f"{m['loss']:.4f}", f"{m['perplexity']:.2f}", f"{m['bits_per_token']:.4f}"))
    console.show(console.table(f"{m['data']}: language model conditioned on the label",
                               ["label", "tokens:", "loss (nats):", "perplexity:", f"bits per {unit}:"], rows))


def seq2seq_report(m):
    """A translation's BLEU, chrF and exact match; a speech model's word and character errors."""
    if "wer" not in m:
        console.show(console.table(f"{m['data']}: encoder-decoder ({m['decoding']})", ["", "value:"], [
            ("BLEU (sacreBLEU 13a)", f"{m['bleu']:.2f}"), ("chrF", f"{m['chrf']:.2f}"),
            ("exact match", f"{pct(m['exact_match'])} %"), ("target tokens", f"{m['tokens']:,}"),
            ("loss (nats per token)", f"{m['loss']:.4f}"), ("perplexity", f"{m['perplexity']:.2f}")]))
        return
    w, c = m["word_errors"], m["char_errors"]
    console.log(f"{m['data']}: WER [bold]{pct(m['wer'])} %[/bold], CER {pct(m['cer'])} %, sentences right "
                f"{pct(m['sentence_accuracy'])} % ({m['decoding']})")
    console.show(console.table(f"{m['data']}: speech recognition ({m['decoding']})",
                               ["", "error rate:", "substituted:", "deleted:", "inserted:", "in the references:"],
                               [(name, f"{pct(x['rate'])} %", f"{x['substitutions']:,}", f"{x['deletions']:,}",
                                 f"{x['insertions']:,}", f"{x['reference']:,}")
                                for name, x in (("words", w), ("characters", c))]))
    console.show(console.table("", ["", "value:"], [
        ("sentences right", f"{pct(m['sentence_accuracy'])} %"), ("target tokens", f"{m['tokens']:,}"),
        ("loss (nats per token)", f"{m['loss']:.4f}"), ("perplexity", f"{m['perplexity']:.2f}")]))


def caption_report(m):
    """A captioner's exact match, per-object accuracy and BLEU."""
    rows = [("exact match", f"{pct(m['exact_match'])} %")]
    if "object_accuracy" in m:
        rows.append(("objects right (each caption's \"<object> <place>\" phrases)", f"{pct(m['object_accuracy'])} %"))
    rows += [("BLEU (sacreBLEU 13a)", f"{m['bleu']:.2f}"), ("word error rate", f"{pct(m['wer'])} %"),
             ("target tokens", f"{m['tokens']:,}"), ("loss (nats per token)", f"{m['loss']:.4f}")]
    console.log(f"{m['data']}: exact match [bold]{pct(m['exact_match'])} %[/bold] ({m['decoding']})")
    if m.get("unseen_words"):
        unseen = m["unseen_words"]
        shown = ", ".join(repr(w) for w in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        console.log(f"[yellow]warning:[/yellow] {len(unseen)} caption word{'s' if len(unseen) > 1 else ''} the model "
                    f"never saw ({shown}): a caption that holds one can never match")
    console.show(console.table(f"{m['data']}: image captioning ({m['decoding']})", ["", "value:"], rows))


def regress_report(m):
    rows = [(name, f"{x['rmse']:.4g}", f"{x['mae']:.4g}", f"{x['r2']:.4f}", f"{x['pearson']:.4f}",
             f"{x['spearman']:.4f}", f"{x['count']:,}") for name, x in m["scores"].items()]
    console.log(f"{m['data']}: RMSE [bold]{m['rmse']:.4g}[/bold], R² {m['r2']:.4f}, Pearson r {m['pearson']:.4f}, "
                f"Spearman ρ {m['spearman']:.4f}")
    console.show(console.table("regression (in the scores' own units)",
                               ["score", "RMSE:", "MAE:", "R²:", "Pearson r:", "Spearman ρ:", "examples:"], rows))


def classify_report(m):
    rows = [(n, pct(c["precision"]), pct(c["recall"]), pct(c["f1"]), c["support"]) for n, c in m["classes"].items()]
    rows.append(("macro", "", "", pct(m["macro_f1"]), sum(c["support"] for c in m["classes"].values())))
    console.log(f"{m['data']}: accuracy [bold]{pct(m['accuracy'])} %[/bold], macro-F1 {pct(m['macro_f1'])}")
    console.show(console.table("per class", ["class", "precision:", "recall:", "F1:", "support:"], rows))
    names = m["labels"]
    console.show(console.table("confusion (rows true, columns predicted)", ["", *[n + ":" for n in names]],
                               [(n, *row) for n, row in zip(names, m["confusion"], strict=True)]))


def tag_report(m):
    """Entities by type (conlleval's rules); for a tag per frame, events as the trigger-word task scores them."""
    if m.get("level") == "frame":
        console.log(f"{m['data']}: event F1 [bold]{pct(m['f1'])}[/bold] (precision {pct(m['precision'])}, recall "
                    f"{pct(m['recall'])}; {m['events']:,} events, {m['predicted']:,} predicted), frame accuracy "
                    f"{pct(m['token_accuracy'])} %")
        return
    rows = [(n, pct(t["precision"]), pct(t["recall"]), pct(t["f1"]), t["support"]) for n, t in m["types"].items()]
    rows.append(("overall", pct(m["precision"]), pct(m["recall"]), pct(m["f1"]), m["support"]))
    console.log(f"{m['data']}: entity F1 [bold]{pct(m['f1'])}[/bold], token accuracy {pct(m['token_accuracy'])} %")
    console.show(console.table("entities (conlleval rules)",
                               ["type", "precision:", "recall:", "F1:", "entities:"], rows))


# ---------------------------------------------------------------- predict (stdout)


def show_picture(picture, out=None, as_json=False):
    """show's Picture (commands/show.py): its terminal items in order, its numbers with --json, and
    its page written to out (-o)."""
    for kind, item in picture.terminal:
        (console.log if kind == "log" else console.show)(item)
    if as_json and picture.numbers is not None:
        console.write_json(picture.numbers)
    if out is not None and picture.page is not None:
        from rnncli.npzfile import write_file

        write_file(out, lambda f: f.write(picture.page.encode("utf-8")))
        console.log(f"wrote {out}")


def write_samples(samples, as_json, one_line, apart):
    """Write commands.sample.samples to stdout as they are generated: each sample's pieces flushed as
    they come; a sample per line (one_line), or separated by a blank line (apart: a character model's
    samples span lines); or a JSON object per sample."""
    first = True
    for label, prime, pieces in samples:
        if as_json:
            console.write_json_line({"label": label, "prime": prime, "text": "".join(pieces)})
            continue
        if apart and not first:
            sys.stdout.write("\n")
        first, last = False, ""
        for piece in pieces:
            sys.stdout.write(piece)
            last = piece
            if not one_line:
                sys.stdout.flush()
        if one_line or not last.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()


def predicted_text(record, meta, model, proba=False, as_json=False):
    """One record of commands.predict as the text written to stdout (its Task's own layout)."""
    from rnncli.tasks.registry import task_named

    task = task_named(meta["task"])
    return task.prediction_text(record, task.answer_names(model), proba, as_json)


# ---------------------------------------------------------------- inspect


def inspect_report(info):
    from rnncli.tasks.registry import task_named

    cfg, task, total = info["config"], info["task"], info["parameters"]
    shown_task = task_named(task).described(cfg)
    console.show(console.table(
        f"{info['path']}: {shown_task}, {info['cell']} x {info['layers']}, {total:,} parameters",
        ["layer", "arrays", "parameters:"],
        [(layer, ", ".join(f"{n} {tuple(s)}" for n, s, _ in rows), f"{sum(r[2] for r in rows):,}")
         for layer, rows in info["arrays"].items()]))
    shown = ", ".join(show_char(t) if len(t) == 1 else t for t in info["vocab_preview"])
    more = " ..." if info["vocab_size"] > 4 + len(info["vocab_preview"]) else ""
    reduction = cfg.get("stack_frames", 1) * 2 ** cfg.get("pyramid", 0)  # (speech only: 1 for other tasks)
    console.show(console.table("data", ["", "value"], [
        ("format / level", f"{info['format']} / {info['level']}"),
        *([("vocabulary", f"{info['vocab_size']:,}: {shown}{more}")] if info["level"] != "frame" else []),
        *[(k, ", ".join(v)) for k, v in info["names"].items()],
        *([("encoder steps", f"one per {reduction} frames (--stack-frames {cfg.get('stack_frames', 1)}, --pyramid "
                             f"{cfg.get('pyramid', 0)})")] if reduction > 1 else []),
        *([("target level", info["target"]["level"]),
           ("target vocabulary", f"{info['target']['vocab_size']:,}: "
                                 + ", ".join(show_char(t) for t in info["target"]["vocab_preview"]))]
          if info.get("target") else []),
        *([("word vectors", "{file}: {dim} dimensions; {found} % of training tokens found; {rows_added:,} rows "
            "for words the training data lacks ({mb:.1f} MB of the checkpoint)".format(
                **p, found=f"{100 * (p['tokens_exact'] + p['tokens_lower']) / max(p['tokens'], 1):.1f}",
                mb=p["bytes_added"] / 1e6))] if (p := info.get("pretrained")) else [])]))
    config_table(cfg)
    hist = info["history"]
    rows = [(h["step"], h["epoch"], f"{h['train_loss']:.4f}", describe(h["valid"], info["level"])
             if h.get("valid") else "-", f"{h['elapsed']:.0f}") for h in hist[-10:]]
    from rnncli.tasks.registry import task_named

    key, label = task_named(task).metric, task_named(task).metric_title
    best_text = "-" if info["best_score"] is None else f"{info['best_score']:.4f}"
    console.show(console.table(f"history (last {len(rows)} of {len(hist)} evaluations; best {label} {best_text} "
                               f"at step {info['best_step']}, {info['train_time_s'] or 0:.0f} s of training)",
                               ["step:", "epoch:", "train loss:", "validation", "seconds:"], rows))
    if len(hist) > 1:
        from rnncli.charts import sparkline

        curves = {"train loss": [h["train_loss"] for h in hist]}
        if all((h.get("valid") or {}).get(key) is not None for h in hist):
            curves[f"valid {'loss' if key == 'loss' else label}"] = [h["valid"][key] for h in hist]
        every = -(-len(hist) // 60)
        for name, values in curves.items():
            console.log(f"{name:<18} {sparkline(values[::every])}  {values[0]:.4g} -> {values[-1]:.4g} "
                        f"(steps {hist[0]['step']:,} .. {hist[-1]['step']:,}; show --curves draws it)")
