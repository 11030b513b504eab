"""Inputs that could stall a pipeline or exhaust memory: deeply nested records, extra columns, huge
lines."""

import time

from cli_runner import cli


def test_a_deeply_nested_json_lines_record_is_a_file_line_error(models):
    d = models
    (d / "deep.jsonl").write_text('{"text": "fine", "label": "positive"}\n{"text": ' + "[" * 100_000 +
                                  "]" * 100_000 + "}\n")
    for command in (["tokenize", "deep.jsonl", "-o", "deep.npz"], ["predict", "-m", "cls.npz", "deep.jsonl"]):
        r = cli(*command, cwd=d)
        assert r.returncode == 1 and "deep.jsonl:2: invalid JSON (nested too deeply)" in r.stderr, r.stderr
    assert not (d / "deep.npz").exists()


def test_a_third_column_in_pairs_is_named(models):
    (models / "three.tsv").write_text("a b\tc d\nsource\ttarget\textra\n")
    r = cli("tokenize", "three.tsv", "-f", "pairs", "-o", "three.npz", cwd=models)
    assert r.returncode == 1 and "three.tsv:2: expected 'source<TAB>target', found 3 tab-separated" in r.stderr


def test_a_huge_source_line_is_skipped_or_cut_not_decoded_for_minutes(models):
    d = models
    lines = "sentence number 3\n" + "sentence " * 20_000 + "\nsentence number 5\n"
    start = time.perf_counter()
    r = cli("predict", "-m", "s2s.npz", "--beam", "3", cwd=d, stdin=lines, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 3 and r.stdout.split("\n")[1] == ""  # the lines stay aligned
    assert "warning: <stdin>:2: a source of 20,000 tokens, longer than this model's limit of 6" in r.stderr
    r = cli("predict", "-m", "s2s.npz", "--too-long", "cut", cwd=d, stdin=lines, timeout=120)
    assert r.returncode == 0 and "read its first 6" in r.stderr
    r = cli("predict", "-m", "s2s.npz", "--max-source-len", "100000", cwd=d, stdin="sentence " * 7 + "\n")
    assert r.returncode == 0 and "warning" not in r.stderr
    assert time.perf_counter() - start < 100
    (d / "long.tsv").write_text("sentence number 1\tphrase 1\n" + "sentence " * 20_000 + "\tphrase\n")
    r = cli("eval", "-m", "s2s.npz", "long.tsv", cwd=d)
    assert r.returncode == 1 and "long.tsv:2: a source of 20,000 tokens" in r.stderr, r.stderr
    r = cli("show", "-m", "s2s.npz", "-", cwd=d, stdin="sentence " * 20_000)
    assert r.returncode == 1 and "cannot show a source of 20,000 tokens" in r.stderr
