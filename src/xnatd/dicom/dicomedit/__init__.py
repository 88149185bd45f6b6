"""XNAT's DicomEdit 6 anonymization language: `parse` a script once (a `ScriptError` with line and
column when it is wrong), `apply` it to each pydicom dataset (an `Outcome` with the changes made,
or `Rejected`). Pure: the dataset it is given is all it touches. See docs/anonymization.md."""

from xnatd.dicom.dicomedit.compiler import Script, parse, script_hash
from xnatd.dicom.dicomedit.defaults import XNAT_DEFAULT_SCRIPT
from xnatd.dicom.dicomedit.interpreter import Outcome, Rejected, apply
from xnatd.dicom.dicomedit.values import Change

__all__ = [
    "XNAT_DEFAULT_SCRIPT",
    "Change",
    "Outcome",
    "Rejected",
    "Script",
    "apply",
    "parse",
    "script_hash",
]
