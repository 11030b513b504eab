"""What each command does, between parsing its options (cli.py) and the plain functions
that do the work (text/, train.py, sample.py, evaluate.py). Tests call these directly."""

import json
import os

from rnncli import console
from rnncli.errors import RnncliError, UsageError
from rnncli.npzfile import check_writable


def _refuse_overwrite(path, force, what="file"):
    if os.path.exists(path) and not force:
        raise UsageError(f"{path}: exists; pass --force to overwrite it")
    check_writable(path)


def _show_char(token):
    return repr(token)[1:-1] if len(token) == 1 else token


def run_tokenize(inputs, out, fmt=None, level=None, lower=False, max_size=None, min_freq=1,
                 valid_frac=0.05, valid=None, vocab=None, vocab_out=None, seed=0, force=False,
                 json_out=False):
    from rnncli.text.dataset import dataset_stats, load_vocab_source, save_dataset, tokenize, vocab_json
    from rnncli.text.readers import require_file

    for path in inputs:  # a missing input is the first thing to hear about
        require_file(path)
    _refuse_overwrite(out, force)
    if vocab_out is not None:
        _refuse_overwrite(vocab_out, force)
    reuse = load_vocab_source(vocab) if vocab else None
    ds = tokenize(inputs, fmt=fmt, level=level, lower=lower, max_size=max_size, min_freq=min_freq,
                  valid_frac=valid_frac, valid_path=valid, seed=seed, reuse=reuse)
    save_dataset(out, ds)
    if vocab_out is not None:
        with open(vocab_out, "w", encoding="utf-8") as f:
            json.dump(vocab_json(ds.meta), f, ensure_ascii=False, indent=1)
    stats = dataset_stats(ds)
    stats["out"] = str(out)
    if json_out:
        console.write_json(stats)
    render_tokenize_report(stats)
    return stats


def render_tokenize_report(s):
    rows = [("format / level", f"{s['format']} / {s['level']}"),
            ("train sequences", f"{s['train']['sequences']:,}"),
            ("train tokens", f"{s['train']['tokens']:,}")]
    if "valid" in s:
        rows += [("valid sequences", f"{s['valid']['sequences']:,}"),
                 ("valid tokens", f"{s['valid']['tokens']:,}")]
    rows += [("vocabulary", f"{s['vocab_size']:,} (with 4 specials)"),
             ("coverage", f"{100 * s['coverage']:.2f} %"),
             ("unknown rate", ", ".join(f"{k} {100 * v:.2f} %" for k, v in s["unk_rate"].items())),
             ("most common", "  ".join(f"{_show_char(t)} {c:,}" for t, c in s["top_tokens"]))]
    for key in ("labels", "tags"):
        if key in s:
            rows.append((key, "  ".join(f"{n} {c:,}" for n, c in s[key].items())))
    console.show(console.table(f"tokenized -> {s['out']}", ["", "value"], rows))



def _require_data(data):
    if data != "-" and not os.path.exists(data):
        hint = " (run `rnncli tokenize CORPUS` first)" if data == "tokens.npz" else ""
        raise RnncliError(f"{data}: no such data set{hint}")


def _load_data_for_train(data):
    from rnncli.text.dataset import load_dataset, tokenize

    _require_data(data)
    if data.endswith(".npz"):
        return load_dataset(data)
    ds = tokenize([data])
    console.log(f"[dim]{data}: not a .npz data set; tokenized it with the defaults[/dim]")
    return ds


