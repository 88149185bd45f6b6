"""The prearchive and the way out of it: sessions waiting to be archived, their listing and
status, moving and deleting them, the archiver that files a session into the archive, Direct-Archive,
and the options XNAT's archive service reads."""

__all__ = [
    "archive_options",
    "archiver",
    "dicom_dump",
    "direct_archive",
    "prearchive",
    "prearchive_status",
]
