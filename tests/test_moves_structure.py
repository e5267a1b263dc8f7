"""The batch-apply/purge flow lives in `rush.moves` and imports in no circle.

Why: `batch`, `recovery` and `purge` used to import one another inside function bodies
and `recovery` reached into private names of `batch`; such a knot breaks on the first
import-order change and hides which module owns what.  These checks read the source
(`ast`), so they hold for every import, not only those a test happens to execute.
"""

from __future__ import annotations

import ast

from tests.support.imports import PACKAGES, ROOT, cycles, import_graph, project_modules

MOVES = ROOT / "rush" / "moves"


def test_no_moves_module_is_in_an_import_cycle() -> None:
    assert MOVES.is_dir()
    knots = [c for c in cycles(import_graph()) if any(m.startswith("rush.moves") for m in c)]
    assert knots == []


def test_the_old_flow_modules_are_gone() -> None:
    old = [
        "batch",
        "recovery",
        "purge",
        "journal",
        "naming",
        "batch_plan",
        "batch_commands",
        "xmp_apply",
    ]
    assert [m for m in old if (ROOT / "rush" / f"{m}.py").exists()] == []


def test_moves_imports_project_modules_only_at_top_level_unless_said_why() -> None:
    lazy: list[str] = []
    for path in sorted(MOVES.glob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    mod = inner.module if isinstance(inner, ast.ImportFrom) else inner.names[0].name
                    if mod and mod.split(".")[0] in PACKAGES:
                        above = lines[inner.lineno - 2].strip() if inner.lineno > 1 else ""
                        if not above.startswith("#"):
                            lazy.append(f"{path.name}:{inner.lineno} {mod}")
    assert lazy == []


def test_no_private_name_is_imported_across_modules() -> None:
    private: list[str] = []
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rush.moves"):
                private.extend(f"{name}: {a.name}" for a in node.names if a.name.startswith("_"))
    assert private == []


def test_every_moves_module_is_under_600_lines() -> None:
    long = {p.name: n for p in MOVES.glob("*.py") if (n := len(p.read_text().splitlines())) >= 600}
    assert long == {}


def test_apply_and_purge_share_one_exclusive_run() -> None:
    from rush.moves import run

    src = (MOVES / "run.py").read_text()
    assert hasattr(run, "exclusive_run")
    for module in ("apply.py", "purge.py", "run.py"):
        body = (MOVES / module).read_text()
        if module != "run.py":
            assert "acquire_lock" not in body and "Batch.create" not in body
    assert src.count("Batch.create") == 1
