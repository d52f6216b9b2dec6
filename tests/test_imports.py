"""The stages depend on each other one way only: no cycle between stages, `core` imports none of them, and
no stage imports the shells (cli, app). The imports are read statically, those inside functions included:
a lazy import is a dependency all the same. Every stage and shell is a module of the one `ragtune` package
(ragtune.rag is rag/), and is imported by that name."""

import ast
import tomllib
from collections import defaultdict

from helpers import ROOT

STAGES = ("core", "loaders", "rag", "engine", "evals", "synth", "train")
SHELLS = ("cli", "app", "pipeline")  # the shells and the demo pipeline above every stage
PACKAGE = "ragtune"  # the checkout's top folder (pyproject.toml's package-dir)


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[str, int]]:
    """(module imported, line) for every import in `source`, the module `module`; relative ones resolved.
    `from a import b` gives a.b: b may be a module (`from ragtune import engine`)."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""  # level 1: the package itself
            mod = ".".join(filter(None, [base, node.module]))
            out += [(f"{mod}.{a.name}".lstrip(".") if a.name != "*" else mod, node.lineno) for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
        ):
            out.append((node.args[0].value, node.lineno))
    return out


def _files() -> list:
    return [p for s in STAGES for p in sorted((ROOT / s).rglob("*.py"))] + [ROOT / f"{s}.py" for s in SHELLS]


def _imports_in(path) -> list[tuple[str, int]]:
    rel = path.relative_to(ROOT)
    parts = (PACKAGE, *rel.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    module = ".".join(parts[:-1] if is_package else parts)
    return imports(path.read_text(encoding="utf-8"), module, is_package)


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing stage or shell, imported stage or shell) -> the lines that make the edge."""
    edges = defaultdict(list)
    for path in _files():
        rel = path.relative_to(ROOT)
        for name, line in _imports_in(path):
            src, (top, dst) = rel.with_suffix("").parts[0], (name.split(".") + [""])[:2]
            if top == PACKAGE and dst != src and dst in (*STAGES, *SHELLS):
                edges[(src, dst)].append(f"{rel}:{line} imports {name}")
    return edges


def _report(edges, pairs) -> str:
    return "\n".join(f"  {a} -> {b}:\n" + "\n".join(f"    {line}" for line in edges[(a, b)]) for a, b in sorted(pairs))


def test_every_package_is_a_stage_checked_here():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"] == {PACKAGE: "."}, "the checkout's top folder is the ragtune package"
    assert sorted(setup["packages"]) == sorted([PACKAGE, *(f"{PACKAGE}.{s}" for s in STAGES)]), (
        "a package is missing from STAGES: its imports go unchecked"
    )
    shells = sorted(p.stem for p in ROOT.glob("*.py") if p.name != "__init__.py")
    assert shells == sorted(SHELLS), "a module at the top is missing from SHELLS: its imports go unchecked"


def test_every_import_names_the_ragtune_package():
    """A bare `core.config` import finds nothing once installed; a lazy one would fail only when its line runs."""
    files = _files() + sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
    bare = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in files
        for name, line in _imports_in(p)
        if name.split(".")[0] in (*STAGES, *SHELLS)
    ]
    assert not bare, f"import these as {PACKAGE}.<name> (ragtune.core.config, not core.config):\n  " + "\n  ".join(bare)


def test_the_reader_sees_lazy_relative_and_dynamic_imports():
    source = "import a.b\nfrom . import c\ndef f():\n    from ..d import e\n    importlib.import_module('g.h')\n"
    assert sorted(imports(source, "pkg.sub.mod")) == [("a.b", 1), ("g.h", 5), ("pkg.d.e", 4), ("pkg.sub.c", 2)]
    assert imports("from .x import y", "pkg", is_package=True) == [("pkg.x.y", 1)]
    assert imports("from ragtune import engine as E, app", "ragtune.rag.index") == [("ragtune.engine", 1), ("ragtune.app", 1)]


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
    assert not cyclic, "stages that depend on each other, directly or through others; move what both need down to core:\n" + _report(
        edges, cyclic
    )
