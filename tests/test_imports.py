"""The stages depend on each other one way only: no cycle between stages, `core` imports none of them, and
no stage imports the shells (cli, app). The imports are read statically, those inside functions included:
a lazy import is a dependency all the same."""

import ast
import tomllib
from collections import defaultdict

from helpers import ROOT

STAGES = ("core", "loaders", "rag", "engine", "evals", "synth", "train")
SHELLS = ("cli", "app", "pipeline")  # the shells and the demo pipeline above every stage


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[str, int]]:
    """(module imported, line) for every import in `source`, the module `module`; relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""  # level 1: the package itself
            out.append((".".join(filter(None, [base, node.module])), node.lineno))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            out.append((node.args[0].value, node.lineno))
    return out


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing stage or shell, imported stage or shell) -> the lines that make the edge."""
    files = [p for s in STAGES for p in sorted((ROOT / s).rglob("*.py"))] + [ROOT / f"{s}.py" for s in SHELLS]
    edges = defaultdict(list)
    for path in files:
        rel = path.relative_to(ROOT)
        parts = rel.with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        for name, line in imports(path.read_text(encoding="utf-8"), module, is_package):
            src, dst = parts[0], name.split(".")[0]
            if dst != src and dst in (*STAGES, *SHELLS):
                edges[(src, dst)].append(f"{rel}:{line} imports {name}")
    return edges


def _report(edges, pairs) -> str:
    return "\n".join(f"  {a} -> {b}:\n" + "\n".join(f"    {line}" for line in edges[(a, b)]) for a, b in sorted(pairs))


def test_every_package_is_a_stage_checked_here():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setup["packages"]) == sorted(STAGES), "a package is missing from STAGES: its imports go unchecked"
    assert sorted(setup["py-modules"]) == sorted(SHELLS)


def test_the_reader_sees_lazy_relative_and_dynamic_imports():
    source = "import a.b\nfrom . import c\ndef f():\n    from ..d import e\n    importlib.import_module('g.h')\n"
    assert sorted(imports(source, "pkg.sub.mod")) == [("a.b", 1), ("g.h", 5), ("pkg.d", 4), ("pkg.sub", 2)]
    assert imports("from .x import y", "pkg", is_package=True) == [("pkg.x", 1)]


def test_core_imports_no_stage():
    edges = _edges()
    bad = [(a, b) for a, b in edges if a == "core"]
    assert not bad, "core is below every stage and must import none of them:\n" + _report(edges, bad)


def test_no_stage_imports_a_shell():
    edges = _edges()
    bad = [(a, b) for a, b in edges if a in STAGES and b in SHELLS]
    assert not bad, "cli.py and app.py call the stages, never the other way round:\n" + _report(edges, bad)


def test_no_two_stages_depend_on_each_other():
    edges = _edges()
    after = defaultdict(set)  # stage -> the stages it imports
    for a, b in edges:
        if a in STAGES and b in STAGES:
            after[a].add(b)

    def reaches(a: str) -> set[str]:
        seen, todo = set(), [a]
        while todo:
            for b in after[todo.pop()] - seen:
                seen.add(b)
                todo.append(b)
        return seen

    # An edge is on a cycle when its target leads back to its source.
    cyclic = [(a, b) for a in STAGES for b in sorted(after[a]) if a in reaches(b)]
    assert not cyclic, ("stages that depend on each other, directly or through others; move what both need "
                        "down to core:\n" + _report(edges, cyclic))
