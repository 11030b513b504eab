"""The encoder-decoder from the command line, as the README shows it: tokenize source<TAB>target
pairs, train on dates, predict line by line, eval with BLEU/chrF/exact match (checked against
sacrebleu on the model's own predictions)."""

import json
import os

import pytest
import sacrebleu
from cli_runner import cli

SAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sample_data"))
CONFIGS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "configs"))


@pytest.fixture(scope="module")
def dates(tmp_path_factory):
    d = tmp_path_factory.mktemp("dates")
    r = cli("tokenize", f"{SAMPLES}/dates.tsv", "--valid", f"{SAMPLES}/dates_valid.tsv", "--level", "char",
            "-o", "dates.npz", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["format"] == "pairs" and report["target_level"] == "char"  # detected, not given
    r = cli("train", "-d", "dates.npz", "-o", "m.npz", "--config", f"{CONFIGS}/dates.yaml", "--max-steps", "450",
            "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)


def test_dates_are_learnt(dates):
    _, summary = dates
    assert summary["task"] == "seq2seq"
    assert summary["valid"]["exact_match"] >= 0.95, summary["valid"]


def test_predict_answers_one_line_per_line_and_eval_agrees_with_sacrebleu(dates):
    d, _ = dates
    pairs = [line.rstrip("\n").split("\t") for line in open(f"{SAMPLES}/dates_valid.tsv", encoding="utf-8")][:200]
    sources = "\n".join(s for s, _ in pairs[:3]) + "\n\n" + "\n".join(s for s, _ in pairs[3:]) + "\n"
    r = cli("predict", "-m", "m.npz", cwd=d, stdin=sources)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")[:-1]
    assert len(lines) == len(pairs) + 1 and lines[3] == ""  # an empty line in, an empty line out
    hyps = lines[:3] + lines[4:]
    refs = [t for _, t in pairs]
    (d / "part.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    scores = json.loads(cli("eval", "-m", "m.npz", "part.tsv", "--json", cwd=d).stdout)
    assert scores["examples"] == 200 and scores["decoding"] == "greedy"
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-9)
    assert scores["exact_match"] == sum(h == t for h, t in zip(hyps, refs, strict=True)) / 200


def test_beam_and_n_best_under_json(dates):
    d, _ = dates
    r = cli("predict", "-m", "m.npz", "--beam", "4", "--n-best", "3", "--json", cwd=d,
            stdin="march 3rd 1998\nTuesday, 3 March 1998\n")
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        record = json.loads(line)
        scores = [h["score"] for h in record["n_best"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert record["translation"] == record["n_best"][0]["translation"] == "1998-03-03"
    r = cli("predict", "-m", "m.npz", "--temp", "1.0", "--seed", "1", cwd=d, stdin="3/4/98\n")
    again = cli("predict", "-m", "m.npz", "--temp", "1.0", "--seed", "1", cwd=d, stdin="3/4/98\n")
    assert r.returncode == 0 and r.stdout == again.stdout and len(r.stdout.splitlines()) == 1


def test_inspect_shows_both_vocabularies(dates):
    d, _ = dates
    info = json.loads(cli("inspect", "m.npz", "--json", cwd=d).stdout)
    assert info["task"] == "seq2seq" and info["target"]["level"] == "char"
    assert {"encoder.l0", "decoder.l0", "attention", "bridge.l0.a", "bridge.l0.c", "head"} <= set(info["arrays"])


def test_unknown_characters_are_refused_for_eval_and_warned_once_in_predict(dates):
    """The dates model's vocabulary holds every training character, so it never learnt <unk>."""
    d, _ = dates
    (d / "greek.tsv").write_text("3 march 1998\t1998-03-03\n3 μαρτίου 1998\t1998-03-03\n")
    r = cli("eval", "-m", "m.npz", "greek.tsv", cwd=d)
    assert r.returncode == 1 and "greek.tsv:2: source character 'μ'" in r.stderr
    r = cli("predict", "-m", "m.npz", cwd=d, stdin="3 μαρτίου 1998\n4 μαρτίου 1998\n")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2  # every line still answered
    assert r.stderr.count("'μ' is not in the model's vocabulary") == 1


def test_word_level_unknowns_are_counted_and_the_target_limit_travels_with_the_model(tmp_path):
    """Words cut by --min-freq teach <unk>: unseen words at --vocab are a warning, not an error.
    --max-target-ratio admits longer targets, and the trained model decodes up to that limit."""
    import numpy as np

    from rnncli.decode import max_lengths
    from rnncli.models import load_model

    lines = [f"go {i % 7}\t{' '.join(['la'] * (12 + i % 4))}\n" for i in range(40)]
    (tmp_path / "long.tsv").write_text("".join(lines))
    r = cli("tokenize", "long.tsv", "-f", "pairs", "-o", "a.npz", cwd=tmp_path)
    assert r.returncode == 1 and "raise --max-target-ratio" in r.stderr and not (tmp_path / "a.npz").exists()
    r = cli("tokenize", "long.tsv", "-f", "pairs", "--max-target-ratio", "4", "--min-freq", "6", "-o", "a.npz",
            "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert cli("train", "-d", "a.npz", "-o", "m.npz", "--max-steps", "1", "--hidden", "8", "--embed", "4",
               cwd=tmp_path).returncode == 0
    model, _, _ = load_model(str(tmp_path / "m.npz"))
    assert model.max_target_ratio == 4.0
    assert list(max_lengths(model, np.array([[1, 1], [1, 0], [1, 0]], np.float32))) == [22, 14]
    (tmp_path / "test.tsv").write_text("go 3\tla la\nrun 3\tla\n")
    r = cli("tokenize", "test.tsv", "--vocab", "m.npz", "-o", "t.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "1 source tokens are not in the vocabulary and read as <unk> (first: 'run' at test.tsv:2)" in r.stderr


def test_predict_reads_the_source_field_of_json_lines(dates):
    d, _ = dates
    sources = [line.split("\t")[0] for line in open(f"{SAMPLES}/dates_valid.tsv", encoding="utf-8")][:20]
    plain = cli("predict", "-m", "m.npz", "--beam", "3", cwd=d, stdin="\n".join(sources) + "\n")
    records = "".join(json.dumps({"source": s, "target": "?"}) + "\n" for s in sources)
    jsonl = cli("predict", "-m", "m.npz", "--beam", "3", "-f", "jsonl", cwd=d, stdin=records)
    assert jsonl.returncode == 0, jsonl.stderr
    assert jsonl.stdout == plain.stdout and len(plain.stdout.splitlines()) == 20


def test_a_model_carries_its_decoding_and_validates_on_a_fixed_sample(dates):
    """train --beam/--length-penalty set the model's own decoding, which predict and eval use unless
    told otherwise (a beam ranks by the mean per token unless a penalty is given); --decode-valid
    decodes a fixed sample at each validation while the loss reads the whole valid split."""
    d, _ = dates
    r = cli("train", "-d", "dates.npz", "-o", "beam3.npz", "--config", f"{CONFIGS}/dates.yaml", "--max-steps", "6",
            "--beam", "3", "--length-penalty", "0.5", "--decode-valid", "40", "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    valid = json.loads(r.stdout)["valid"]
    assert valid["decoded"] == 40 and valid["tokens"] == 1000 * 11  # 10 characters and <eos> per date
    pairs = open(f"{SAMPLES}/dates_valid.tsv", encoding="utf-8").read().splitlines()[:30]
    (d / "few.tsv").write_text("\n".join(pairs) + "\n")

    def decoding(model, *flags):
        out = cli("eval", "-m", model, "few.tsv", "--json", *flags, cwd=d)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["decoding"]

    assert decoding("beam3.npz") == "beam 3, length penalty 0.5"
    assert decoding("beam3.npz", "--beam", "0") == "greedy"
    assert decoding("beam3.npz", "--length-penalty", "0") == "beam 3, length penalty 0"
    assert decoding("m.npz") == "greedy"
    assert decoding("m.npz", "--beam", "4") == "beam 4, length penalty 1"
    sources = "".join(p.split("\t")[0] + "\n" for p in pairs)
    own = cli("predict", "-m", "beam3.npz", "--json", "--n-best", "3", cwd=d, stdin=sources)
    told = cli("predict", "-m", "beam3.npz", "--json", "--n-best", "3", "--beam", "3", "--length-penalty", "0.5",
               cwd=d, stdin=sources)
    assert own.returncode == 0 and own.stdout == told.stdout
    assert all(len(json.loads(line)["n_best"]) == 3 for line in own.stdout.splitlines())
    greedy = cli("predict", "-m", "beam3.npz", "--greedy", cwd=d, stdin=sources).stdout
    assert greedy == cli("predict", "-m", "beam3.npz", "--beam", "0", cwd=d, stdin=sources).stdout
