"""The archive: projects, subjects, experiments, scans, assessors, their resources and files;
addressing them with a permission check (``resolve``), XNAT's listings, sharing into other
projects, deletion, project settings and configuration (anonymization scripts among it), and
the user's cache space."""

__all__ = [
    "anonymization",
    "archive_summaries",
    "browse",
    "catalog_refresh",
    "config_service",
    "deletion",
    "files",
    "listing_service",
    "listings",
    "objects",
    "projects",
    "records",
    "resolve",
    "resources",
    "scan_types",
    "sharing",
    "user_cache",
    "workflows",
    "xml_upload",
]
