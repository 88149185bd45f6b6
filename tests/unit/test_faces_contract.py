"""The "faces" import-linter contract (tests/support/faces_contract.py) catches an adapter reaching
into a service package's private module, and passes the tree as it is."""

from __future__ import annotations

import grimp

from tests.support.faces_contract import breaches, face_of

PACKAGES = ["access", "archive", "prearchive", "jobs", "search", "ingest", "operations"]


def test_the_tree_imports_only_faces() -> None:
    graph = grimp.build_graph("xnatd")
    assert [b for p in PACKAGES for b in breaches(graph, f"xnatd.services.{p}")] == []


def test_an_import_of_a_private_module_is_a_breach() -> None:
    graph = grimp.build_graph("xnatd")
    assert "listing_joins" not in face_of("xnatd.services.archive")
    graph.add_import(
        importer="xnatd.api.archive",
        imported="xnatd.services.archive.listing_joins",
        line_number=7,
        line_contents="from xnatd.services.archive import listing_joins",
    )
    found = breaches(graph, "xnatd.services.archive")
    assert [(b.importer, b.imported, b.line) for b in found] == [
        ("xnatd.api.archive", "xnatd.services.archive.listing_joins", 7)
    ]


def test_a_package_may_import_its_own_private_modules() -> None:
    graph = grimp.build_graph("xnatd")
    importers = graph.find_modules_that_directly_import("xnatd.services.archive.listing_joins")
    assert importers and all(i.startswith("xnatd.services.archive.") for i in importers)
