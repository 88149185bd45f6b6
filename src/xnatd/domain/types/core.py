"""XNAT's core non-imaging types (``xnat.xsd``): projects, subjects, experiments, the objects they
nest (investigators, protocols, custom-variable definitions, resources, sharing) and BIRN's
provenance (``prov``), which derived data and reconstructions carry.

Facts from XNAT's schema, written as registry entries; ``xnatd.domain.xsd`` renders the XSD from them.
"""

from __future__ import annotations

from xnatd.domain.types.model import (
    BOOLEAN,
    DATE,
    DATETIME,
    FLOAT,
    INTEGER,
    LONG,
    TIME,
    DataType,
    Field,
    Ref,
    a,
    f,
    t,
)

GENDERS = ("male", "female", "other", "unknown", "M", "F")
HANDEDNESS = ("right", "left", "ambidextrous", "unknown")
RESOURCES = Ref("resources", "xnat:abstractResource", "resource", doc="Folders of files.")
INVESTIGATOR_FIELDS = ("title", "firstname", "lastname", "institution", "department", "email", "phone")

# Custom variables (XNAT's ``fields/field[name=X]``): the wrapper element and the item's two fields,
# its ``name`` attribute and its value, which is the ``field`` element's own text.
CUSTOM_FIELDS = "fields"
CUSTOM_NAME = Field("name", attr=True, doc="Name of the custom variable.")
CUSTOM_VALUE = Field("field", text=True, doc="Value of the custom variable.")
PROVENANCE = Ref(
    "provenance", "prov:process", doc="Processing steps that produced the data (BIRN provenance)."
)


def custom_fields(owner: str) -> Ref:
    """The custom variables of ``owner``: free name/value pairs under ``fields/field``.

    XNAT declares the item element inline, so its type is named after the owner
    (``xnat:subjectData_field``); the item types themselves are generated from these refs.
    """
    return Ref(
        CUSTOM_FIELDS,
        f"{owner}_field",
        "field",
        doc="Custom variables: free name/value pairs, set as fields/field[name=X]/field.",
        key=CUSTOM_NAME.name,
        value=CUSTOM_VALUE.name,
    )


def add_params(owner: str = "") -> Ref:
    """Free scan, reconstruction and assessor parameters: ``parameters/addParam[name=X]/addField``
    (pyxnat's ``set_param``), of XNAT's named type ``xnat:addField``."""
    return Ref("parameters/addParam", "xnat:addField", repeated=True, key="name", value="addField")


SHARE_DOC = "Projects this experiment is shared into."

