"""The rendered XSDs, read by xnatpy 0.8.1's own schema parser and class generator.

xnatpy builds its whole data model from ``/xapi/schemas`` at connect time, so these tests run the
client's real code path (``xnat.build_model``, as ``xnat.connect`` calls it) on a real
``XNATSession``. The session's ``requests`` transport is an in-process adapter that answers from the
domain functions (schemas, search elements) and from a few fixed item documents; it records every
request, so the XPaths the generated property setters send can be checked against clients.md.
Nothing of xnatpy is mocked.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import pytest
import requests
import xnat
from requests.adapters import BaseAdapter
from xnat.core import XNATListing, XNATSubListing
from xnat.search import DisplayFieldSearchField
from xnat.session import XNATSession

from xnatd.domain import search_elements, types, xsd
from xnatd.errors import NotFound

XS = "{http://www.w3.org/2001/XMLSchema}"
SERVER = "http://xnatd.test"

SUBJECT_URI = "/data/projects/P1/subjects/XNAT_S00001"
SUBJECT_FULLURI = SUBJECT_URI.replace("/data/", "/data/archive/", 1)
EXPERIMENT_URI = "/data/experiments/XNAT_E00001"
EXPERIMENT_TREE = "/data/projects/P1/subjects/XNAT_S00001/experiments/XNAT_E00001"
EXPERIMENT_FULLURI = EXPERIMENT_TREE.replace("/data/", "/data/archive/", 1)
# A listed object keeps the listing's URI (minus ``/archive``): the scan lives below the full path.
SCAN_URI = f"{EXPERIMENT_TREE}/scans/1"


def _item(
    xsi_type: str, data: dict[str, Any], children: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "children": children or [],
        "meta": {"xsi:type": xsi_type, "isHistory": False},
        "data_fields": data,
    }


# Item documents shaped as clients.md section 1.3 records them.
DOCUMENTS: dict[str, Any] = {
    SUBJECT_URI: {
        "items": [
            _item(
                "xnat:subjectData",
                {"ID": "XNAT_S00001", "project": "P1", "label": "SUBJ01"},
                [
                    {
                        "field": "demographics",
                        "items": [_item("xnat:demographicData", {"gender": "male", "age": 33})],
                    },
                    {
                        "field": "sharing/share",
                        "items": [_item("xnat:projectParticipant", {"project": "P2", "label": "S_IN_P2"})],
                    },
                    {
                        "field": "fields/field",
                        "items": [
                            _item("xnat:subjectData_field", {"name": "study_group", "field": "control"}),
                            _item("xnat:subjectData_field", {"name": "site", "field": "Leeds"}),
                        ],
                    },
                ],
            )
        ]
    },
    EXPERIMENT_URI: {
        "items": [
            _item(
                "xnat:mrSessionData",
                {
                    "ID": "XNAT_E00001",
                    "label": "EXP01",
                    "project": "P1",
                    "subject_ID": "XNAT_S00001",
                    "date": "2020-02-03",
                    "scanner/manufacturer": "ACME",
                    "fieldStrength": "3.0",
                },
            )
        ]
    },
    f"{EXPERIMENT_URI}/scans/1": {
        "items": [
            _item(
                "xnat:mrScanData",
                {"ID": "1", "type": "T1", "series_description": "t1_mprage", "parameters/tr": 2.3},
            )
        ]
    },
    f"{EXPERIMENT_URI}/scans": {
        "ResultSet": {
            "Result": [{"ID": "1", "type": "T1", "xsiType": "xnat:mrScanData", "URI": SCAN_URI}],
            "totalRecords": "1",
        }
    },
    f"{EXPERIMENT_URI}/resources": {
        "ResultSet": {
            "Result": [
                {
                    "xnat_abstractresource_id": "7",
                    "label": "DICOM",
                    "element_name": "xnat:resourceCatalog",
                    "format": "DICOM",
                    "file_count": "2",
                    "file_size": "10",
                }
            ],
            "totalRecords": "1",
        }
    },
}


@dataclass
class Sent:
    method: str
    path: str
    query: list[tuple[str, str]]
    raw_query: str


@dataclass
class InProcessTransport(BaseAdapter):
    """A ``requests`` transport that answers as xnatd would, without a socket."""

    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(str(request.url))
        method, path = str(request.method), parts.path
        self.sent.append(Sent(method, path, parse_qsl(parts.query, keep_blank_values=True), parts.query))
        status, body, content_type = self._answer(method, path)
        response = requests.Response()
        response.status_code = status
        response._content = body.encode("utf-8")
        response.headers["Content-Type"] = content_type
        response.encoding = "utf-8"
        response.url = str(request.url)
        response.request = request
        return response

    def _answer(self, method: str, path: str) -> tuple[int, str, str]:
        path = _canonical(path)
        if method in ("PUT", "DELETE"):
            return 200, "", "text/plain"
        if path == "/data/JSESSION":
            return 200, "0123456789ABCDEF", "text/plain"
        if path == "/xapi/siteConfig/buildInfo":
            return 200, json.dumps({"version": "1.8.10"}), "application/json"
        if path == "/xapi/schemas":
            return 200, json.dumps(xsd.schema_names()), "application/json"
        if path.startswith("/xapi/schemas/"):
            return 200, xsd.render_schema(path.removeprefix("/xapi/schemas/")), "text/xml"
        if path == "/data/search/elements":
            return 200, _result_set(search_elements.element_rows()[1]), "application/json"
        if path.startswith("/data/search/elements/"):
            rows = search_elements.field_rows(path.removeprefix("/data/search/elements/"))[1]
            return 200, _result_set(rows), "application/json"
        if path in DOCUMENTS:
            return 200, json.dumps(DOCUMENTS[path]), "application/json"
        return 404, "Not found", "text/plain"  # e.g. /data/version: xnatpy then asks buildInfo

    def close(self) -> None:
        pass

    def puts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "PUT"]


def _canonical(path: str) -> str:
    """One tree, as xnatd serves it: ``/data/archive/...`` = ``/data/...``, experiments also globally."""
    path = path.replace("/data/archive/", "/data/", 1)
    if path.startswith(EXPERIMENT_TREE):
        path = EXPERIMENT_URI + path.removeprefix(EXPERIMENT_TREE)
    return path


def _result_set(rows: list[dict[str, str]]) -> str:
    return json.dumps({"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}})


class _Logger(logging.LoggerAdapter):
    """xnatpy calls ``logger.verbose``, which ``xnat.connect`` patches into ``logging.Logger``."""

    def verbose(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class Client:
    session: Any
    transport: InProcessTransport
    warnings: list[str]

    @property
    def classes(self) -> Any:
        return self.session.classes

    def last_put(self) -> Sent:
        return self.transport.puts()[-1]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    logger = logging.getLogger("xnatd.tests.xnatpy")
    logger.setLevel(logging.WARNING)
    collect = _Collect()
    logger.addHandler(collect)
    transport = InProcessTransport()
    http = requests.Session()
    http.mount(SERVER, transport)
    session = XNATSession(server=SERVER, logger=_Logger(logger, {}), interface=http, keepalive=False)
    try:
        xnat.build_model(session, extension_types=True, connection_id="xnatd_unit_test")
        yield Client(session, transport, collect.messages)
    finally:
        session.disconnect()
        logger.removeHandler(collect)


@pytest.fixture
def fresh(client: Client) -> Client:
    """The shared client with emptied object caches, so every test reads its documents again."""
    client.session.clearcache()
    client.session.caching = True
    return client


@dataclass
class Tree:
    """Strong references: xnatpy's objects and listings hold their parents only weakly."""

    project: Any
    subject: Any
    experiment: Any


