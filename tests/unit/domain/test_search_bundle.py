"""The search bundle parser (``domain/search.py``): the bundles pyxnat and xnatpy build, and hostile ones."""

from __future__ import annotations

import pytest

from xnatd.domain import search as S
from xnatd.errors import InvalidInput, TooLarge

NS = 'xmlns:xdat="http://nrg.wustl.edu/security"'

# What pyxnat 1.6.4's build_search_document sends for
# select('xnat:mrSessionData', ['xnat:mrSessionData/AGE', 'xnat:subjectData/GENDER_TEXT'])
#   .where([('xnat:mrSessionData/AGE', '>', '30'), [(..LABEL LIKE %E%), (..LABEL = X), 'OR'], 'AND'])
PYXNAT = f"""<?xml version='1.0' encoding='ASCII'?>
<xdat:bundle {NS} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="@xnat:mrSessionData"
  brief-description="" description="" allow-diff-columns="0" secure="false">
  <xdat:root_element_name>xnat:mrSessionData</xdat:root_element_name>
  <xdat:search_field><xdat:element_name>xnat:mrSessionData</xdat:element_name>
    <xdat:field_ID>AGE</xdat:field_ID><xdat:sequence>0</xdat:sequence><xdat:type>string</xdat:type>
    <xdat:header>xnat:mrSessionData/AGE</xdat:header></xdat:search_field>
  <xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name>
    <xdat:field_ID>GENDER_TEXT</xdat:field_ID><xdat:sequence>1</xdat:sequence><xdat:type>string</xdat:type>
    <xdat:header>xnat:subjectData/GENDER_TEXT</xdat:header></xdat:search_field>
  <xdat:search_where method="AND">
    <xdat:criteria override_value_formatting="0"><xdat:schema_field>xnat:mrSessionData/AGE</xdat:schema_field>
      <xdat:comparison_type>&gt;</xdat:comparison_type><xdat:value>30</xdat:value></xdat:criteria>
    <xdat:child_set method="OR">
      <xdat:criteria override_value_formatting="0">
        <xdat:schema_field>xnat:mrSessionData/LABEL</xdat:schema_field>
        <xdat:comparison_type>LIKE</xdat:comparison_type><xdat:value>%E%</xdat:value></xdat:criteria>
      <xdat:criteria override_value_formatting="0">
        <xdat:schema_field>xnat:mrSessionData/LABEL</xdat:schema_field>
        <xdat:comparison_type>=</xdat:comparison_type><xdat:value>X</xdat:value></xdat:criteria>
    </xdat:child_set>
  </xdat:search_where>
</xdat:bundle>"""


def _bundle(where: str = "", fields: str = "", root: str = "xnat:subjectData") -> str:
    return (
        f"<xdat:bundle {NS}><xdat:root_element_name>{root}</xdat:root_element_name>{fields}"
        f'<xdat:search_where method="AND">{where}</xdat:search_where></xdat:bundle>'
    )


def _criteria(field: str, op: str, value: str) -> str:
    return (
        f"<xdat:criteria><xdat:schema_field>{field}</xdat:schema_field>"
        f"<xdat:comparison_type>{op}</xdat:comparison_type><xdat:value>{value}</xdat:value></xdat:criteria>"
    )


def test_pyxnat_bundle_columns_and_nested_criteria() -> None:
    b = S.parse_bundle(PYXNAT.encode("ascii"))
    assert b.root == "xnat:mrSessionData"
    assert [(c.ref.element, c.ref.field) for c in b.columns] == [
        ("xnat:mrSessionData", "AGE"),
        ("xnat:subjectData", "GENDER_TEXT"),
    ]
    assert b.where.method == S.AND
    first, nested = b.where.items
    assert first == S.Criterion(S.FieldRef("xnat:mrSessionData", "AGE"), S.GT, "30")
    assert isinstance(nested, S.Group) and nested.method == S.OR
    assert [c.comparison for c in nested.items if isinstance(c, S.Criterion)] == [S.LIKE, S.EQ]
    assert len(b.criteria()) == 3


def test_xnatpy_bundle_without_declaration_and_xpath_fields() -> None:
    fields = (
        "<xdat:search_field><xdat:element_name>xnat:mrSessionData</xdat:element_name>"
        "<xdat:field_ID>xnat:mrSessionData/ID</xdat:field_ID><xdat:sequence>0</xdat:sequence>"
        "<xdat:type>xs:string</xdat:type><xdat:header>url</xdat:header></xdat:search_field>"
    )
    where = _criteria("xnat:mrSessionData/label", " LIKE ", "E%")
    b = S.parse_bundle(_bundle(where, fields, "xnat:mrSessionData"))
    assert b.columns[0].ref == S.FieldRef("xnat:mrSessionData", "xnat:mrSessionData/ID")
    criterion = b.criteria()[0]
    assert criterion.comparison == S.LIKE and criterion.value == "E%"


