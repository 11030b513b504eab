"""Property-based tests of every reader and loader (issue 30): random and mutated inputs —
truncated, wrongly typed, huge numbers, deep nesting, odd Unicode, NUL bytes — give data or one
clean RnncliError line, never a traceback of another kind. A few hundred examples per reader."""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnncli.errors import RnncliError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ODD = ["", "\x00", "é", "😀", "\u202e", "\ufeff", "\u2028", "\t", " ", "\r", "<script>", "9" * 5000, "-1e999",
       "[" * 3000, "{" * 3000, '"', "\\", "NaN", "null"]


def clean(call):
    """call() returns, or raises a one-line RnncliError."""
    try:
        return call()
    except RnncliError as e:
        assert str(e) and "\n" not in str(e), str(e)
        return None


def mutated(base_lines):
    """Lines of a valid file, then some cut, doubled, swapped for odd pieces or truncated."""
    return st.lists(st.one_of(st.sampled_from(base_lines), st.sampled_from(ODD),
                              st.text(max_size=30), st.sampled_from(base_lines).map(lambda s: s[: len(s) // 2])),
                    max_size=12).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))


VALID = {
    "text": ["To be or not to be", "", "that is the question"],
    "tsv": ["positive\tgood film", "negative\tbad one", "positive\tfine"],
    "conll": ["Anna\tB-PER", "went\tO", "", "Paris\tB-LOC", "x\tI-LOC"],
    "pairs": ["hello there\tbonjour", "good night\tbonne nuit", "a\tb\tc"],
    "jsonl": ['{"text": "good", "label": "pos"}', '{"label": "neg", "text": "bad"}', '{"tokens": ["a"], "tags": ["O"]}',
              '{"source": "a b", "target": "c"}', '{"text": ' + "[" * 2000 + "]" * 2000 + "}", '{"text": 1e999}'],
}


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_tokenize_readers(tmp_path, fmt):
    from rnncli.text.encode import tokenize

    @settings(max_examples=150, **SETTINGS)
    @given(data=st.one_of(mutated(VALID[fmt]), st.binary(max_size=200)))
    def run(data):
        path = tmp_path / f"in.{'jsonl' if fmt == 'jsonl' else 'txt'}"
        path.write_bytes(data)
        ds = clean(lambda: tokenize([str(path)], fmt=None if fmt == "jsonl" else fmt, valid_frac=0.2))
        if ds is not None:
            assert len(ds.train.ids) == ds.train.offsets[-1]
            assert ds.train.ids.min() >= 0 and ds.train.ids.max() < len(ds.meta["vocab"])

    run()


def test_vector_files(tmp_path):
    from rnncli.text.vectors import read_vectors

    base = ["3 2", "good 0.1 0.2", "film 0.3 0.4", "bad 1e999 0", "x 0.1"]

    @settings(max_examples=150, **SETTINGS)
    @given(data=st.one_of(mutated(base), st.binary(max_size=200)))
    def run(data):
        path = tmp_path / "vec.txt"
        path.write_bytes(data)
        clean(lambda: read_vectors(str(path)))

    run()


def test_configs_and_search_spaces(tmp_path):
    from rnncli.config import load_config_file
    from rnncli.search_space import read_space

    base = ["hidden: 8", "lr: 1e-3", "cell: gru", "lr: {log_uniform: [1e-4, 1e-2]}", "hidden: [8, 16, x]",
            "dropout: {uniform: [0.9, 0.1]}", "layers: 99999999999999999999", "pool: [max, {a: b}]", "&a [*a]",
            "embeddings: /etc/passwd", "bogus: 1", "- 1", "lr: .nan"]

    @settings(max_examples=40, **SETTINGS)  # each reads the YAML twice, optuna's space too: 0.16 s
    @given(data=st.one_of(mutated(base), st.binary(max_size=200)))
    def run(data):
        path = tmp_path / "c.yaml"
        path.write_bytes(data)
        clean(lambda: load_config_file(str(path)))
        clean(lambda: read_space(str(path)))

    run()


def test_model_lists(tmp_path):
    from rnncli.models import load_models

    @settings(max_examples=100, **SETTINGS)
    @given(data=st.one_of(mutated(["# models", "a.npz", "../x.npz", "", "/dev/null", "list.txt"]),
                          st.binary(max_size=100)))
    def run(data):
        (tmp_path / "list.txt").write_bytes(data)
        clean(lambda: load_models([f"@{tmp_path / 'list.txt'}"]))

    run()


def test_safetensors_headers(tmp_path):
    pytest.importorskip("safetensors")
    from rnncli.export.state_dict import load

    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {"rnncli": "{}"}}

    @settings(max_examples=150, **SETTINGS)
    @given(head=st.one_of(st.just(header), st.dictionaries(st.sampled_from(["a", "__metadata__", "b"]), st.one_of(
               st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F64", "I8", "BOOL", "X"]),
                                      "shape": st.lists(st.integers(-2, 10**12), max_size=3),
                                      "data_offsets": st.lists(st.integers(-1, 10**12), min_size=2, max_size=2)}),
               st.dictionaries(st.just("rnncli"), st.sampled_from(["{}", "[" * 5000, '{"data": 1}', "nan"]))))),
           body=st.binary(max_size=40), cut=st.integers(0, 400))
    def run(head, body, cut):
        text = json.dumps(head).encode()
        raw = (len(text).to_bytes(8, "little") + text + body)[: cut or None]
        path = tmp_path / "x.safetensors"
        path.write_bytes(raw)
        clean(lambda: load(str(path)))

    run()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from cli_runner import cli

    d = tmp_path_factory.mktemp("fuzzmodel")
    samples = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")
    assert cli("tokenize", f"{samples}/reviews.tsv", "-o", "rev.npz", cwd=d).returncode == 0
    assert cli("train", "-d", "rev.npz", "-o", "cls.npz", "--max-steps", "2", "--hidden", "8", "--embed", "4",
               "--eval-every", "1", cwd=d).returncode == 0
    with np.load(d / "cls.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return d, json.loads(str(arrays.pop("meta"))), arrays


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                 st.text(max_size=20), st.lists(st.integers(0, 5), max_size=4),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


def _paths(meta, prefix=()):
    """Every (path of keys, value) in a nested meta, lists' items included."""
    if isinstance(meta, dict):
        items = meta.items()
    elif isinstance(meta, list):
        items = list(enumerate(meta))[:6]
    else:
        return []
    out = []
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def test_checkpoint_meta(checkpoint, tmp_path):
    from rnncli.models import load_model

    d, meta, arrays = checkpoint
    places = _paths(meta)

    @settings(max_examples=150, **SETTINGS)
    @given(where=st.sampled_from(places), value=JUNK, drop=st.booleans())
    def run(where, value, drop):
        changed = json.loads(json.dumps(meta))
        node = changed
        for key in where[:-1]:
            node = node[key]
        if drop and isinstance(node, dict):
            node.pop(where[-1])
        else:
            node[where[-1]] = value
        path = tmp_path / "m.npz"
        try:
            text = json.dumps(changed, allow_nan=True)
        except ValueError:
            return
        np.savez(path, meta=np.array(text), **arrays)
        clean(lambda: load_model(str(path)))

    run()