def _tree(c: Client) -> Tree:
    create = c.session.create_object
    return Tree(
        project=create("/data/projects/P1", type_="xnat:projectData", id_="P1"),
        subject=create(SUBJECT_URI, type_="xnat:subjectData", id_="XNAT_S00001"),
        experiment=create(EXPERIMENT_URI, type_="xnat:mrSessionData", id_="XNAT_E00001"),
    )


# ---------------------------------------------------------------------------------------------
# The documents themselves


def test_schema_names_include_xnat_and_xdat() -> None:
    names = xsd.schema_names()
    assert names[0] == "xnat"
    assert "xdat" in names


def test_unknown_schema_is_not_found() -> None:
    with pytest.raises(NotFound):
        xsd.render_schema("nope")


@pytest.mark.parametrize("name", xsd.schema_names())
def test_schema_is_xsd_with_its_namespace(name: str) -> None:
    text = xsd.render_schema(name)
    root = ElementTree.fromstring(text)
    assert root.tag == f"{XS}schema"
    assert (
        root.get("targetNamespace")
        == {
            "xnat": "http://nrg.wustl.edu/xnat",
            "xdat": "http://nrg.wustl.edu/xdat",
            "prov": "http://www.nbirn.net/prov",
            "proc": "http://nrg.wustl.edu/proc",  # dax's processing runs (the plugin's namespace)
        }[name]
    )
    # xnatpy reads the prefixes from the literal start tag, so they must be declared there.
    start = text[text.index("<xs:schema") : text.index(">", text.index("<xs:schema"))]
    assert 'xmlns:xnat="http://nrg.wustl.edu/xnat"' in start
    assert 'xmlns:xdat="http://nrg.wustl.edu/xdat"' in start


