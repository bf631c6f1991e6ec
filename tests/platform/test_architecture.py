"""The import graph points one way: no module imports itself round a circle, no two packages
of app/ import each other, and the layers keep their direction (docs/architecture.md).

Every import counts, also one inside a function ("import at use") and one under
TYPE_CHECKING: each is a dependency a reader has to follow."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "mini_program_api", "console", "jobs", "storage")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic's scripts, loaded by Alembic
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The project's modules that `name` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            # `from app import errors` names the module app.errors; `import app.x.y` the
            # module itself. What is not a module of ours (a class, a library) is skipped.
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                yield candidate


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    """What the package rules speak of: a package of app/ (app.orders), a module at the top
    of app/ (app.db), or one of the other top-level packages (jobs)."""
    parts = module.split(".")
    if parts[0] != "app" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _units() -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        source = _unit(module)
        units.setdefault(source, set()).update(_unit(t) for t in targets if _unit(t) != source)
    return units


def test_the_graph_is_read():
    # A guard on the reader itself: these edges exist, so an empty graph is a broken test.
    assert "app.orders.states" in GRAPH["app.orders.moves"]
    assert "app.errors" in GRAPH["app.orders.moves"]  # `from app import errors`
    assert len(MODULES) > 80


def test_no_module_imports_itself_round_a_circle():
    assert _cycles(GRAPH) == []


def test_no_two_packages_import_each_other_and_no_circle_of_packages():
    units = _units()
    mutual = sorted(
        (a, b) for a, targets in units.items() for b in targets if a < b and a in units.get(b, ())
    )
    assert mutual == []
    assert _cycles(units) == []


def test_the_layers_point_one_way():
    units = _units()
    # storage knows nothing of the service; app knows nothing of HTTP or the scheduler,
    # except its two entry points that assemble them.
    assert units["storage"] == set()
    assert units["app.prereview"] == set()  # 智能预审 reads photos alone: no database, no app
    for unit, targets in units.items():
        if unit.startswith("app.") and unit not in ("app.asgi", "app.cli"):
            assert not targets & {"mini_program_api", "console", "jobs"}, unit
    # The console and the mini-program's API are siblings on the same app services.
    assert not units["console"] & {"mini_program_api", "jobs"}
    assert "console" not in units["mini_program_api"]
    # The public progress page (/p/<token>) lives in console/ for its templates, but is an
    # edge of its own: no session, sign-in or CSRF of the console, only app.
    public = GRAPH["console.progress_page"]
    assert public and all(t.split(".")[0] == "app" for t in public), public


# docs/architecture.md, "Dependencies": the packages of app/ in layers, each importing only
# layers below its own. Everything else of app/ (regions, security, models and the modules
# at its top) is layer 0, whose members import one another without a circle (checked above); the
# entry points that assemble the whole are not checked.
LAYERS = {
    "app.notifications": 1,
    "app.catalogue": 1,
    "app.uploads": 1,
    "app.orders": 2,
    "app.job_runs": 2,  # it reads the outbox's state
    "app.ratings": 3,
    "app.dispatch": 3,
    "app.accounts": 3,
    "app.ledger": 4,
    "app.district": 4,
    "app.retention": 4,
}
ASSEMBLERS = {"app.asgi", "app.cli", "app.demo"}


def test_each_package_imports_only_layers_below_its_own():
    wrong = [
        (unit, target)
        for unit, targets in _units().items()
        if unit.startswith("app.") and unit not in ASSEMBLERS
        for target in targets
        if LAYERS.get(target, 0) >= LAYERS.get(unit, 0) and LAYERS.get(target, 0) > 0
    ]
    assert wrong == []
