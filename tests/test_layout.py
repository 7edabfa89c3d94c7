"""The architecture as a test: every import points down the stack, and no modules import each other in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("tweet_signals", "flows", "tasks", "deployments")
# Higher layers may import lower ones; packages on one layer may not import each other.
LAYERS: dict[str, int] = {
    "tweet_signals.cli": 9,
    "tweet_signals.bench": 8,
    "deployments": 8,
    "flows": 7,
    "tasks": 6,
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
}


def modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
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
    orphans = [m for m in modules() if package(m) not in LAYERS and m not in ROOTS and m != "tweet_signals"]
    assert not orphans, f"modules outside the layer map: {orphans}"


def test_imports_point_down_the_stack() -> None:
    upward = []
    for module, deps in graph().items():
        if module in ROOTS or module == "tweet_signals":
            continue
        for dep in deps:
            if dep in ROOTS or dep == "tweet_signals":
                continue
            mine, theirs = package(module), package(dep)
            if mine != theirs and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{module} -> {dep}")
    assert not upward, "imports that do not point down the stack:\n" + "\n".join(sorted(upward))


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