def test_every_registry_type_is_a_complex_type_and_every_reference_resolves() -> None:
    defined: set[str] = set()
    referenced: set[str] = set()
    for name in xsd.schema_names():
        root = ElementTree.fromstring(xsd.render_schema(name))
        for el in root:
            if el.tag in (f"{XS}complexType", f"{XS}simpleType"):
                defined.add(f"{name}:{el.get('name')}")
        for el in root.iter():
            for attr in ("type", "base"):
                value = el.get(attr)
                if value and not value.startswith("xs:"):
                    referenced.add(value)
    assert {t.xsi_type for t in types.all_types()} <= defined
    assert referenced <= defined
    assert "xdat:LONGVARCHAR" in defined


# ---------------------------------------------------------------------------------------------
# xnatpy's model


def test_connect_path_builds_the_model_without_warnings(client: Client) -> None:
    asked = [s.path for s in client.transport.sent if s.method == "GET"]
    assert "/xapi/schemas" in asked
    assert {f"/xapi/schemas/{n}" for n in xsd.schema_names()} <= set(asked)
    assert "/data/search/elements" in asked
    assert not client.warnings, client.warnings


@pytest.mark.parametrize(
    "name",
    [
        "ProjectData",
        "SubjectData",
        "DemographicData",
        "MrSessionData",
        "CtSessionData",
        "PetSessionData",
        "MrScanData",
        "CtScanData",
        "QcAssessmentData",
        "ReconstructedImageData",
        "ResourceCatalog",
        "ProjectParticipant",
        "ExperimentDataShare",
    ],
)
def test_client_classes_exist(client: Client, name: str) -> None:
    assert isinstance(getattr(client.classes, name), type)


def test_every_registry_type_is_registered(client: Client) -> None:
    missing = [t.xsi_type for t in types.all_types() if t.xsi_type not in client.session.XNAT_CLASS_LOOKUP]
    assert not missing


def test_inheritance_follows_the_registry(client: Client) -> None:
    c = client.classes
    assert issubclass(c.MrSessionData, c.ImageSessionData)
    assert issubclass(c.ImageSessionData, c.SubjectAssessorData)
    assert issubclass(c.SubjectAssessorData, c.ExperimentData)
    assert issubclass(c.MrScanData, c.ImageScanData)
    assert issubclass(c.QcAssessmentData, c.ImageAssessorData)
    assert issubclass(c.ResourceCatalog, c.AbstractResource)
    assert issubclass(c.DemographicData, c.AbstractDemographicData)


@pytest.mark.parametrize(
    ("cls", "prop"),
    [
        ("SubjectData", "demographics"),
        ("SubjectData", "experiments"),
        ("SubjectData", "resources"),
        ("SubjectData", "sharing"),
        ("SubjectData", "group"),
        ("DemographicData", "gender"),
        ("DemographicData", "age"),
        ("DemographicData", "handedness"),
        ("MrSessionData", "date"),
        ("MrSessionData", "scanner"),
        ("MrSessionData", "field_strength"),
        ("MrSessionData", "scans"),
        ("MrSessionData", "assessors"),
        ("MrSessionData", "reconstructions"),
        ("MrSessionData", "resources"),
        ("MrScanData", "type"),
        ("MrScanData", "series_description"),
        ("MrScanData", "parameters"),
        ("MrScanData", "resources"),
        ("ProjectData", "resources"),
        ("ProjectData", "subjects"),
        ("QcManualAssessorData", "pass_"),
        ("QcAssessmentData", "type"),
        ("ProjectData", "pi"),
        ("MrScanData", "parameters"),
        ("ResourceCatalog", "format"),
    ],
)
def test_client_properties_exist(client: Client, cls: str, prop: str) -> None:
    assert hasattr(getattr(client.classes, cls), prop)


