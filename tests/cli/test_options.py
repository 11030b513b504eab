"""Options and config files: non-finite numbers refused naming the option, YAML numbers read as
numbers, help that keeps its examples."""

import pytest
from cli_runner import cli


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


def _float_options():
    """Every float option of every command, read from the command functions' signatures (so
    a new float option is covered without touching this test)."""
    import inspect
    import typing

    from rnncli.cli import app

    found = []
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        # the signature Typer reads: train's options made from TrainConfig are in it (cli_config.py)
        for param, hint in ((p.name, p.annotation) for p in inspect.signature(command.callback).parameters.values()):
            base, info = typing.get_args(hint)[:2] if typing.get_origin(hint) is typing.Annotated else (hint, None)
            if float not in (base, *typing.get_args(base)):
                continue
            decls = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("--")]
            found.append((name, decls[0] if decls else "--" + param.replace("_", "-")))
    return found


FIRST_ARGS = {"tokenize": ["x.txt"], "eval": ["x.txt"]}


@pytest.mark.parametrize("command,option", _float_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_float_options_are_usage_errors(tmp_path, command, option, value):
    r = cli(command, *FIRST_ARGS.get(command, []), option, value, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert option in r.stderr and "finite" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_the_float_options_include_the_known_ones():
    assert {("sample", "--temp"), ("sample", "--top-p"), ("train", "--lr"), ("tokenize", "--valid-frac")} <= set(
        _float_options())


def test_a_yaml_config_with_nan_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: .nan\n")
    r = cli("train", "--config", "c.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "--lr must be a finite number" in r.stderr, r.stderr


def test_top_level_help_keeps_its_examples_on_their_own_lines(tmp_path):
    out = ok(cli("--help", cwd=tmp_path)).stdout.splitlines()
    for example in ("rnncli tokenize corpus.txt", "rnncli train --cell lstm", "rnncli sample --temp 0.8"):
        assert any(line.strip() == example for line in out), out


def test_yaml_floats_written_without_a_dot_are_numbers(tmp_path):
    from rnncli.config import make_config

    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5E-5\naverage: 9.99e-1\nhidden: 64\n")
    cfg = make_config(str(tmp_path / "c.yaml"))
    assert (cfg.lr, cfg.weight_decay, cfg.average, cfg.hidden) == (1e-3, 5e-5, 0.999, 64)
    (tmp_path / "c.yaml").write_text("hidden: 1e3\n")  # still not an int
    r = cli("train", "--config", "c.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "key 'hidden' should be int" in r.stderr
