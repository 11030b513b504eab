"""Imports point one way: cli -> commands -> train/sample/evaluate -> tasks -> nn; text/,
checkpoint and errors are leaves. Read from the source (every import, also those inside
functions), so a shortcut taken anywhere shows up here."""

import ast
import os
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "rnncli")


def module_name(path):
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def all_imports():
    """{module: set of imported module names (absolute)}, for every module of the package."""
    graph = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            mod = module_name(path)
            found = set()
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    found.add(node.module)
                    found.update(f"{node.module}.{a.name}" for a in node.names)  # from pkg import module
            graph[mod] = found
    return graph


GRAPH = all_imports()
MODULES = set(GRAPH)


def internal(names):
    return {n for n in names if n in MODULES}


def top(name):
    return name.split(".")[0]


def test_nn_imports_only_nn_numpy_and_the_standard_library():
    for mod, names in GRAPH.items():
        if mod.startswith("rnncli.nn"):
            outside = {n for n in names if top(n) == "rnncli" and not n.startswith("rnncli.nn")}
            third_party = {top(n) for n in names if top(n) not in ("rnncli", "numpy")
                           and top(n) not in sys.stdlib_module_names}
            assert not outside and not third_party, (mod, outside, third_party)


LEAVES = ("rnncli.text", "rnncli.frames", "rnncli.checkpoint", "rnncli.npzfile", "rnncli.errors", "rnncli.yamlfile")
UPPER = ("rnncli.tasks", "rnncli.cli", "rnncli.commands", "rnncli.render", "rnncli.train", "rnncli.models",
         "rnncli.evaluate", "rnncli.sample", "rnncli.ensemble", "rnncli.console")


@pytest.mark.parametrize("leaf", LEAVES)
def test_data_and_checkpoint_code_import_no_task_or_cli_code(leaf):
    for mod, names in GRAPH.items():
        if mod == leaf or mod.startswith(leaf + "."):
            upward = {n for n in names if any(n == u or n.startswith(u + ".") for u in UPPER)}
            assert not upward, (mod, upward)


def test_nothing_imports_the_cli():
    users = {mod for mod, names in GRAPH.items() if "rnncli.cli" in names and mod != "rnncli.__main__"}
    assert not users


def test_the_import_graph_has_no_cycle():
    # a module's own package (rnncli, rnncli.nn: docstring-only __init__ files) is no edge back
    edges = {mod: {n for n in internal(names) if n != mod and not mod.startswith(n + ".")}
             for mod, names in GRAPH.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])


def test_the_layering_test_sees_real_edges():
    # a guard against a test that passes because it reads nothing
    assert "rnncli.nn.recurrent" in GRAPH["rnncli.nn.stack"] or "rnncli.nn.recurrent.make_cell" in \
        GRAPH["rnncli.nn.stack"]
    assert "rnncli.train" in internal(GRAPH["rnncli.commands.train"])


def test_only_parallel_knows_mpi():
    """MPI lives in one room (parallel/world.py); train.py and evaluate.py stay single-process loops."""
    users = {mod for mod, names in GRAPH.items() if any(top(n) == "mpi4py" for n in names)}
    assert users == {"rnncli.parallel.world", "rnncli.parallel.launch"}
