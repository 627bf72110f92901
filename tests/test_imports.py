"""The package's structure: every module imports, no two modules import each other (directly
or round a loop, counting imports inside functions too), only ``srgan_cli.cli`` prints, and
every module says what it is for. Style limits (complexity, statements, positional
parameters) and the layers' import contracts are tests/test_style.py's."""

import ast
import importlib
from pathlib import Path

import pytest

import srgan_cli

ROOT = Path(srgan_cli.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = f
    return found


MODULES = _modules()


def _imports(name: str, tree: ast.AST) -> set[str]:
    """The package's modules ``name`` imports anywhere in its text (``from a import b``
    counts as importing a.b when that is a module, else a)."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    typing_only = {id(n) for block in ast.walk(tree)  # `if TYPE_CHECKING:` never runs
                   if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop through each strongly connected group of more than one module."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_loop_of_three():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_round_a_loop():
    graph = {m: _imports(m, ast.parse(f.read_text(encoding="utf-8")))
             for m, f in MODULES.items()}
    assert graph["srgan_cli.cli"] >= {"srgan_cli.cli.upscale", "srgan_cli.cli.models"}
    assert _cycles(graph) == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"srgan_cli.__main__"}))  # that one runs
def test_every_module_imports(name):
    importlib.import_module(name)


def _prints(tree: ast.AST) -> list[str]:
    """What in a module writes to the terminal: print(), click.echo/secho, rich consoles."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "print":
                found.append(f"print() on line {node.lineno}")
            elif (isinstance(f, ast.Attribute) and f.attr in ("echo", "secho")
                  and isinstance(f.value, ast.Name) and f.value.id == "click"):
                found.append(f"click.{f.attr}() on line {node.lineno}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("rich", "srgan_cli.cli")):
            found.append(f"import from {node.module} on line {node.lineno}")
    return found


def test_only_the_command_line_prints():
    assert _prints(ast.parse("print(1)\nclick.echo(2)\nfrom rich.console import Console"))
    command_line = {"srgan_cli.__main__", "srgan_cli.cli"}
    library = {m: f for m, f in MODULES.items()
               if m not in command_line and not m.startswith("srgan_cli.cli.")}
    assert "srgan_cli.batch.plan" in library and "srgan_cli.bench.run" in library
    printing = {m: p for m, f in library.items()
                if (p := _prints(ast.parse(f.read_text(encoding="utf-8"))))}
    assert printing == {}


def test_every_module_says_what_it_is_for():
    bare = [m for m, f in MODULES.items()
            if not ast.get_docstring(ast.parse(f.read_text(encoding="utf-8")))]
    assert bare == []
