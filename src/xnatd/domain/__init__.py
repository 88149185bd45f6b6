"""Pure rules of the archive: the type registry, labels, addresses. No I/O here."""
