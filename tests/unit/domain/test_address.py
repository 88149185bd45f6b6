"""The URL grammar: every level, every shortcut, the seed documents' short forms, hostile paths."""

from __future__ import annotations

import pytest

from xnatd.domain import address as A
from xnatd.errors import InvalidInput, NotFound


def parse(path: str) -> A.Address:
    return A.parse(A.split_path(path))


def test_projects_listing_and_project() -> None:
    assert parse("/projects") == A.Address(A.PROJECTS)
    assert parse("archive/projects/") == A.Address(A.PROJECTS)
    assert parse("projects/P1") == A.Address(A.PROJECT, project="P1")


def test_full_hierarchy_down_to_a_file() -> None:
    addr = parse("projects/P/subjects/S/experiments/E/scans/4/resources/DICOM/files/a/b/1.dcm")
    assert addr.kind == A.FILE
    assert (addr.project, addr.subject, addr.experiment) == ("P", "S", "E")
    assert (addr.child_kind, addr.child, addr.resource, addr.path) == ("scan", "4", "DICOM", "a/b/1.dcm")
    assert addr.level == "scan"


@pytest.mark.parametrize(
    ("path", "kind", "level"),
    [
        ("projects/P/subjects", A.SUBJECTS, "project"),
        ("projects/P/experiments", A.EXPERIMENTS, "project"),
        ("projects/P/subjects/S/experiments", A.EXPERIMENTS, "subject"),
        ("projects/P/experiments/E", A.EXPERIMENT, "experiment"),
        ("subjects/XNAT_S00001", A.SUBJECT, "subject"),
        ("experiments/XNAT_E00001/scans", A.CHILDREN, "experiment"),
        ("experiments/XNAT_E00001/assessors/A1/out/resources/R/files", A.FILES, "assessor"),
        ("experiments/E/reconstructions/R1/resources", A.RESOURCES, "reconstruction"),
        ("projects/P/resources/R", A.RESOURCE, "project"),
        ("projects/P/subjects/S/resources", A.RESOURCES, "subject"),
        ("projects/P/subjects/S/experiments/E/files", A.FILES, "experiment"),
        ("projects/P/subjects/S/projects", A.SHARES, "subject"),
    ],
)
def test_every_level_parses_the_same_way(path: str, kind: str, level: str) -> None:
    addr = parse(path)
    assert (addr.kind, addr.level) == (kind, level)


def test_sharing_address() -> None:
    addr = parse("projects/P/subjects/S/experiments/E/projects/P2")
    assert (addr.kind, addr.share_project, addr.level) == (A.SHARE, "P2", "experiment")


def test_seed_short_forms_create_folder_and_upload_into_it() -> None:
    folder = parse("archive/projects/P/subjects/S/experiments/E/scans/4/test")
    assert (folder.kind, folder.resource, folder.child) == (A.RESOURCE, "test", "4")
    upload = parse("archive/projects/P/subjects/S/experiments/E/scans/4/ABC/files")
    assert (upload.kind, upload.resource) == (A.FILES, "ABC")


def test_project_settings_are_left_for_their_handler() -> None:
    addr = parse("projects/P/prearchive_code/4")
    assert addr.kind == A.PROJECT and addr.extra == ("prearchive_code", "4")


def test_absolute_path_after_files_is_kept_visible() -> None:
    # ``files//etc/passwd``: the empty segment survives so the file-path check can refuse it
    addr = parse("projects/P/resources/R/files//etc/passwd")
    assert addr.kind == A.FILE and addr.path == "/etc/passwd"


def test_unknown_roots_and_extra_path_after_resource_are_errors() -> None:
    with pytest.raises(NotFound):
        parse("nonsense/P")
    with pytest.raises(InvalidInput):
        parse("projects/P/resources/R/oops")
