"""DICOM in: the one ingest path every door feeds (REST imports, ``xnatd import``, the DICOM
receiver), the import service and its options, gradual uploads, zip unpacking in helper processes,
the receiver's intake, spool and AE titles, and the idle rebuilder that builds what was received."""

__all__ = [
    "dicom_receivers",
    "dicom_spool",
    "helper_pool",
    "import_options",
    "importer",
    "rebuilder",
    "receiving",
    "upload_status",
]
