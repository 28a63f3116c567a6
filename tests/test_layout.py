"""The layout stays one room per feature, with arrows pointing down: a room imports only
rooms below it (engine never imports web), and no two modules import each other.
Read from the source with `ast`, so a new module is checked the day it lands."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "provisioning"

#: Rooms from the bottom up. The app's foundation (models, errors, actors, ids, groups,
#: signals, apps, demo) is below every room; `apps` wires the admin in at start-up.
ROOMS = [
    "spec",
    "audit",
    "engine",
    "drift",
    "diagnostics",
    "account",
    "account_actions",
    "jobs",
    "hooks",
    "approvals",
    "web",
    "management",
]
FOUNDATION = {"models", "errors", "actors", "ids", "groups", "signals", "demo", "apps", "migrations"}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every provisioning module `path` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("provisioning"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("provisioning"))
    return found


def modules() -> dict[str, set[str]]:
    graph = {module_name(p): imports_of(p) for p in APP.rglob("*.py") if "migrations" not in p.parts}
    return {name: {i for i in imported if i in graph} for name, imported in graph.items()}


def room_of(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    return part if part in ROOMS else "foundation"


def rank(room: str) -> int:
    return -1 if room == "foundation" else ROOMS.index(room)


def test_rooms_import_only_rooms_below_them():
    upward = []
    for module, imported in modules().items():
        if module == "provisioning.apps":
            continue  # the app's wiring: it registers web's ModelAdmins at start-up
        for target in imported:
            if rank(room_of(target)) > rank(room_of(module)):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_module_imports_another_that_imports_it_back():
    graph = modules()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target == path[0] and len(path) > 1:
                cycles.append(" -> ".join([*path, target]))
            elif target not in path and len(path) < 6:
                visit(target, [*path, target])

    for module in graph:
        visit(module, [module])
    # A package importing its own submodules (`__init__` re-exports) is not a cycle.
    cycles = [c for c in cycles if not all(step.startswith(c.split(" -> ")[0]) for step in c.split(" -> "))]
    assert cycles == []


def test_every_flat_module_of_the_old_layout_is_gone():
    flat = {p.stem for p in APP.glob("*.py")} - {"__init__"}
    assert flat <= FOUNDATION, sorted(flat - FOUNDATION)
