"""The DICOM network adapter: C-ECHO and C-STORE SCP, receivers in their own processes.

Modules are named after the parts of the standard they implement: ``upper_layer`` (PS3.8 PDUs on a
TCP socket), ``acse`` (association negotiation, with pynetdicom's PDU and presentation-context code),
``dimse`` (PS3.7 command sets), ``part10`` (the PS3.10 file meta information of a stored object),
``storage_scp`` (PS3.4 Verification and Storage SCPs: one association), ``status`` (status codes, and
the one place domain errors become them) and ``server`` (listening sockets and receiver processes).
Handlers return DICOM status codes rather than raise, as pynetdicom's do. No SQL, no file I/O here:
received bytes go into a sink the service (``services/ingest/receiving.py``) hands out.
"""