TYPES: list[DataType] = [
    DataType(
        "xnat:projectData",
        None,
        "xnat:Project",
        (
            f("ID", attr=True),
            f("secondary_ID", attr=True),
            a("active", BOOLEAN),
            f("name"),
            f("type"),
            f("description"),
            f("keywords"),
            f("alias", schema=False, doc="Aliases to add, comma-separated (XNAT's alias= parameter)."),
        ),
        refs=(
            Ref("aliases", "xnat:projectData_alias", "alias"),
            Ref("publications", "xnat:publicationResource", "publication"),
            RESOURCES,
            Ref(
                "studyProtocol",
                "xnat:abstractProtocol",
                repeated=True,
                doc="The project's data types and their custom variable definitions.",
            ),
            Ref("PI", "xnat:investigatorData", inline=True, doc="The principal investigator."),
            Ref("investigators", "xnat:investigatorData", "investigator"),
            custom_fields("xnat:projectData"),
        ),
        plural="Projects",
        doc="A collection of subjects involved in a unit of research.",
    ),
    DataType(
        "xnat:investigatorData",
        None,
        "xnat:Investigator",
        (a("ID"), *(f(name) for name in INVESTIGATOR_FIELDS)),
        display_id="lastname",
        doc="An individual who maintains authority over experimental data.",
    ),
    DataType("xnat:abstractSubjectMetadata", None, None, (), abstract=True),
    DataType("xnat:subjectMetadata", "xnat:abstractSubjectMetadata", None, (f("cohort"),)),
    DataType("xnat:abstractDemographicData", None, None, (), abstract=True),
    DataType(
        "xnat:demographicData",
        "xnat:abstractDemographicData",
        "xnat:demographicData",
        (
            f("dob", DATE),
            f("yob", INTEGER),
            f("age", INTEGER),
            f("gender", enum=GENDERS),
            f("handedness", enum=HANDEDNESS),
            f("ses", INTEGER),
            f("employment", INTEGER),
            f("education", INTEGER),
            f("educationDesc"),
            f("race"),
            *(f(f"race{i}") for i in range(2, 7)),
            f("ethnicity"),
            f("weight", FLOAT),
            f("weight/units", attr=True),
            f("height", FLOAT),
            f("height/units", attr=True),
            f("gestational_age", FLOAT),
            f("post_menstrual_age", FLOAT),
            f("birth_weight", FLOAT),
        ),
        doc="Subject demographics.",
    ),
    DataType(
        "xnat:subjectData",
        None,
        "xnat:Subject",
        (
            f("ID", attr=True),
            f("project", attr=True),
            f("label", attr=True),
            f("group", attr=True),
            f("src", attr=True),
            f("initials", attr=True),
        ),
        children=("demographics",),
        refs=(
            Ref("sharing", "xnat:projectParticipant", "share", doc="Projects this subject is shared into."),
            RESOURCES,
            Ref("investigator", "xnat:investigatorData", inline=True),
            Ref("demographics", "xnat:abstractDemographicData"),
            Ref("metadata", "xnat:abstractSubjectMetadata"),
            custom_fields("xnat:subjectData"),
            Ref("experiments", "xnat:subjectAssessorData", "experiment"),
        ),
        display_id="label",
        plural="Subjects",
        doc="An individual person involved in experimental research.",
    ),
    DataType(
        "xnat:projectParticipant",
        None,
        None,
        (
            f("label", attr=True),
            f("project", attr=True),
            f("subject_ID", attr=True),
            f("group", attr=True),
        ),
        display_id="project",
        doc="A subject's label in a project it is shared into (``sharing/share``).",
    ),
    DataType(
        "xnat:experimentData",
        None,
        None,
        (
            f("ID", attr=True),
            f("project", attr=True),
            f("label", attr=True),
            f("visit_id", attr=True),
            f("visit", attr=True),
            f("version", attr=True),
            f("original", attr=True),
            f("protocol", attr=True),
            f("date", DATE),
            f("time", TIME),
            f("duration"),
            f("delay", INTEGER),
            f("delay/ref_expt_id", attr=True),
            f("note"),
            f("acquisition_site"),
        ),
        abstract=True,
        refs=(
            Ref("sharing", "xnat:experimentData_share", "share", doc=SHARE_DOC),
            Ref("investigator", "xnat:investigatorData", inline=True),
            Ref("validation", "xnat:validationData", inline=True),
            RESOURCES,
            custom_fields("xnat:experimentData"),
        ),
        display_id="label",
        doc="A specific individual event in which primary data is obtained.",
    ),
    DataType(
        "xnat:experimentData_share",
        None,
        None,
        (
            f("label", attr=True),
            f("project", attr=True),
            f("visit", attr=True),
            f("protocol", attr=True),
        ),
        display_id="project",
        doc="An experiment's label in a project it is shared into (``sharing/share``).",
    ),
    DataType(
        "xnat:validationData",
        None,
        None,
        (a("status"), f("method"), f("date", DATE), f("notes"), f("validated_by")),
        display_id="status",
    ),
    DataType("xnat:genericData", "xnat:experimentData", "xnat:Generic", ()),
    DataType(
        "xnat:pVisitData",
        "xnat:genericData",
        "xnat:PVisit",
        (
            f("subject_ID"),
            f("visit_type"),
            f("visit_name"),
            f("notes"),
            f("start_date", DATETIME),
            f("end_date", DATETIME),
            a("closed", BOOLEAN),
            a("terminal", BOOLEAN),
            a("status"),
            a("protocolVersion", INTEGER),
            a("protocolId"),
        ),
        plural="Visits",
    ),
    DataType(
        "xnat:abstractProjectAsset",
        "xnat:genericData",
        None,
        (),
        abstract=True,
        refs=(
            Ref("subjects", "xnat:subjectData", "subject"),
            Ref("experiments", "xnat:experimentData", "experiment"),
        ),
    ),
    DataType(
        "xnat:subjectAssessorData",
        "xnat:experimentData",
        None,
        (f("subject_ID"), f("age", FLOAT)),
        abstract=True,
    ),
    DataType(
        "xnat:subjectVariablesData",
        "xnat:subjectAssessorData",
        "xnat:SubjectVariables",
        (),
        refs=(
            Ref("variables", "xnat:subjectVariablesData_variable", "variable", key="name", value="variable"),
        ),
        plural="Subject Variables",
    ),
    DataType(
        "xnat:derivedData",
        "xnat:experimentData",
        None,
        (),
        abstract=True,
        refs=(PROVENANCE,),
        doc="A processing event in which data is analyzed.",
    ),
    # Project protocols: which data types a project uses and their custom variable definitions.
    DataType(
        "xnat:abstractProtocol",
        None,
        None,
        (a("ID"), a("name"), a("description"), a("data-type")),
        display_id="ID",
    ),
    DataType(
        "xnat:datatypeProtocol",
        "xnat:abstractProtocol",
        None,
        (),
        refs=(Ref("definitions", "xnat:fieldDefinitionGroup", "definition"),),
    ),
    DataType(
        "xnat:studyProtocol",
        "xnat:abstractProtocol",
        None,
        (),
        refs=tuple(
            Ref(wrapper, "xnat:studyProtocol_condition", item)
            for wrapper, item in (
                ("acqConditions", "condition"),
                ("subjectGroups", "group"),
                ("subjectVariables", "variable"),
                ("imageSessionTypes", "session"),
            )
        ),
    ),
    DataType(
        "xnat:studyProtocol_condition",
        None,
        None,
        (a("ID"), a("name"), a("description")),
        doc="One acquisition condition, subject group, variable or session type of a study protocol.",
    ),
    DataType(
        "xnat:fieldDefinitionGroup",
        None,
        "xnat:FieldDefinitionGroup",
        (
            a("ID"),
            a("data-type"),
            a("description"),
            a("shareable", BOOLEAN),
            a("project-specific", BOOLEAN),
        ),
        refs=(Ref("fields", "xnat:fieldDefinitionGroup_field", "field"),),
        doc="A set of custom variable definitions for one data type.",
    ),
    DataType(
        "xnat:fieldDefinitionGroup_field",
        None,
        None,
        (
            a("name"),
            a("type", enum=("standard", "custom")),
            a("datatype", enum=("integer", "float", "boolean", "string", "date")),
            a("required", BOOLEAN),
            a("sequence", INTEGER),
            a("xmlPath"),
            a("group"),
        ),
        refs=(Ref("possibleValues", "xnat:fieldDefinitionGroup_field_possibleValue", "possibleValue"),),
        display_id="name",
        doc="One custom variable definition.",
    ),
    DataType(
        "xnat:fieldDefinitionGroup_field_possibleValue",
        None,
        None,
        (t("possibleValue"), a("display")),
    ),
    # Values with a name: scan, reconstruction and assessor parameters; aliases; resource tags.
    DataType("xnat:addField", None, None, (t("addField"), a("name")), display_id="name"),
    DataType("xnat:projectData_alias", None, None, (t("alias"), a("source")), display_id="alias"),
    DataType("xnat:subjectVariablesData_variable", None, None, (t("variable"), a("name")), display_id="name"),
    DataType(
        "xnat:abstractResource",
        None,
        None,
        (
            f("label", attr=True),
            f("file_count", INTEGER, attr=True),
            f("file_size", LONG, attr=True),
            f("note"),
            f("tags/tag"),
        ),
        abstract=True,
        display_id="label",
    ),
    DataType(
        "xnat:resource",
        "xnat:abstractResource",
        None,
        (a("URI"), a("format"), a("description"), a("content"), a("cachePath")),
        refs=(PROVENANCE,),
        doc="A file.",
    ),
    DataType(
        "xnat:resourceCatalog",
        "xnat:resource",
        "xnat:ResourceCatalog",
        (),
        doc="A folder of files (XNAT's catalog resource).",
    ),
    DataType(
        "xnat:imageResource",
        "xnat:resource",
        None,
        (
            *(a(f"dimensions/{d}", INTEGER) for d in ("x", "y", "z", "volumes")),
            *(a(f"voxelRes/{d}", FLOAT) for d in ("x", "y", "z")),
            a("voxelRes/units"),
            f("orientation"),
        ),
    ),
    DataType(
        "xnat:resourceSeries",
        "xnat:abstractResource",
        None,
        (
            a("path"),
            a("pattern"),
            a("count", INTEGER),
            a("name"),
            a("format"),
            a("description"),
            a("content"),
            a("cachePath"),
        ),
    ),
    DataType(
        "xnat:imageResourceSeries",
        "xnat:resourceSeries",
        None,
        (
            *(a(f"dimensions/{d}", INTEGER) for d in ("x", "y", "z", "volumes")),
            *(a(f"voxelRes/{d}", FLOAT) for d in ("x", "y", "z")),
            a("voxelRes/units"),
            f("orientation"),
        ),
    ),
    DataType(
        "xnat:dicomSeries",
        "xnat:abstractResource",
        None,
        (
            *(a(f"dimensions/{d}", INTEGER) for d in ("x", "y", "z", "volumes")),
            *(a(f"voxelRes/{d}", FLOAT) for d in ("x", "y", "z")),
            a("voxelRes/units"),
            f("orientation"),
            a("format"),
            a("description"),
            a("content"),
            a("cachePath"),
            a("UID"),
        ),
        refs=(Ref("imageSet", "xnat:dicomSeries_image", "image"),),
    ),
    DataType(
        "xnat:dicomSeries_image",
        None,
        None,
        (a("URI"), a("sop_instance_UID"), a("instance_number", INTEGER)),
    ),
    DataType(
        "xnat:publicationResource",
        "xnat:abstractResource",
        None,
        (
            f("title"),
            f("citation"),
            f("abstract"),
            f("commentary"),
            a("isPrimary", BOOLEAN),
            a("doi"),
            a("pubmed"),
            a("medline"),
            a("uri"),
            a("other"),
            a("type"),
        ),
    ),
    # Item types of repeated values that item documents carry as ``children`` (``tags/tag``):
    # every xsi:type the server emits must be declared in the XSD for xnatpy.
    DataType("xnat:abstractResource_tag", None, None, (f("tag"),), doc="One tag of a resource."),
    # BIRN provenance (``prov`` namespace): the steps that produced derived data.
    DataType(
        "prov:process",
        None,
        None,
        (),
        refs=(Ref("processStep", "prov:processStep", repeated=True),),
    ),
    DataType(
        "prov:processStep",
        None,
        None,
        (
            f("program"),
            a("program/version"),
            a("program/arguments"),
            f("timestamp", DATETIME),
            f("cvs"),
            f("user"),
            f("machine"),
            f("platform"),
            a("platform/version"),
            f("compiler"),
            a("compiler/version"),
            f("library"),
            a("library/version"),
        ),
        doc="One processing step: program, when, by whom, where.",
    ),
]
