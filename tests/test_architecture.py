"""The project's import structure: no cycles, and each layer imports only the ones below it.

Layers, lowest first: boarddrv (the card) and dsp (signal processing) know
nothing of each other or of anything above; hwsim (a simulated card) uses
both; voiceserver uses boarddrv and dsp, never hwsim. Imports inside
functions and under TYPE_CHECKING count: a cycle hidden in a function is
still a cycle a reader has to follow.
"""
from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("boarddrv", "dsp", "hwsim", "voiceserver", "prompts")
MAY_IMPORT = {
    "boarddrv": set(),
    "dsp": set(),
    "hwsim": {"boarddrv", "dsp"},
    "voiceserver": {"boarddrv", "dsp", "prompts"},
    "prompts": {"boarddrv", "dsp", "voiceserver"},   # the tools that build the prompt audio
}
# `voiceboard demo` starts hwsim as a process of its own: the one place voiceserver
# names hwsim, and only its spawn helper. TOML with file/line errors lives in
# dsp (standard library only, so that dsp needs nothing else); boarddrv's
# config files use the same module.
ALLOWED = {("voiceserver.cli.serve", "hwsim.spawn"), ("boarddrv.tomlconfig", "dsp.tomlconfig")}


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a `from pkg import mod` names mod). Made once
    for the module's tests (parsing every file takes seconds); nothing here changes it."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in mods else base if base in mods else None)
            graph[mod] |= {t for t in targets if t is not None and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_has_the_project_in_it():
    graph = import_graph()
    assert "voiceserver.core.server" in graph["voiceserver.cli.serve"]
    assert "boarddrv.board" in graph["boarddrv"]


def test_no_import_cycle_in_the_project():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_the_layers_below(package):
    wrong = sorted(f"{a} imports {b}" for a, bs in import_graph().items() if a.split(".")[0] == package
                   for b in bs if b.split(".")[0] not in MAY_IMPORT[package] | {package}
                   and (a, b) not in ALLOWED)
    assert not wrong, "\n".join(wrong)


def test_the_acd_link_and_the_recording_service_know_the_server_only_by_its_interface():
    graph = import_graph()
    for mod in ("voiceserver.acd.link", "voiceserver.recording.service"):
        assert "voiceserver.core.server" not in graph[mod], mod
