"""The whole project imports in no circle.

Why: a knot of modules that import one another (held together by imports inside
functions) breaks on the first change of import order and hides which module owns what.
The graph counts every import, function bodies included (tests/support/imports.py).
"""

from __future__ import annotations

from tests.support.imports import cycles, import_graph


def test_no_import_cycle_between_project_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_check_sees_a_cycle_hidden_in_a_function_body() -> None:
    """Guards the check above: an import inside a function still closes a circle."""
    graph = import_graph()
    graph["rush.lifecycle"] = {*graph["rush.lifecycle"], "rush.actions"}
    assert any("rush.lifecycle" in knot for knot in cycles(graph))
