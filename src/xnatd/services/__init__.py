"""Use cases: the only writers of database rows and archive files. Each authorizes, validates and
runs in one transaction; adapters (HTTP, DICOM, CLI) call these and nothing below them."""
