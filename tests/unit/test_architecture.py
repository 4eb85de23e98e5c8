"""The package's structure, checked from its source: no import cycles, layers that do not leak.

Operators, sensors, triggers and the CLI -> the hook -> services -> backends -> utilities. The
import graph counts every import, including those inside functions and ``TYPE_CHECKING`` blocks,
since a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "airflow_autogluon_cloud"
#: The entry scripts run inside the container and must stay self-contained, whatever their length.
CONTAINER = PACKAGE / "container"
MAX_MODULE_LINES = 500
#: Above the hook: the Airflow faces.
FACES = ("operators", "sensors", "triggers", "links", "cli.py")
BACKEND_NAMES = ("local", "sagemaker")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``module`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # ``from pkg import module`` depends on the module; ``from module import name`` on the module.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_graph_sees_imports_inside_functions():
    graph = _graph()
    # operators/base.py imports the hook only inside a method (parse time stays light)
    assert "airflow_autogluon_cloud.hooks.autogluon_cloud" in graph["airflow_autogluon_cloud.operators.base"]
    assert "airflow_autogluon_cloud.services.jobs" in graph["airflow_autogluon_cloud.hooks.autogluon_cloud"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycles():
    assert _cycles(_graph()) == []


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("services", "hooks"),
        ("backends", "services"),
        ("backends", "hooks"),
        ("hooks", "operators"),
        ("hooks", "sensors"),
        ("hooks", "triggers"),
    ],
)
def test_nothing_imports_a_higher_layer(lower, higher):
    leaks = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _layer(module) == lower
        for target in targets
        if _layer(target) == higher
    ]
    assert leaks == []


def test_modules_stay_under_500_lines():
    long = {
        str(path.relative_to(REPO)): lines
        for path in PACKAGE.rglob("*.py")
        if CONTAINER not in path.parents and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _outside(*allowed: str) -> list[Path]:
    return [
        path
        for path in PACKAGE.rglob("*.py")
        if not any(str(path.relative_to(PACKAGE)).startswith(prefix) for prefix in allowed)
    ]


def test_only_backends_and_settings_branch_on_the_backend_name():
    branches = []
    for path in _outside("backends/", "settings.py", "container/"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant) and side.value in BACKEND_NAMES:
                        branches.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert branches == []


def _is_hook(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "hook") or (
        isinstance(node, ast.Attribute) and node.attr == "hook"
    )


def test_faces_call_only_public_methods_of_the_hook():
    """Operators, sensors, triggers and the CLI never reach past the hook into the backend or a private name."""
    reaches = []
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE))
        if not relative.startswith(FACES):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and _is_hook(node.value):
                if node.attr == "backend" or node.attr.startswith("_"):
                    reaches.append(f"{relative}:{node.lineno} hook.{node.attr}")
    assert reaches == []


PREDICTOR_KIND_NAMES = ("tabular", "timeseries", "multimodal")


def test_only_the_kind_modules_and_container_name_a_predictor_kind():
    """The predictor kind is an axis: above ``kinds/``, code asks a kind object, never compares names."""
    named = []
    for path in _outside("kinds/", "container/"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in PREDICTOR_KIND_NAMES:
                named.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert named == []


def _sibling_imports(path: Path) -> set[str]:
    siblings = {p.stem for p in CONTAINER.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        found |= {n for n in names if n in siblings}
    return found


def test_every_module_the_container_scripts_import_ships_with_them():
    """Whatever an entry script or a kind module imports from beside it is in sourcedir.tar.gz and code/."""
    from airflow_autogluon_cloud.backends.specs import CONTAINER_SUPPORT_MODULES, PAIRED_STATS_MODULES

    shipped = {name.removesuffix(".py") for name in (*CONTAINER_SUPPORT_MODULES, *PAIRED_STATS_MODULES)}
    imported = set()
    for path in CONTAINER.glob("*.py"):
        if path.name != "local_endpoint.py":  # runs on the host, beside the package
            imported |= _sibling_imports(path)
    assert imported <= shipped
    container_list = ast.literal_eval(
        next(
            node.value
            for node in ast.parse((CONTAINER / "ag_kinds.py").read_text()).body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CODE_MODULES"
        )
    )
    assert tuple(container_list) == CONTAINER_SUPPORT_MODULES


def test_container_scripts_import_nothing_from_the_package():
    for path in CONTAINER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("airflow_autogluon_cloud"), path.name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("airflow_autogluon_cloud") for a in node.names), path.name