def run_train(data, out, config_path, overrides, resume=None, force=False, json_out=False):
    import dataclasses
    import sys

    from rnncli.checkpoint import load_checkpoint
    from rnncli.config import TrainConfig, make_config
    from rnncli.train import train

    resumed = None
    if resume is not None:
        meta, groups = load_checkpoint(resume)
        base = TrainConfig(**meta["config"])
        # a resumed run keeps its architecture and data; only the stopping limits may change
        allowed = {"epochs", "max_steps", "max_time", "eval_every", "patience"}
        changed = {k for k, v in overrides.items() if v is not None and k not in allowed and v != getattr(base, k)}
        if changed or config_path:
            raise UsageError("--resume continues a run as configured; cannot change "
                             f"{sorted(changed) or 'the config file'}")
        cfg = make_config(None, {k: overrides.get(k) for k in allowed}, base=base)
        resumed, out = (meta, groups), resume
        ds = _load_data_for_train(data)
        if ds.meta["vocab"] != meta["data"]["vocab"]:
            raise RnncliError(f"{data}: vocabulary differs from {resume}'s "
                              f"({len(ds.meta['vocab'])} vs {len(meta['data']['vocab'])} symbols)")
    else:
        cfg = make_config(config_path, overrides)
        _require_data(data)  # a missing input is the first thing to hear about
        _refuse_overwrite(out, force)
        ds = _load_data_for_train(data)
    console.show(console.table("configuration", ["option", "value"], list(dataclasses.asdict(cfg).items())))
    bar = console.progress(None, "train", unit="step")

    def on_progress(p):
        if p.event == "eval":
            if p.metrics and not console.is_quiet():
                bar.write(f"step {p.step}: {describe(p.metrics, ds.meta['level'])}", file=sys.stderr)
            return
        if bar.total is None:
            bar.total, bar.n = p.total, p.step - 1  # a resumed run starts part-way
        bar.update(1)
        bar.set_postfix_str(f"loss {p.loss:.3f} lr {p.lr:.2g} {p.tokens_per_s:,.0f} tok/s", refresh=False)

    try:
        summary = train(cfg, ds, out, resumed, on_progress)
    finally:
        bar.close()
    if json_out:
        console.write_json(summary)
    render_train_summary(summary)
    return summary


def describe(metrics, level="word"):
    """One line of the headline validation figures."""
    if "perplexity" in metrics:
        unit = "char" if level == "char" else "word"
        return (f"valid loss {metrics['loss']:.4f}, perplexity {metrics['perplexity']:.2f}, "
                f"{metrics['bits_per_token']:.3f} bits per {unit}")
    if "accuracy" in metrics:
        return f"valid accuracy {100 * metrics['accuracy']:.2f} %, macro-F1 {100 * metrics['macro_f1']:.2f}"
    return (f"valid entity F1 {100 * metrics['f1']:.2f} (precision {100 * metrics['precision']:.2f}, "
            f"recall {100 * metrics['recall']:.2f})")


def render_train_summary(s):
    rows = [("steps", f"{s['steps']:,}"), ("epochs", s["epochs"]), ("stopped", s["stop"]),
            ("time", f"{s['elapsed']:.1f} s")]
    if s.get("train_loss") is not None:
        rows.append(("last train loss", f"{s['train_loss']:.4f}"))
    if s.get("valid"):
        rows.append(("last validation", describe(s["valid"], s["level"])))
    if s.get("best_score") is not None:
        best = s["best_score"] if s["task"] == "lm" else -100 * s["best_score"]
        label = {"lm": "best valid loss", "classify": "best valid accuracy %", "tag": "best valid entity F1"}
        rows.append((label[s["task"]], f"{best:.4f} (step {s['best_step']})"))
    rows.append(("checkpoint", s["out"]))
    console.show(console.table("training summary", ["", "value"], rows))


def run_sample(model_path, prime, temperature, top_k, top_p, max_len, count, seed, greedy):
    import sys

    import numpy as np

    from rnncli.sample import check_sampling_options, generate
    from rnncli.tasks.build import load_model
    from rnncli.text.vocab import Vocab

    check_sampling_options(temperature, top_k, top_p, max_len)
    if count < 1:
        raise UsageError(f"-n must be at least 1, not {count}")
    model, meta, _ = load_model(model_path)
    if meta.get("task") != "lm":
        raise UsageError(f"{model_path}: a {meta.get('task')} model does not generate text; use predict")
    vocab, level = Vocab(meta["data"]["vocab"]), meta["data"]["level"]
    rng = np.random.default_rng(seed)
    temperature = 0.0 if greedy else temperature
    out = sys.stdout

    def one(p, per_line):
        last = p
        if p:
            out.write(p.replace("\n", " ") if per_line else p)
        for tok in generate(model, vocab, level, p, temperature, top_k, top_p, max_len, rng):
            out.write(tok.replace("\n", " ") if per_line else tok)
            last = tok
            if not per_line:
                out.flush()
        if per_line or not last.endswith("\n"):
            out.write("\n")
        out.flush()

    if prime == "-":
        for line in sys.stdin:
            one(line.rstrip("\n"), True)
    else:
        for _ in range(count):
            one(prime or "", False)


