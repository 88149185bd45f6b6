"""xnatd: an imaging research archive that speaks the XNAT REST API."""

__version__ = "0.1.0"
