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