def run_inspect(model_path, json_out=False):
    from rnncli.checkpoint import load_checkpoint

    meta, groups = load_checkpoint(model_path)
    params = groups["param"]
    cfg, data, task = meta["config"], meta["data"], meta.get("task")
    by_layer = {}
    for name, arr in params.items():
        layer, _, short = name.rpartition(".")
        by_layer.setdefault(layer, []).append((short, arr.shape, arr.size))
    total = int(sum(a.size for a in params.values()))
    best = meta.get("best_score")
    info = {"task": task, "cell": cfg["cell"], "layers": cfg["layers"], "hidden": cfg["hidden"],
            "parameters": total, "vocab_size": len(data["vocab"]), "level": data.get("level"),
            "steps": meta.get("step"), "epochs": meta.get("epoch"),
            "best_score": None if best is None else (best if task == "lm" else -best),
            "best_step": meta.get("best_step"), "train_time_s": meta.get("elapsed"), "config": cfg,
            "history": meta.get("history", [])}
    if json_out:
        console.write_json(info)
        return info
    console.show(console.table(f"{model_path}: {task} model, {cfg['cell']} x {cfg['layers']}, {total:,} parameters",
                               ["layer", "arrays", "parameters:"],
                               [(layer, ", ".join(f"{n} {tuple(s)}" for n, s, _ in rows),
                                 f"{sum(r[2] for r in rows):,}") for layer, rows in by_layer.items()]))
    vocab = data["vocab"]
    shown = ", ".join(repr(t) if len(t) == 1 else t for t in vocab[4:24])
    console.show(console.table("data", ["", "value"], [
        ("format / level", f"{data['format']} / {data.get('level')}"),
        ("vocabulary", f"{len(vocab):,}: {shown}{' ...' if len(vocab) > 24 else ''}"),
        *[(k, ", ".join(data[k])) for k in ("labels", "tags") if k in data]]))
    console.show(console.table("configuration", ["option", "value"], list(cfg.items())))
    hist = meta.get("history", [])
    rows = [(h["step"], h["epoch"], f"{h['train_loss']:.4f}", describe(h["valid"], data.get("level"))
             if h.get("valid") else "-", f"{h['elapsed']:.0f}") for h in hist[-10:]]
    label = "loss" if task == "lm" else ("accuracy" if task == "classify" else "entity F1")
    best_text = "-" if info["best_score"] is None else f"{info['best_score']:.4f}"
    console.show(console.table(f"history (last {len(rows)} of {len(hist)} evaluations; best {label} {best_text} "
                               f"at step {meta.get('best_step')}, {meta.get('elapsed', 0):.0f} s of training)",
                               ["step:", "epoch:", "train loss:", "validation", "seconds:"], rows))
    return info


def _encode_for_model(data, meta, fmt=None):
    """A raw file encoded with the model's own vocabulary, or a tokens.npz checked against it."""
    from rnncli.text.dataset import load_dataset, tokenize

    if str(data).endswith(".npz"):
        ds = load_dataset(data)
        if ds.meta["vocab"] != meta["data"]["vocab"]:
            raise RnncliError(f"{data}: tokenized with another vocabulary than the model's "
                              f"({len(ds.meta['vocab'])} vs {len(meta['data']['vocab'])} symbols); "
                              "tokenize it with --vocab MODEL")
        return ds.valid if ds.valid is not None else ds.train
    ds = tokenize([data], fmt=fmt or meta["data"]["format"], valid_frac=0, reuse=meta["data"])
    return ds.train


def run_eval(model_paths, data, json_out=False):
    from rnncli.config import TrainConfig
    from rnncli.ensemble import load_models
    from rnncli.evaluate import evaluate_split

    model, meta = load_models(model_paths)
    cfg, task = TrainConfig(**meta["config"]), meta["task"]
    split = _encode_for_model(data, meta)
    if task == "lm" and len(split.ids) < 2:
        raise RnncliError(f"{data}: too little text to score")
    metrics = evaluate_split(model, task, split, cfg)
    metrics = {"task": task, "data": str(data), "models": [str(p) for p in model_paths], **metrics}
    if len(model_paths) > 1:
        console.log(f"ensemble of {len(model_paths)} models: {', '.join(map(str, model_paths))}")
    if json_out:
        console.write_json(metrics)
    render_eval(metrics, meta["data"].get("level"))
    return metrics


