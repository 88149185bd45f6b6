"""Use cases: the only writers of database rows and archive files. Each authorizes, validates and
runs in one transaction; adapters (HTTP, DICOM, CLI) call these and nothing below them.

Seven packages named after what users do, each importing only those below it (import-linter's
layers contract in pyproject.toml)::

    operations -> ingest -> prearchive -> jobs | search -> archive -> access

Each package's ``__init__.py`` lists its face in ``__all__``: the modules other packages and the
adapters may import. Its other modules are private to it (the "faces" contract,
``tests/support/faces_contract.py``).
"""
