"""Every setting is documented (docs/settings.md) and read from its environment variable."""

from __future__ import annotations

from pathlib import Path

from xnatd import config

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_every_setting_is_in_the_settings_page_with_its_default() -> None:
    text = DOC.read_text()
    for name, env, default, doc in config.describe():
        assert f"| `{name}` | `{env}` | `{default}` | {doc} |" in text, name


def test_environment_variables_and_overrides() -> None:
    env = {"XNATD_PORT": "9090", "XNATD_NO_DICOM": "true", "XNATD_DATA": "/srv/x", "XNATD_SITE_ID": "LAB"}
    s = config.load({"port": 7000}, environ=env)
    assert s.port == 7000  # an explicit option wins over the environment
    assert s.no_dicom is True
    assert s.data == Path("/srv/x")
    assert s.site_id == "LAB"
    assert s.database == "sqlite:////srv/x/xnatd.db"


def test_export_round_trips_through_the_environment() -> None:
    s = config.load({"port": 1234, "no_dicom": True, "data": Path("/tmp/d")}, environ={})
    env: dict[str, str] = {}
    config.export(s, env)
    assert config.load(environ=env) == config.load({"data": Path("/tmp/d").resolve()}, environ=env)
    assert env["XNATD_PORT"] == "1234" and env["XNATD_NO_DICOM"] == "true"
