"""Settings come from IMAGE_FACTORY_* variables, typed by each field's default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from workers.settings import PREFIX, SECRET_FIELDS, Settings


def test_no_variables_give_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_each_kind_of_field_is_parsed() -> None:
    settings = Settings.from_env(
        {
            "IMAGE_FACTORY_DATA_DIR": "/srv/factory",
            "IMAGE_FACTORY_S3_ENDPOINT": "http://s3.internal:9000",
            "IMAGE_FACTORY_BUILD_WAIT": "42",
            "IMAGE_FACTORY_MAX_SCHEMATIC_BYTES": " 1024 ",
        }
    )
    assert settings.data_dir == Path("/srv/factory")
    assert isinstance(settings.data_dir, Path)
    assert settings.s3_endpoint == "http://s3.internal:9000"
    assert settings.build_wait == 42
    assert settings.max_schematic_bytes == 1024
    assert settings.s3_bucket == Settings().s3_bucket  # untouched fields keep defaults


def test_every_field_reads_its_own_variable() -> None:
    for field in dataclasses.fields(Settings):
        if field.name == "extra":
            continue
        default = getattr(Settings(), field.name)
        raw, expected = _sample(default)
        settings = Settings.from_env({PREFIX + field.name.upper(): raw})
        value = getattr(settings, field.name)
        assert value == expected, field.name
        assert type(value) is type(default), field.name


def _sample(default: object) -> tuple[str, object]:
    """A variable's text and the value it must parse to, for a field with `default`."""
    if isinstance(default, bool):
        return "yes", True
    if isinstance(default, int):
        return "7", 7
    if isinstance(default, Path):
        return "/custom/dir", Path("/custom/dir")
    return "custom-value", "custom-value"


def test_an_empty_string_is_a_value_not_a_default() -> None:
    assert Settings.from_env({"IMAGE_FACTORY_S3_REGION": ""}).s3_region == ""


@pytest.mark.parametrize("raw", ["soon", "", "1.5", "0x10"])
def test_integer_errors_name_the_variable(raw: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^IMAGE_FACTORY_BUILD_WAIT must be an integer, got '{raw}'$"
    ):
        Settings.from_env({"IMAGE_FACTORY_BUILD_WAIT": raw})


def test_only_prefixed_variables_count() -> None:
    settings = Settings.from_env(
        {
            "DATA_DIR": "/ignored",
            "image_factory_data_dir": "/ignored/too",
            "IMAGE_FACTORY_BROKER_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert settings.data_dir == Settings().data_dir
    assert settings.broker_url == "redis://127.0.0.1:6379/0"


def test_an_unknown_variable_stops_start_up_naming_the_close_match() -> None:
    with pytest.raises(
        ValueError,
        match=r"^unknown setting IMAGE_FACTORY_S3_ENDPIONT; did you mean IMAGE_FACTORY_S3_ENDPOINT",
    ):
        Settings.from_env({"IMAGE_FACTORY_S3_ENDPIONT": "http://127.0.0.1:8333"})
    with pytest.raises(ValueError, match=r"^unknown setting IMAGE_FACTORY_ZZZ; see the README"):
        Settings.from_env({"IMAGE_FACTORY_ZZZ": "x"})


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_TOOL_TIMEOUT", "99")
    assert Settings.from_env().tool_timeout == 99


def test_derived_properties() -> None:
    assert not Settings().uses_s3
    assert Settings(s3_endpoint="http://127.0.0.1:9000").uses_s3
    assert Settings(external_url="http://f.example").effective_pxe_url == "http://f.example"
    assert (
        Settings(external_url="http://f.example", pxe_url="http://pxe.example").effective_pxe_url
        == "http://pxe.example"
    )


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.data_dir = Path("/elsewhere")  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(SECRET_FIELDS))
def test_a_secret_can_come_from_a_file(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    settings = Settings.from_env({f"{PREFIX}{name.upper()}_FILE": str(secret)})
    assert getattr(settings, name) == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


def test_a_secret_set_twice_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"^set IMAGE_FACTORY_S3_SECRET_KEY or IMAGE_FACTORY_S3_SECRET_KEY_FILE, not both$",
    ):
        Settings.from_env(
            {"IMAGE_FACTORY_S3_SECRET_KEY": "a", "IMAGE_FACTORY_S3_SECRET_KEY_FILE": "/x"}
        )


def test_an_unreadable_secret_file_is_named_without_its_content(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(
        ValueError,
        match=rf"^IMAGE_FACTORY_BROKER_URL_FILE: cannot read {missing}: No such file",
    ):
        Settings.from_env({"IMAGE_FACTORY_BROKER_URL_FILE": str(missing)})
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfepassword")
    with pytest.raises(ValueError, match="not UTF-8 text") as raised:
        Settings.from_env({"IMAGE_FACTORY_S3_ACCESS_KEY_FILE": str(binary)})
    assert "password" not in str(raised.value)


def test_only_secret_settings_read_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^unknown setting IMAGE_FACTORY_S3_BUCKET_FILE; did"):
        Settings.from_env({"IMAGE_FACTORY_S3_BUCKET_FILE": str(tmp_path)})
