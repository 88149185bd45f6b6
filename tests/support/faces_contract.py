"""An import-linter contract: code outside a package imports only its face.

A package's face is the names its ``__init__.py`` lists in ``__all__``. A module of the package that
is not listed there is private: only the package itself may import it. The face is written once,
in the package, and this contract reads it from there, so the rule and the code cannot drift apart.

Registered in pyproject.toml (``contract_types``) and run by ``make layers`` (``lint-imports``).
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass

import grimp
from importlinter import Contract, ContractCheck, fields, output


@dataclass(frozen=True)
class Breach:
    importer: str
    imported: str
    line: int


def face_of(package: str) -> set[str]:
    """The names in ``package/__init__.py``'s ``__all__``, read without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(f"{package} cannot be found")
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise ValueError(f"{package}/__init__.py has no __all__: its face is not written down")


def breaches(graph: grimp.ImportGraph, package: str) -> list[Breach]:
    face = face_of(package)
    found = []
    for module in sorted(graph.find_children(package)):
        if module.rsplit(".", 1)[1] in face:
            continue
        for importer in sorted(graph.find_modules_that_directly_import(module)):
            if importer == package or importer.startswith(package + "."):
                continue
            for detail in graph.get_import_details(importer=importer, imported=module):
                found.append(Breach(importer, module, detail["line_number"]))
    return found


class FacesContract(Contract):
    type_name = "faces"

    packages = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = [b for package in self.packages for b in breaches(graph, package.name)]  # type: ignore[attr-defined]
        return ContractCheck(kept=not found, metadata={"breaches": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for b in check.metadata["breaches"]:
            package, name = b.imported.rsplit(".", 1)
            output.print_error(
                f"{b.importer} (l.{b.line}) imports {b.imported}: {name} is private to {package} "
                f"(not in its __init__.py's __all__)",
                bold=False,
            )
        output.new_line()
