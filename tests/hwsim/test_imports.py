"""hwsim's modules import each other without a cycle.

Every import counts: at module level, inside functions (a lazy import is
still a dependency) and under TYPE_CHECKING (a type is still a dependency).
The parts of a board (lines, phones, trunks, spans, parties) see their world
through the protocols in hwsim.ports, never hwsim.world.
"""
from __future__ import annotations

import ast
from pathlib import Path

HWSIM = Path(__file__).resolve().parents[2] / "hwsim"


def _module_names() -> set[str]:
    return {"hwsim." + p.stem for p in HWSIM.glob("*.py") if p.stem != "__init__"} | {"hwsim"}


def _path(module: str) -> Path:
    return HWSIM / "__init__.py" if module == "hwsim" else HWSIM / (module.split(".", 1)[1] + ".py")


def hwsim_imports(module: str, known: set[str]) -> set[str]:
    """The hwsim modules `module` imports anywhere in its source."""
    tree = ast.parse(_path(module).read_text(), str(_path(module)))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:            # relative: resolve against the hwsim package
                base = "hwsim" + ("." + node.module if node.module else "")
            else:
                base = node.module or ""
            # `from hwsim import lines` imports the module hwsim.lines; `from hwsim.e1 import X`
            # and `from hwsim import Simulator` import what the module (package) defines
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out.update(n for n in names if n in known and n != module)
    return out


def import_graph() -> dict[str, set[str]]:
    known = _module_names()
    return {m: hwsim_imports(m, known) for m in sorted(known)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}        # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_walk_sees_every_kind_of_import():
    """The walker itself: lazy imports and TYPE_CHECKING imports are edges."""
    known = _module_names()
    # world imports the parts at module level
    assert {"hwsim.lines", "hwsim.phones", "hwsim.e1", "hwsim.trunks"} <= hwsim_imports("hwsim.world", known)
    # __main__ imports the simulator inside main()
    assert "hwsim.simulator" in hwsim_imports("hwsim.__main__", known)


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_hwsim_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "hwsim import cycle: " + " -> ".join(cycle or [])


def test_parts_do_not_import_the_world():
    known = _module_names()
    for part in ("hwsim.lines", "hwsim.phones", "hwsim.trunks", "hwsim.e1", "hwsim.parties", "hwsim.r2far"):
        assert "hwsim.world" not in hwsim_imports(part, known), part


def test_the_r2_exchange_is_written_apart_from_the_hosts_r2():
    """hwsim's China No.1 side must check the server's, not agree with it by construction:
    no hwsim module imports the server's R2 (voiceserver.r2) or dsp's MF R2 code."""
    for path in sorted(HWSIM.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("voiceserver"), f"{path.name} imports {name}"
                assert not name.startswith(("dsp.r2mf", "dsp.r2")), f"{path.name} imports {name}"