def test_columns_follow_their_sequence() -> None:
    fields = "".join(
        f"<xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name>"
        f"<xdat:field_ID>{name}</xdat:field_ID><xdat:sequence>{seq}</xdat:sequence></xdat:search_field>"
        for name, seq in (("B", 1), ("A", 0))
    )
    assert [c.ref.field for c in S.parse_bundle(_bundle(fields=fields)).columns] == ["A", "B"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("xnat:subjectData/AGE", S.FieldRef("xnat:subjectData", "AGE")),
        ("xnat:subjectData.SUBJECT_ID", S.FieldRef("xnat:subjectData", "SUBJECT_ID")),
        (
            "xnat:subjectData/XNAT_SUBJECTDATA_FIELD_MAP=age",
            S.FieldRef("xnat:subjectData", "XNAT_SUBJECTDATA_FIELD_MAP", "age"),
        ),
        (
            "xnat:subjectData/fields/field[name=age]/field",
            S.FieldRef("xnat:subjectData", "fields/field[name=age]/field"),
        ),
        (
            "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender",
            S.FieldRef("xnat:subjectData", "demographics[@xsi:type=xnat:demographicData]/gender"),
        ),
    ],
)
def test_field_spellings(text: str, expected: S.FieldRef) -> None:
    assert S.split_field(text) == expected


@pytest.mark.parametrize("text", ["AGE", "xnat:subjectData", "xnat:subjectData/", "/AGE"])
def test_fields_without_an_element_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        S.split_field(text)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (" like ", S.LIKE),
        ("<>", S.NE),
        ("is  not null", S.IS_NOT_NULL),
        ("between", S.BETWEEN),
        (">=", S.GE),
        ("NOT LIKE", S.NOT_LIKE),
    ],
)
def test_comparisons_are_normalised(given: str, expected: str) -> None:
    assert S.normalize_comparison(given) == expected


def test_between_bounds_and_default_comparison() -> None:
    b = S.parse_bundle(_bundle(_criteria("xnat:subjectData/AGE", "BETWEEN", "20 and 40")))
    assert b.criteria()[0].bounds() == ("20", "40")
    no_op = (
        "<xdat:criteria><xdat:schema_field>xnat:subjectData/AGE</xdat:schema_field>"
        "<xdat:value>3</xdat:value></xdat:criteria>"
    )
    assert S.parse_bundle(_bundle(no_op)).criteria()[0].comparison == S.EQ


def test_a_bundle_without_criteria_has_an_empty_where() -> None:
    b = S.parse_bundle(
        f"<xdat:bundle {NS}><xdat:root_element_name>xnat:projectData</xdat:root_element_name></xdat:bundle>"
    )
    assert b.columns == () and b.criteria() == []


HOSTILE = {
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        f"<xdat:bundle {NS}><xdat:root_element_name>&lol2;</xdat:root_element_name></xdat:bundle>"
    ),
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f"<xdat:bundle {NS}><xdat:root_element_name>&e;</xdat:root_element_name></xdat:bundle>"
    ),
    "doctype only": f'<!DOCTYPE x SYSTEM "http://example.org/x.dtd"><xdat:bundle {NS}/>',
    "not xml": "root_element_name=xnat:subjectData",
    "truncated": f"<xdat:bundle {NS}><xdat:root_element_name>xnat:subjectData",
    "empty": "   ",
    "wrong root": "<ResultSet><root_element_name>xnat:subjectData</root_element_name></ResultSet>",
    "no root element name": f"<xdat:bundle {NS}><xdat:search_where/></xdat:bundle>",
    "field without id": _bundle(
        fields="<xdat:search_field><xdat:element_name>xnat:subjectData</xdat:element_name></xdat:search_field>"
    ),
    "criteria without field": _bundle(
        "<xdat:criteria><xdat:comparison_type>=</xdat:comparison_type></xdat:criteria>"
    ),
    "unknown comparison": _bundle(_criteria("xnat:subjectData/AGE", "; DROP TABLE subjects", "1")),
    "between without and": _bundle(_criteria("xnat:subjectData/AGE", "BETWEEN", "20")),
    "bad method": _bundle().replace('method="AND"', 'method="XOR"'),
    "invalid utf-8": f"<xdat:bundle {NS}><xdat:root_element_name>\xff</xdat:root_element_name></xdat:bundle>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_or_malformed_bundles_are_refused_with_a_reason(name: str) -> None:
    body = HOSTILE[name]
    raw = body.encode("latin-1") if name == "invalid utf-8" else body.encode("utf-8")
    with pytest.raises(InvalidInput) as caught:
        S.parse_bundle(raw)
    assert str(caught.value) and "\n" not in str(caught.value)


def test_deep_nesting_is_refused() -> None:
    depth = S.MAX_DEPTH + 1
    where = '<xdat:child_set method="AND">' * depth + "</xdat:child_set>" * depth
    with pytest.raises(InvalidInput, match="nested"):
        S.parse_bundle(_bundle(where))


def test_too_many_criteria_are_refused() -> None:
    where = _criteria("xnat:subjectData/AGE", "=", "1") * (S.MAX_PARTS + 1)
    with pytest.raises(InvalidInput, match="more than"):
        S.parse_bundle(_bundle(where))


def test_a_huge_body_is_refused_before_parsing() -> None:
    with pytest.raises(TooLarge):
        S.parse_bundle(b" " * (S.MAX_BYTES + 1))