def test_display_identifiers_drive_creation_urls(client: Client) -> None:
    c = client.classes
    assert c.SubjectData._DISPLAY_IDENTIFIER == "label"
    assert c.MrSessionData._DISPLAY_IDENTIFIER == "label"
    assert c.MrScanData._DISPLAY_IDENTIFIER == "ID"
    assert c.ResourceCatalog._DISPLAY_IDENTIFIER == "label"


def test_search_fields_do_not_shadow_properties(client: Client) -> None:
    c = client.classes
    assert isinstance(c.SubjectData.GENDER, DisplayFieldSearchField)
    assert isinstance(c.MrSessionData.DATE, DisplayFieldSearchField)
    assert not isinstance(c.MrSessionData.__dict__.get("date"), DisplayFieldSearchField)


# ---------------------------------------------------------------------------------------------
# What the generated properties send (clients.md section 1.4)


def test_demographics_setters_send_the_xnat_xpath(fresh: Client) -> None:
    tree = _tree(fresh)
    demographics = tree.subject.demographics
    assert isinstance(demographics, fresh.classes.DemographicData)
    assert demographics.xpath == "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]"

    demographics.gender = "male"
    sent = fresh.last_put()
    assert sent.path == SUBJECT_URI
    assert sent.query == [
        ("xsiType", "xnat:subjectData"),
        ("xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender", "male"),
    ]
    encoded = "xnat%3AsubjectData/demographics%5B%40xsi%3Atype%3Dxnat%3AdemographicData%5D/gender=male"
    assert encoded in sent.raw_query

    tree.subject.demographics.age = 33
    assert fresh.last_put().query[-1] == (
        "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/age",
        "33",
    )


def test_demographics_values_are_typed_and_checked(fresh: Client) -> None:
    tree = _tree(fresh)
    demographics = tree.subject.demographics
    assert demographics.gender == "male"
    assert demographics.age == 33
    assert isinstance(demographics.age, int)
    before = len(fresh.transport.puts())
    with pytest.raises(ValueError):
        demographics.gender = "martian"  # the XSD enumeration, checked before anything is sent
    with pytest.raises(ValueError):
        demographics.age = "old"
    assert len(fresh.transport.puts()) == before


def test_sharing_listing_reads_share_children(fresh: Client) -> None:
    tree = _tree(fresh)
    sharing = tree.subject.sharing
    assert isinstance(sharing, XNATSubListing)
    share = sharing["P2"]
    assert isinstance(share, fresh.classes.ProjectParticipant)
    assert share.label == "S_IN_P2"


def test_experiment_setters_send_the_xnat_xpath(fresh: Client) -> None:
    experiment = _tree(fresh).experiment
    assert experiment.date == datetime.date(2020, 2, 3)
    assert experiment.scanner.manufacturer == "ACME"

    experiment.date = datetime.date(2020, 2, 3)
    sent = fresh.last_put()
    assert sent.path == EXPERIMENT_FULLURI
    assert sent.query == [("xsiType", "xnat:mrSessionData"), ("xnat:mrSessionData/date", "2020-02-03")]

    experiment.scanner.manufacturer = "Siemens"
    assert fresh.last_put().query[-1] == ("xnat:mrSessionData/scanner/manufacturer", "Siemens")
    experiment.field_strength = "3T"
    assert fresh.last_put().query[-1] == ("xnat:mrSessionData/fieldStrength", "3T")
    del experiment.date
    assert fresh.last_put().query[-1] == ("xnat:mrSessionData/date", "NULL")


def test_scan_setters_send_the_xnat_xpath(fresh: Client) -> None:
    tree = _tree(fresh)
    scan = tree.experiment.scans["1"]
    assert scan.type == "T1"
    assert scan.series_description == "t1_mprage"
    assert scan.parameters.tr == pytest.approx(2.3)

    scan.type = "T2"
    sent = fresh.last_put()
    assert sent.path == SCAN_URI
    assert sent.query == [("xsiType", "xnat:mrScanData"), ("xnat:mrScanData/type", "T2")]
    scan.series_description = "t2_tse"
    assert fresh.last_put().query[-1] == ("xnat:mrScanData/series_description", "t2_tse")
    scan.parameters.tr = 2.5
    assert fresh.last_put().query[-1] == ("xnat:mrScanData/parameters/tr", "2.5")
    scan.parameters.voxel_res.x = 1.0
    assert fresh.last_put().query[-1] == ("xnat:mrScanData/parameters/voxelRes/x", "1.0")


