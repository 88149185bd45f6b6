"""The ``proc`` schema of dax (VUIIS's pipeline framework): its processing assessors.

dax keeps every pipeline run as an assessor of type ``proc:genProcData`` on an image session (a
subject-level run: ``proc:subjGenProcData``), the job's state in its fields. XNAT sites that run dax
install the schema as a plugin; without it dax refuses to upload (``has_dax_datatypes``) and its
project listings skip every run, so xnatd ships the types. Fields are those of dax's plugin schema
(``dax/xnat_datatypes``) and the ``dax_*`` ones dax 2 writes at upload and asks for in its listings;
the QC status and the creation date dax sets are fields every experiment has (``validation/status``,
``date``).
"""

from __future__ import annotations

from xnatd.domain.types.model import DATE, INTEGER, DataType, Field, a, f

# dax's job record on both kinds of run; ``inputs`` is the JSON of the run's inputs (URIs by name).
_JOB_FIELDS: tuple[Field, ...] = (
    f("procstatus", doc="dax's job status: NEED_INPUTS, NEED_TO_RUN, JOB_RUNNING, ... COMPLETE."),
    f("proctype"),
    f("procversion"),
    f("jobid"),
    f("walltimeused"),
    f("memusedmb", INTEGER),
    f("jobstartdate", DATE),
    f("memused"),
    f("jobnode"),
    f("inputs"),
    f("dax_version"),
    f("dax_version_hash"),
    f("dax_docker_version"),
)

TYPES: list[DataType] = [
    DataType(
        "proc:genProcData",
        "xnat:imageAssessorData",
        "proc:Processing",
        _JOB_FIELDS,
        plural="Processing",
        doc="A dax pipeline run on an image session: its job's state, inputs and outputs.",
    ),
    DataType(
        "proc:subjGenProcData",
        "xnat:subjectAssessorData",
        "proc:SubjGenProcData",
        (*_JOB_FIELDS, a("type")),
        plural="Longitudinal Processing",
        doc="A dax pipeline run on a subject (across its sessions).",
    ),
]
