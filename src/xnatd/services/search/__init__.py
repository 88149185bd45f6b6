"""XNAT's search service and stored searches: a search bundle in, a table of what the caller
may see out."""

__all__ = [
    "search",
    "stored_searches",
]
