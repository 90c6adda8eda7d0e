"""The layout the project builds on: who may import whom, and what ships in the wheel.

Imports are read from the source (every `import`, at module level or inside a function), so a
lazy import that hides a cycle still counts.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("regmix", "analysis")
CLI_PACKAGES = ("regmix.cli", "analysis.cli")


def _modules() -> dict[str, Path]:
    """module name -> file, for every module of the shipped packages."""
    out = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (the deepest known module of each import)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(dotted: str) -> None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != name:
            found.add(dotted)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                resolve(f"{module}.{alias.name}")
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _is_cli(name: str) -> bool:
    """An entry point: the regmix.cli package, analysis.cli, or a sibling analysis.cli_<command>."""
    return any(name == p or name.startswith(p + ".") for p in CLI_PACKAGES) or name.startswith("analysis.cli_")


def test_library_modules_never_import_the_command_line():
    offenders = {
        name: sorted(m for m in deps if _is_cli(m))
        for name, deps in _graph().items()
        if not _is_cli(name) and any(_is_cli(m) for m in deps)
    }
    assert offenders == {}, f"library modules importing cli/: {offenders}"


def test_no_import_cycles():
    graph = _graph()
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_walk_sees_imports():
    """The walker itself: a known edge (train -> sweep.table, inside a function) is found."""
    graph = _graph()
    assert "regmix.sweep.table" in graph["regmix.train"]
    assert "regmix.cli.hydra_app" in graph["regmix.cli.train"]


def test_no_test_support_ships():
    """Fakes and known-answer data live under tests/, never in the packages."""
    names = _modules()
    assert not [n for n in names if "testing" in n.split(".") or "fakes" in n.split(".") or n.endswith("synthetic_runs")]
    for name, path in names.items():
        text = path.read_text()
        assert "from tests" not in text and "import tests" not in text, f"{name} imports test code"


def test_every_package_is_listed_in_pyproject():
    if tomllib is None:
        return
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for root in ROOTS
        for p in (REPO / root).rglob("__init__.py")
    }
    assert on_disk | {"regmix.conf"} == listed


#: The longest a function of the fit's stage modules may be, in lines (issue 18: the fit reads
#: as its stages; a longer function is a stage that wants splitting).
FIT_FUNCTION_LINES = 60


def test_fit_functions_are_short():
    long = {}
    for path in sorted((REPO / "analysis").glob("fit*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > FIT_FUNCTION_LINES:
                    long[f"{path.name}::{node.name}"] = lines
    assert long == {}, f"functions over {FIT_FUNCTION_LINES} lines: {long}"


def test_only_the_demo_and_the_commands_import_analysis():
    """regmix (the trainer) stays usable without the analysis side: only `regmix.demo` (which runs
    a fit) and the command-line modules may import `analysis`."""
    offenders = {
        name: sorted(m for m in deps if m.split(".")[0] == "analysis")
        for name, deps in _graph().items()
        if name.split(".")[0] == "regmix"
        and not (name == "regmix.demo" or name.startswith("regmix.demo.") or _is_cli(name))
        and any(m.split(".")[0] == "analysis" for m in deps)
    }
    assert offenders == {}, f"regmix modules importing analysis: {offenders}"
