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


def not_found(path, what):
    raise RnncliError(f"{path}: no such {what}")


def _load_data_for_train(data, cfg_task):
    from rnncli.text.dataset import load_dataset, tokenize

    if not os.path.exists(data) and data != "-":
        hint = " (run `rnncli tokenize CORPUS` first)" if data == "tokens.npz" else ""
        raise RnncliError(f"{data}: no such data set{hint}")
    if data.endswith(".npz"):
        return load_dataset(data)
    console.log(f"[dim]{data}: not a .npz data set; tokenizing it with the defaults[/dim]")
    return tokenize([data])


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
        # a resumed run keeps its architecture; only the stopping limits may change
        allowed = {"epochs", "max_steps", "max_time", "eval_every", "patience"}
        changed = {k for k, v in overrides.items() if v is not None and k not in allowed
                   and v != getattr(base, k)}
        if changed or config_path:
            raise UsageError("--resume continues a run as configured; cannot change "
                             f"{sorted(changed) or 'the config file'}")
        cfg = make_config(None, {k: overrides.get(k) for k in allowed}, base=base)
        resumed = (meta, groups)
        out = resume
        ds = _load_data_for_train(data, cfg.task)
        if ds.meta["vocab"] != meta["data"]["vocab"]:
            raise RnncliError(f"{data}: vocabulary differs from {resume}'s "
                              f"({len(ds.meta['vocab'])} vs {len(meta['data']['vocab'])} symbols)")
    else:
        cfg = make_config(config_path, overrides)
        _refuse_overwrite(out, force)
        ds = _load_data_for_train(data, cfg.task)
    console.show(console.table("configuration", ["option", "value"],
                               [(k, v) for k, v in dataclasses.asdict(cfg).items()]))
    bar = console.progress(None, "train", unit="step")

    def on_progress(p):
        if p.event == "eval":
            if p.valid_loss is not None and not console.is_quiet():
                bar.write(_eval_line(p, ds.meta["level"]), file=sys.stderr)
            return
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


def _eval_line(p, level):
    import math

    unit = "char" if level == "char" else "word"
    return (f"step {p.step}: valid loss {p.valid_loss:.4f}, perplexity {math.exp(min(p.valid_loss, 50)):.2f}, "
            f"{p.valid_loss / math.log(2):.3f} bits per {unit}")


def render_train_summary(s):
    import math

    rows = [("steps", f"{s['steps']:,}"), ("epochs", s["epochs"]), ("stopped", s["stop"]),
            ("time", f"{s['elapsed']:.1f} s")]
    if s.get("train_loss") is not None:
        rows.append(("last train loss", f"{s['train_loss']:.4f}"))
    if s["task"] == "lm":
        if s.get("valid_loss") is not None:
            v = s["valid_loss"]
            rows += [("last valid loss", f"{v:.4f}"), ("perplexity", f"{math.exp(min(v, 50)):.2f}"),
                     ("bits per " + ("char" if s["level"] == "char" else "word"), f"{v / math.log(2):.3f}")]
        if s.get("best_loss") is not None:
            rows.append(("best valid loss", f"{s['best_loss']:.4f} (step {s['best_step']})"))
    else:
        for k in ("valid_accuracy", "valid_f1", "best_score"):
            if s.get(k) is not None:
                rows.append((k.replace("_", " "), f"{s[k]:.4f}"))
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
    cfg, data = meta["config"], meta["data"]
    by_layer = {}
    for name, arr in params.items():
        layer = name.rsplit(".", 1)[0]
        by_layer.setdefault(layer, []).append((name.rsplit(".", 1)[1], arr.shape, arr.size))
    total = int(sum(a.size for a in params.values()))
    info = {"task": meta.get("task"), "cell": cfg["cell"], "layers": cfg["layers"], "hidden": cfg["hidden"],
            "parameters": total, "vocab_size": len(data["vocab"]), "level": data.get("level"),
            "steps": meta.get("step"), "epochs": meta.get("epoch"), "best_loss": meta.get("best_loss"),
            "best_step": meta.get("best_step"), "train_time_s": meta.get("elapsed"), "config": cfg,
            "history": meta.get("history", [])}
    if json_out:
        console.write_json(info)
        return info
    console.show(console.table(f"{model_path}: {meta.get('task')} model, {cfg['cell']} x {cfg['layers']}, "
                               f"{total:,} parameters", ["layer", "arrays", "parameters:"],
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
    rows = [(h["step"], h["epoch"], f"{h['train_loss']:.4f}",
             "-" if h.get("valid_loss") is None else f"{h['valid_loss']:.4f}", f"{h['elapsed']:.0f}")
            for h in hist[-10:]]
    console.show(console.table(f"history (last {len(rows)} of {len(hist)} evaluations; best "
                               f"{meta.get('best_loss') or float('nan'):.4f} at step {meta.get('best_step')})",
                               ["step:", "epoch:", "train loss:", "valid:", "seconds:"], rows))
    return info
