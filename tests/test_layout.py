"""The house rules of the code's layout, read from the source (nothing is imported to check them).

- backend/ holds at most 10 entries at its top level, each a package that says what it holds or one
  of the entry points (``python -m backend``, ``backend.cli``) and the one error table;
- no module imports, directly or through others, a module that imports it back (backend, add-on,
  protocol), lazy imports inside functions included;
- bpy only in blender_addon/, torch only in backend/, and shared/ (the protocol) imports neither side.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, package_root: Path, package: str) -> str:
    parts = list(path.relative_to(package_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _imports(path: Path, name: str) -> set[str]:
    """Every module name ``path`` (module ``name``) imports, anywhere in the file, resolved."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            # `from pkg import sub` imports pkg.sub when sub is a module
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _graph(folder: str, package: str) -> dict[str, set[str]]:
    root = ROOT / folder
    modules = {_module_name(p, root, package): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, name) if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of module names, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _packages_of(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph folded to packages ``depth`` names deep (backend.reconstruct, backend.rig, ...)."""
    def pkg(m: str) -> str:
        return ".".join(m.split(".")[:depth])
    folded: dict[str, set[str]] = {}
    for m, deps in graph.items():
        folded.setdefault(pkg(m), set()).update(pkg(d) for d in deps if pkg(d) != pkg(m))
    for deps in list(folded.values()):
        for d in deps:
            folded.setdefault(d, set())
    return folded


@pytest.mark.parametrize("folder,package", [("backend", "backend"), ("blender_addon", "headlift"),
                                            ("shared", "shared")])
def test_no_module_imports_one_that_imports_it_back(folder, package):
    graph = _graph(folder, package)
    # a package's __init__ importing its own modules is how packages work, not a cycle
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_backend_packages_depend_one_way():
    """service -> animation -> reconstruct -> rig -> render: no package reaches back up."""
    graph = _graph("backend", "backend")
    folded = _packages_of({m: d for m, d in graph.items()}, depth=2)
    folded = {m: {d for d in deps if d != "backend" and not d.startswith("backend.__")}
              for m, deps in folded.items() if m != "backend"}
    assert _cycle(folded) is None, f"package cycle: {' -> '.join(_cycle(folded))}"


def test_backend_top_level_is_a_few_rooms():
    entries = sorted(p.name for p in (ROOT / "backend").iterdir()
                     if p.name != "__pycache__" and (p.suffix == ".py" or (p / "__init__.py").exists()))
    assert len(entries) <= 10, entries
    for p in (ROOT / "backend").iterdir():
        if p.is_dir() and p.name != "__pycache__":
            assert (p / "__init__.py").exists(), f"backend/{p.name} is not a package"


@pytest.mark.parametrize("folder,forbidden", [("backend", {"bpy"}), ("shared", {"bpy", "torch", "backend"}),
                                              ("blender_addon", {"torch", "backend"})])
def test_each_side_imports_only_its_own_world(folder, forbidden):
    offenders = []
    for path in (ROOT / folder).rglob("*.py"):
        tops = {m.split(".")[0] for m in _imports(path, "x") if m}
        if bad := tops & forbidden:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders
