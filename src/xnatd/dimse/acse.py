"""Association negotiation (PS3.8 7.1, PS3.7 Annex D) with pynetdicom's PDU and context code.

The A-ASSOCIATE-RQ is decoded, and the A-ASSOCIATE-AC encoded, by pynetdicom; presentation contexts
are negotiated by its ``negotiate_unrestricted``: every storage SOP class (standard, retired or
private) is accepted in the first transfer syntax the sender proposes, so an object is stored in the
encoding it was sent in. Verification is accepted too. Who may associate is decided here: the called
AE title must name an enabled receiver on this port, the calling AE title must be on its whitelist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.uid import UID
from pynetdicom._globals import ALL_TRANSFER_SYNTAXES, APPLICATION_CONTEXT_NAME
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import (
    AllStoragePresentationContexts,
    PresentationContext,
    build_context,
    negotiate_unrestricted,
)
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from xnatd.dimse import part10
from xnatd.dimse.upper_layer import reject
from xnatd.services.ingest.dicom_receivers import Receiver

log = logging.getLogger("xnatd.dicom")
# pynetdicom logs a traceback of its own before raising on an AE title that is not ASCII; the
# rejection is logged here in one line instead, so a peer probing the port cannot fill the log.
logging.getLogger("pynetdicom.utils").setLevel(logging.CRITICAL)
MAX_PDU = 1024 * 1024  # what we announce; senders' PDUs up to this size mean fewer reads per object
_SUPPORTED = [build_context(Verification, ALL_TRANSFER_SYNTAXES)] + [
    build_context(str(cx.abstract_syntax), ALL_TRANSFER_SYNTAXES) for cx in AllStoragePresentationContexts
]
# A-ASSOCIATE-RJ (result, source, reason): PS3.8 Table 9-21
CALLING_AE_NOT_RECOGNIZED = (1, 1, 3)
CALLED_AE_NOT_RECOGNIZED = (1, 1, 7)
NO_REASON = (1, 1, 1)


@dataclass(frozen=True)
class Accepted:
    """A negotiated association: what to answer, and what each accepted context carries."""

    answer: bytes
    receiver: Receiver
    calling_ae: str
    called_ae: str
    contexts: dict[int, tuple[str, str]]  # context ID -> (abstract syntax, transfer syntax)


@dataclass(frozen=True)
class Rejected:
    answer: bytes
    reason: str


def negotiate(pdu: bytes, peer_host: str, lookup: Callable[[str], Receiver | None]) -> Accepted | Rejected:
    """Answer an A-ASSOCIATE-RQ (the whole PDU); ``lookup`` finds the receiver a called AE names."""
    rq = A_ASSOCIATE_RQ()
    try:  # pynetdicom refuses AE titles and UIDs that are not ASCII with a ValueError
        rq.decode(pdu)
        primitive = rq.to_primitive()
        calling, called = str(primitive.calling_ae_title).strip(), str(primitive.called_ae_title).strip()
    except (ValueError, UnicodeError) as exc:
        return Rejected(reject(*NO_REASON), f"malformed A-ASSOCIATE-RQ: {exc}")
    receiver = lookup(called)
    if receiver is None:
        return Rejected(reject(*CALLED_AE_NOT_RECOGNIZED), f"no receiver {called!r} on this port")
    if not receiver.allows(calling, peer_host):
        return Rejected(reject(*CALLING_AE_NOT_RECOGNIZED), f"calling AE {calling!r} is not on the whitelist")
    if primitive.application_context_name != APPLICATION_CONTEXT_NAME:
        return Rejected(reject(*NO_REASON), f"application context {primitive.application_context_name}")
    roles = {
        UID(str(item.sop_class_uid)): (item.scu_role, item.scp_role)
        for item in primitive.user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }
    results, role_items = negotiate_unrestricted(
        primitive.presentation_context_definition_list, _SUPPORTED, roles
    )
    return Accepted(
        answer=_accept(primitive, results, role_items),
        receiver=receiver,
        calling_ae=calling,
        called_ae=called,
        contexts={
            int(cx.context_id): (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
            for cx in results
            if cx.result == 0 and cx.context_id is not None
        },
    )


def _accept(
    rq: A_ASSOCIATE, results: list[PresentationContext], roles: list[SCP_SCU_RoleSelectionNegotiation]
) -> bytes:
    ac = A_ASSOCIATE()
    ac.application_context_name = UID(APPLICATION_CONTEXT_NAME)
    ac.calling_ae_title = rq.calling_ae_title
    ac.called_ae_title = rq.called_ae_title
    ac.result = 0x00
    ac.result_source = 0x01
    ac.presentation_context_definition_results_list = results
    length = MaximumLengthNotification()
    length.maximum_length_received = MAX_PDU
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = UID(part10.IMPLEMENTATION_UID)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = part10.IMPLEMENTATION_VERSION
    ac.user_information = [length, impl, version, *roles]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    return bytes(pdu.encode())