def test_constructors_put_where_clients_md_says(fresh: Client) -> None:
    c, tree = fresh.classes, _tree(fresh)
    c.SubjectData(parent=tree.project, label="SUBJ01")
    sent = fresh.last_put()
    assert sent.path == "/data/projects/P1/subjects/SUBJ01"
    assert sent.query == [
        ("xsiType", "xnat:subjectData"),
        ("req_format", "qs"),
        ("xnat:subjectData/label", "SUBJ01"),
    ]

    c.MrScanData(parent=tree.experiment, id="2", type="T2")
    sent = fresh.last_put()
    assert sent.path == f"{EXPERIMENT_FULLURI}/scans/2"  # the scan's ID, its display identifier
    assert dict(sent.query) == {
        "xsiType": "xnat:mrScanData",
        "req_format": "qs",
        "xnat:mrScanData/type": "T2",
        "xnat:mrScanData/id": "2",
    }


def test_listings_point_at_the_rest_collections(fresh: Client) -> None:
    tree = _tree(fresh)
    scan = tree.experiment.scans["1"]
    expected = {
        (tree.project, "subjects"): "/data/projects/P1/subjects",
        (tree.project, "resources"): "/data/projects/P1/resources",
        (tree.subject, "experiments"): f"{SUBJECT_FULLURI}/experiments",
        (tree.subject, "resources"): f"{SUBJECT_FULLURI}/resources",
        (tree.experiment, "scans"): f"{EXPERIMENT_FULLURI}/scans",
        (tree.experiment, "resources"): f"{EXPERIMENT_FULLURI}/resources",
        (tree.experiment, "assessors"): f"{EXPERIMENT_FULLURI}/assessors",
        (tree.experiment, "reconstructions"): f"{EXPERIMENT_FULLURI}/reconstructions",
        (scan, "resources"): f"{SCAN_URI}/resources",
    }
    for (obj, name), uri in expected.items():
        listing = getattr(obj, name)
        assert isinstance(listing, XNATListing), name
        assert listing.uri == uri, name


def test_listings_build_objects_of_the_listed_types(fresh: Client) -> None:
    experiment = _tree(fresh).experiment
    scan = experiment.scans["1"]
    assert isinstance(scan, fresh.classes.MrScanData)
    assert experiment.scans.key_map["T1"] is scan  # the secondary lookup is the scan type
    resource = experiment.resources["DICOM"]
    assert isinstance(resource, fresh.classes.ResourceCatalog)
    assert resource.file_count == 2


# ---------------------------------------------------------------------------------------------
# Custom variables: xnatpy's ``obj.fields`` exists only for an inline simple-content ``fields/field``


@pytest.mark.parametrize(
    "name", ["ProjectData", "SubjectData", "MrSessionData", "PetSessionData", "QcAssessmentData"]
)
def test_custom_variables_are_recognised(client: Client, name: str) -> None:
    assert getattr(client.classes, name)._HAS_FIELDS is True


def test_custom_variables_read_from_the_fields_child(fresh: Client) -> None:
    subject = _tree(fresh).subject
    assert type(subject.fields).__name__ == "XNATSimpleListing"
    assert dict(subject.fields) == {"study_group": "control", "site": "Leeds"}
    assert subject.fields["study_group"] == "control"


def test_custom_variable_setters_send_the_xnat_xpath(fresh: Client) -> None:
    tree = _tree(fresh)
    tree.subject.fields["visit"] = "V1"
    sent = fresh.last_put()
    assert sent.path == SUBJECT_FULLURI
    assert sent.query == [
        ("xsiType", "xnat:subjectData"),
        ("xnat:subjectData/fields/field[name=visit]/field", "V1"),
    ]
    assert types.custom_field_key("xnat:subjectData", sent.query[-1][0]) == types.custom_key("visit")
    del tree.subject.fields["site"]
    # xnatpy removes a variable under two XPaths; both must name it (records.parse_params refuses
    # unknown XPaths of known types).
    removed = fresh.last_put().query[1:]
    assert removed == [
        ("xnat:subjectData/fields/field[name=site]/field", "NULL"),
        ("xnat:subjectData/fields/field[name=site]/site", "NULL"),
    ]
    assert {types.custom_field_key("xnat:subjectData", k) for k, _ in removed} == {types.custom_key("site")}
    tree.experiment.fields["tp"] = "baseline"
    sent = fresh.last_put()
    assert sent.path == EXPERIMENT_FULLURI
    assert sent.query[-1] == ("xnat:mrSessionData/fields/field[name=tp]/field", "baseline")