def render_eval(m, level):
    pct = lambda v: f"{100 * v:.2f}"
    if m["task"] == "lm":
        unit = "char" if level == "char" else "word"
        console.show(console.table(f"{m['data']}: language model", ["", "value:"], [
            ("tokens", f"{m['tokens']:,}"), ("loss (nats per token)", f"{m['loss']:.4f}"),
            ("perplexity", f"{m['perplexity']:.2f}"), (f"bits per {unit}", f"{m['bits_per_token']:.4f}")]))
        return
    if m["task"] == "classify":
        rows = [(n, pct(c["precision"]), pct(c["recall"]), pct(c["f1"]), c["support"]) for n, c in m["classes"].items()]
        rows.append(("macro", "", "", pct(m["macro_f1"]), sum(c["support"] for c in m["classes"].values())))
        console.log(f"{m['data']}: accuracy [bold]{pct(m['accuracy'])} %[/bold], macro-F1 {pct(m['macro_f1'])}")
        console.show(console.table("per class", ["class", "precision:", "recall:", "F1:", "support:"], rows))
        names = m["labels"]
        console.show(console.table("confusion (rows true, columns predicted)", ["", *[n + ":" for n in names]],
                                   [(n, *row) for n, row in zip(names, m["confusion"], strict=True)]))
        return
    rows = [(n, pct(t["precision"]), pct(t["recall"]), pct(t["f1"]), t["support"]) for n, t in m["types"].items()]
    rows.append(("overall", pct(m["precision"]), pct(m["recall"]), pct(m["f1"]), m["support"]))
    console.log(f"{m['data']}: entity F1 [bold]{pct(m['f1'])}[/bold], token accuracy {pct(m['token_accuracy'])} %")
    console.show(console.table("entities (conlleval rules)",
                               ["type", "precision:", "recall:", "F1:", "entities:"], rows))


def run_predict(model_paths, source, fmt=None, proba=False, json_out=False):
    """Stream: label each group of lines (or CoNLL sentences) as soon as it has arrived, in
    batches, and flush: a pipe gets an answer per line, a file goes through at batch speed."""
    import json as _json
    import sys

    from rnncli.ensemble import load_models
    from rnncli.evaluate import predict_split
    from rnncli.text.dataset import encode_words
    from rnncli.text.readers import read_groups
    from rnncli.text.vocab import split_words

    model, meta = load_models(model_paths)
    task, data = meta["task"], meta["data"]
    if task == "lm":
        raise UsageError(f"{model_paths[0]}: a language model does not label input; use sample or eval")
    names, out = model.label_names, sys.stdout

    def label(sentences):
        """Word lists -> one (class id or tag ids, probabilities or None) each; None for no words."""
        kept = [k for k, ws in enumerate(sentences) if ws]
        answers = [None] * len(sentences)
        if kept:
            split = encode_words(data, [sentences[k] for k in kept])
            pred, probs = predict_split(model, task, split, char_features=meta["config"].get("char_features"),
                                        proba=proba or json_out)
            for j, k in enumerate(kept):
                answers[k] = (int(pred[j]) if task == "classify" else pred[j], None if probs is None else probs[j])
        return answers

    for group in read_groups(source, conll=(fmt == "conll")):
        if task == "classify":
            for answer in label([split_words(line, data["lower"]) for _, line in group]):
                if answer is None:  # an empty line in, an empty line out: the lines stay aligned
                    out.write("\n")
                    continue
                k, p = answer
                if json_out:
                    out.write(_json.dumps({"label": names[k], "probability": float(p[k]), "probabilities":
                                           {n: float(v) for n, v in zip(names, p, strict=True)}}) + "\n")
                else:
                    out.write(f"{names[k]}\t{p[k]:.4f}\n" if proba else names[k] + "\n")
        else:
            sentences = [item if fmt == "conll" else split_words(item) for _, item in group]
            for words, answer in zip(sentences, label(sentences), strict=True):
                if json_out:  # one object per sentence; an empty line in gives an empty sentence out
                    tags, p = answer or ([], [])
                    out.write(_json.dumps({"tokens": words, "tags": [names[t] for t in tags],
                                           "probabilities": [round(float(v), 6) for v in p]}) + "\n")
                elif words:
                    tags, p = answer
                    cols = [f"{w}\t{names[t]}" for w, t in zip(words, tags, strict=True)]
                    if proba:  # the marginal probability of each chosen tag, given the whole sentence
                        cols = [f"{c}\t{v:.4f}" for c, v in zip(cols, p, strict=True)]
                    out.write("".join(c + "\n" for c in cols) + "\n")
        out.flush()
