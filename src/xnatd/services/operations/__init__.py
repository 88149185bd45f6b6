"""Running a site: opening the data folder (bootstrap, recovery), verifying it against the
database, backups, and the site configuration."""

__all__ = [
    "backup",
    "bootstrap",
    "site_config",
    "verify",
]
