"""The architecture as a test: every import points down the stack, and no modules import each other in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The design's top-level folders, installed inside the package (symlinks tweet_signals/flows etc.):
# their modules are named as they are imported.
PACKAGED = {"flows": "tweet_signals.flows", "tasks": "tweet_signals.tasks", "deployments": "tweet_signals.deployments"}
ROOTS = ("tweet_signals", *PACKAGED)
# Higher layers may import lower ones; packages on one layer may not import each other.
LAYERS: dict[str, int] = {
    "tweet_signals.cli": 9,
    "tweet_signals.bench": 8,
    "tweet_signals.deployments": 8,
    "tweet_signals.flows": 7,
    "tweet_signals.tasks": 6,
    "tweet_signals.api": 5,
    "tweet_signals.prefect_local": 5,
    "tweet_signals.evaluation": 4,
    "tweet_signals.stages": 3,
    "tweet_signals.params": 2,
    "tweet_signals.training": 2,
    "tweet_signals.model": 1,
    "tweet_signals.sources": 1,
    "tweet_signals.market": 0,
    "tweet_signals.storage": 0,
    "tweet_signals.processes": -1,
    "tweet_signals.hashing": -1,
    "tweet_signals.quiet": -1,
    "tweet_signals.faults": -1,
}


def modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            name = PACKAGED.get(parts[0], parts[0]) + name[len(parts[0]) :]
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports, at any depth (lazy imports inside functions count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def package(module: str) -> str:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    edges = {name: imports(path, known) - {name} for name, path in found.items()}
    # A package's __init__ re-exporting its own modules is not a dependency of those modules on it.
    return {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in edges.items()}


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [m for m in modules() if package(m) not in LAYERS and m not in PACKAGED.values() and m != "tweet_signals"]
    assert not orphans, f"modules outside the layer map: {orphans}"


def test_imports_point_down_the_stack() -> None:
    upward = []
    for module, deps in graph().items():
        if module in PACKAGED.values() or module == "tweet_signals":
            continue
        for dep in deps:
            if dep in PACKAGED.values() or dep == "tweet_signals":
                continue
            mine, theirs = package(module), package(dep)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports that do not point down the stack:\n" + "\n".join(sorted(upward))


# The library below the orchestration layers runs without Prefect (api.py, notebooks, Dask
# workers): only the modules that start or talk to a Prefect server may import it.
PREFECT_USERS = ("tweet_signals.prefect_local", "tweet_signals.cli", "tweet_signals.bench", *PACKAGED.values())


def test_the_library_imports_no_prefect() -> None:
    users = []
    for module, path in modules().items():
        if not module.startswith("tweet_signals") or module.startswith(PREFECT_USERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            users += [f"{module} imports {n}" for n in names if n == "prefect" or n.startswith("prefect.")]
    assert not users, "\n".join(users)


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_real_imports() -> None:
    """The walker itself: it finds a top-level and a lazy (in-function) import."""
    edges = graph()
    assert "tweet_signals.stages.tfidf" in edges["tweet_signals.stages.analyze"]
    assert "tweet_signals.sources.synthetic" in edges["tweet_signals.stages.analyze"]  # inside a function


@pytest.mark.slow
def test_every_module_imports_alone() -> None:
    """Each module in a fresh interpreter: no module relies on another having been imported first."""

    def load(module: str) -> tuple[str, int, str]:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True, check=False
        )
        return module, done.returncode, done.stderr[-800:]

    names = [m for m in modules() if not m.endswith("__main__")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [r for r in pool.map(load, names) if r[1] != 0]
    assert not failed, "\n\n".join(f"{m}:\n{err}" for m, _, err in failed)


# What reading a ``--model`` string looks like: comparing it with "embedded", asking the file
# system what a path built from it is, finding an adapter from it. Only ``resolve_model`` may;
# everything else takes the ``ModelRef`` it returns. Not model strings: training's own output
# folders, and the engine benchmark's row labels ("embedded", "roberta-base"), which name the
# models it builds.
MODEL_STRING_READER = "tweet_signals.model.reference"
NOT_MODEL_STRINGS = {
    "tweet_signals.training.trainer",
    "tweet_signals.training.labelled_sets",
    "tweet_signals.bench.engines",
}


def _reads_a_model_string(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        names = {s.id if isinstance(s, ast.Name) else s.attr if isinstance(s, ast.Attribute) else "" for s in sides}
        embedded = any(isinstance(s, ast.Constant) and s.value == "embedded" for s in sides) or "EMBEDDED" in names
        return embedded and any("model" in n.lower() for n in names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path" and node.args:
        arg = node.args[0]
        inner = arg.args[0] if isinstance(arg, ast.Call) and arg.args else arg
        name = inner.id if isinstance(inner, ast.Name) else inner.attr if isinstance(inner, ast.Attribute) else ""
        return name in {"model", "model_path"}
    return False


def test_the_model_string_is_resolved_in_one_place() -> None:
    readers = sorted(
        f"{name}:{node.lineno}"
        for name, path in modules().items()
        if name != MODEL_STRING_READER and name not in NOT_MODEL_STRINGS
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _reads_a_model_string(node)
    )
    assert not readers, "model strings read outside resolve_model:\n" + "\n".join(readers)
    # The walker itself: the resolver does read the string, and is found doing so.
    reference = ast.parse(modules()[MODEL_STRING_READER].read_text(encoding="utf-8"))
    assert any(_reads_a_model_string(node) for node in ast.walk(reference))


def test_only_the_project_name_is_installed_at_the_top_level(tmp_path: Path) -> None:
    """flows, tasks and deployments are installed as tweet_signals.flows etc., never as generic
    top-level names another project's could shadow (checked in a fresh interpreter outside the
    checkout, where only the installed distribution is visible)."""
    from importlib.metadata import distribution

    assert distribution("tweet-signals").read_text("top_level.txt").split() == ["tweet_signals"]
    probe = (
        "import importlib.util as u;"
        "print([n for n in ('flows', 'tasks', 'deployments') if u.find_spec(n)]);"
        "print(all(u.find_spec(m) for m in ('tweet_signals.flows.daily_signals', 'tweet_signals.tasks.analyze',"
        " 'tweet_signals.deployments.serve')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"], done.stdout + done.stderr
