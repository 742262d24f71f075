"""The option table: precedence, validation, and messages that say what to do."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import InMemoryStorage, default_storage, storages
from django.test import override_settings
from django.utils.functional import empty

from django_imagekit_storage import conf
from django_imagekit_storage.conf import (
    OPTIONS,
    StorageSettings,
    closest_option,
    find_value,
    is_loopback_host,
    resolve_options,
    unknown_options,
)
from django_imagekit_storage.exceptions import ImageKitStorageError, ImageKitTimeoutError
from tests.fake_keys import fake_key

SENTINEL_KEY = fake_key("private", "SENTINEL0123456789abcdefSECRET=")
REQUIRED = {"private_key": SENTINEL_KEY, "url_endpoint": "https://ik.imagekit.io/demo"}


def resolve(environ: Mapping[str, str] | None = None, **options: Any) -> StorageSettings:
    return resolve_options(options, environ={} if environ is None else environ)


class TestPrecedence:
    def test_option_beats_setting_beats_environment(self) -> None:
        environ = {"IMAGEKIT_URL_ENDPOINT": "https://env.example/e"}
        with override_settings(IMAGEKIT_URL_ENDPOINT="https://setting.example/s"):
            assert resolve(environ, private_key="k").url_endpoint == "https://setting.example/s"
            assert (
                resolve(
                    environ, private_key="k", url_endpoint="https://option.example/o"
                ).url_endpoint
                == "https://option.example/o"
            )
        assert resolve(environ, private_key="k").url_endpoint == "https://env.example/e"

    def test_empty_and_none_values_fall_through(self) -> None:
        environ = {"IMAGEKIT_PRIVATE_KEY": "from-env"}
        with override_settings(IMAGEKIT_PRIVATE_KEY=""):
            resolved = resolve(environ, private_key=None, url_endpoint="https://e.example/x")
        assert resolved.private_key == "from-env"

    def test_only_connection_values_read_the_environment(self) -> None:
        environ = {"IMAGEKIT_LOCATION": "from-env", "IMAGEKIT_TIMEOUT": "1"}
        resolved = resolve(environ, **REQUIRED)
        assert resolved.location == ""
        assert resolved.timeout == OPTIONS["timeout"].default

    def test_settings_are_read_when_resolving_not_at_import(self) -> None:
        with override_settings(IMAGEKIT_LOCATION="first"):
            assert resolve(**REQUIRED).location == "first"
        with override_settings(IMAGEKIT_LOCATION="second"):
            assert resolve(**REQUIRED).location == "second"

    def test_find_value_reports_the_source(self) -> None:
        environ = {"IMAGEKIT_PRIVATE_KEY": "x"}
        found = find_value("private_key", {}, environ=environ)
        assert (found.source, found.origin_name) == ("environment", "IMAGEKIT_PRIVATE_KEY")
        assert find_value("private_key", {}, environ={}).value is conf.REQUIRED
        assert find_value("tags", {"tags": ["a"]}, environ={}).source == "OPTIONS"

    def test_found_value_repr_hides_the_value(self) -> None:
        found = find_value("private_key", {"private_key": SENTINEL_KEY}, environ={})
        assert SENTINEL_KEY not in repr(found)


class TestDefaults:
    def test_defaults(self) -> None:
        resolved = resolve(**REQUIRED)
        assert resolved.public_key is None
        assert resolved.base_url is None
        assert resolved.location == ""
        assert resolved.file_overwrite is False
        assert resolved.use_unique_file_name is True
        assert resolved.private_files is False
        assert resolved.signed_urls is False
        assert resolved.url_expire == 3600
        assert resolved.max_retries == 2
        assert resolved.tags == ()
        assert dict(resolved.custom_metadata) == {}

    def test_default_deadlines_fit_a_30_second_worker(self) -> None:
        resolved = resolve(**REQUIRED)
        assert resolved.timeout < 30
        assert resolved.upload_timeout < 30

    def test_signed_urls_follow_private_files_unless_set(self) -> None:
        assert resolve(private_files=True, **REQUIRED).signed_urls is True
        assert resolve(private_files=True, signed_urls=False, **REQUIRED).signed_urls is False
        assert resolve(signed_urls=True, **REQUIRED).signed_urls is True


class TestRequired:
    @pytest.mark.parametrize("name", ["private_key", "url_endpoint"])
    def test_missing_required_value_says_where_to_set_it(self, name: str) -> None:
        options = {key: value for key, value in REQUIRED.items() if key != name}
        with pytest.raises(ImproperlyConfigured) as info:
            resolve(**options)
        message = str(info.value)
        setting = f"IMAGEKIT_{name.upper()}"
        assert f"'{name}'" in message
        assert "OPTIONS" in message
        assert f"{setting} setting" in message
        assert f"{setting} environment variable" in message


class TestUnknownOptions:
    def test_unknown_option_names_the_closest_valid_one(self) -> None:
        with pytest.raises(
            ImproperlyConfigured, match=r"'privat_key' \(did you mean 'private_key'\?\)"
        ):
            resolve(privat_key="x", url_endpoint="https://e.example/x")

    def test_unknown_option_without_a_close_match_lists_valid_names(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="Valid options: private_key, public_key"):
            resolve(zzz=1, **REQUIRED)

    def test_helpers(self) -> None:
        assert closest_option("file_overwrites") == "file_overwrite"
        assert closest_option("zzz") is None
        assert unknown_options(["location", "locaton"]) == [("locaton", "location")]


class TestValidation:
    @pytest.mark.parametrize(
        ("name", "value", "expected"),
        [
            ("url_endpoint", "ik.imagekit.io/demo", "absolute http(s) URL"),
            ("url_endpoint", "ftp://ik.imagekit.io/demo", "absolute http(s) URL"),
            ("url_endpoint", "https://ik.imagekit.io/demo?x=1", "without a query"),
            ("url_endpoint", 42, "a URL string"),
            ("base_url", "localhost:8000", "absolute http(s) URL"),
            ("timeout", "abc", "a number"),
            ("timeout", 0, "positive number of seconds"),
            ("timeout", True, "a number"),
            ("upload_timeout", float("nan"), "positive number of seconds"),
            ("max_retries", -1, "at least 0"),
            ("max_retries", 1.5, "whole number"),
            ("url_expire", 0, "at least 1"),
            ("file_overwrite", "maybe", "True or False"),
            ("file_overwrite", 1, "True or False"),
            ("location", "../up", "'..'"),
            ("location", "a//b", "empty"),
            ("location", 3, "folder path string"),
            ("tags", "one,two", "list of tag strings"),
            ("tags", ["a,b"], "without commas"),
            ("tags", [""], "non-empty"),
            ("custom_metadata", ["x"], "dict"),
            ("public_key", 123, "non-empty string"),
        ],
    )
    def test_wrong_values_raise_with_the_option_and_what_is_expected(
        self, name: str, value: object, expected: str
    ) -> None:
        with pytest.raises(ImproperlyConfigured) as info:
            resolve(**{**REQUIRED, name: value})
        assert f"'{name}'" in str(info.value)
        assert expected in str(info.value)

    def test_setting_errors_name_the_setting(self) -> None:
        with override_settings(IMAGEKIT_TIMEOUT="abc"), pytest.raises(ImproperlyConfigured) as info:
            resolve(**REQUIRED)
        assert "IMAGEKIT_TIMEOUT setting" in str(info.value)

    def test_environment_errors_name_the_variable(self) -> None:
        with pytest.raises(
            ImproperlyConfigured, match="IMAGEKIT_URL_ENDPOINT environment variable"
        ):
            resolve({"IMAGEKIT_URL_ENDPOINT": "nope"}, private_key="k")

    def test_a_wrong_key_type_never_shows_the_value(self) -> None:
        with pytest.raises(ImproperlyConfigured) as info:
            resolve(private_key=[SENTINEL_KEY], url_endpoint="https://e.example/x")
        assert SENTINEL_KEY not in str(info.value)
        assert "type list" in str(info.value)

    def test_coercions(self) -> None:
        resolved = resolve(
            timeout="2.5",
            upload_timeout=7,
            max_retries="3",
            url_expire=60.0,
            file_overwrite="TRUE",
            private_files="off",
            tags=("a", "b"),
            location="/media/uploads/",
            **REQUIRED,
        )
        assert resolved.timeout == 2.5
        assert resolved.upload_timeout == 7.0
        assert resolved.max_retries == 3
        assert resolved.url_expire == 60
        assert resolved.file_overwrite is True
        assert resolved.private_files is False
        assert resolved.tags == ("a", "b")
        assert resolved.location == "media/uploads"

    def test_urls_lose_trailing_slashes(self) -> None:
        resolved = resolve(
            private_key="k",
            url_endpoint="https://ik.imagekit.io/demo/",
            base_url="http://127.0.0.1:9/",
        )
        assert resolved.url_endpoint == "https://ik.imagekit.io/demo"
        assert resolved.base_url == "http://127.0.0.1:9"

    @pytest.mark.parametrize(
        "url", ["https://api.imagekit.io", "https://api.imagekit.io/", "https://upload.imagekit.io"]
    )
    def test_the_cloud_api_host_means_the_cloud(self, url: str) -> None:
        # Passed to the SDK as base_url, it would send uploads to the API host.
        assert resolve(base_url=url, **REQUIRED).base_url is None

    def test_custom_metadata_is_copied_and_read_only(self) -> None:
        source = {"team": "web"}
        resolved = resolve(custom_metadata=source, **REQUIRED)
        source["team"] = "changed"
        assert resolved.custom_metadata["team"] == "web"
        with pytest.raises(TypeError):
            resolved.custom_metadata["team"] = "x"  # type: ignore[index]


class TestSecrets:
    def test_repr_hides_keys(self) -> None:
        resolved = resolve(public_key="public_SENTINELpublic", **REQUIRED)
        assert SENTINEL_KEY not in repr(resolved)
        assert "public_SENTINELpublic" not in repr(resolved)
        assert "ik.imagekit.io/demo" in repr(resolved)

    def test_only_keys_are_secret(self) -> None:
        assert {name for name, option in OPTIONS.items() if option.secret} == {
            "private_key",
            "public_key",
        }


class TestSettingChangeHook:
    def test_imagekit_setting_change_drops_cached_storages(self) -> None:
        default_storage._setup()
        storages["default"]
        assert storages._storages
        with override_settings(IMAGEKIT_LOCATION="elsewhere"):
            assert storages._storages == {}
        assert storages._storages == {}

    def test_other_settings_leave_the_cache_alone(self) -> None:
        cached = storages["default"]
        with override_settings(SOME_OTHER_SETTING=1):
            assert storages["default"] is cached


class ClosableStorage(InMemoryStorage):
    """A cached storage holding a connection pool, as ImageKitStorage does."""

    closed: ClassVar[list[ClosableStorage]] = []

    def close(self) -> None:
        ClosableStorage.closed.append(self)


CLOSABLE = f"{__name__}.ClosableStorage"


class TestSettingChangeHookClosesStorages:
    @pytest.fixture(autouse=True)
    def closable_default(self, settings: Any) -> None:
        ClosableStorage.closed.clear()
        settings.STORAGES = {
            "default": {"BACKEND": CLOSABLE},
            "staticfiles": {"BACKEND": CLOSABLE},
            "other": {"BACKEND": CLOSABLE},
        }

    def test_an_imagekit_setting_drops_and_closes_the_cached_storages(self) -> None:
        cached = [storages["default"], storages["staticfiles"], storages["other"]]
        default_storage._setup()
        assert default_storage._wrapped is cached[0]
        with override_settings(IMAGEKIT_TIMEOUT=3):
            # Each once, although default_storage wraps storages["default"].
            assert sorted(map(id, ClosableStorage.closed)) == sorted(map(id, cached))
            assert default_storage._wrapped is empty
            fresh = storages["default"]
            assert fresh not in cached
        assert ClosableStorage.closed[-1] is fresh  # the override's end drops it too

    def test_storages_without_close_are_just_dropped(self, settings: Any) -> None:
        settings.STORAGES = {"default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
        default = storages["default"]
        with override_settings(IMAGEKIT_TIMEOUT=3):
            assert storages["default"] is not default


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("app.localhost", True),
        ("10.0.0.1", False),
        ("ik.imagekit.io", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback_host(host: str | None, expected: bool) -> None:
    assert is_loopback_host(host) is expected


class TestExceptions:
    def test_text_carries_operation_name_status_message_and_help(self) -> None:
        error = ImageKitStorageError(
            "the upload was refused",
            operation="upload",
            name="photos/cat.jpg",
            status_code=400,
            message="A file with the same name already exists",
            help="Use another name",
        )
        text = str(error)
        assert "ImageKit upload of 'photos/cat.jpg' failed" in text
        assert "HTTP 400" in text
        assert "already exists" in text
        assert "Use another name" in text

    def test_pickles_with_its_attributes(self) -> None:
        error = ImageKitTimeoutError(
            "deadline passed", operation="delete", name="a.txt", status_code=None
        )
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is ImageKitTimeoutError
        assert (copy.operation, copy.name, str(copy)) == ("delete", "a.txt", str(error))


def test_every_option_is_documented_with_its_fallbacks() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in page.splitlines() if line.startswith("| `")
    }
    assert set(rows) == set(OPTIONS)
    for name, option in OPTIONS.items():
        cells = [cell.strip(" `") for cell in rows[name].split("|")[1:-1]]
        assert cells[1] == (option.setting or "-"), name
        assert cells[2] == (option.setting if option.env else "-"), name


class TestCrashPaths:
    """Values that used to escape the parsers as bare ValueError/OverflowError."""

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("url_endpoint", "https://[not-an-ipv6"),
            ("url_endpoint", "https://ik.imagekit.io:abc/demo"),
            ("base_url", "http://127.0.0.1:99999"),
            ("max_retries", float("nan")),
            ("max_retries", "inf"),
            ("url_expire", float("inf")),
            pytest.param("timeout", 10**400, id="timeout-huge-int"),
            pytest.param("max_retries", 10**400, id="max_retries-huge-int"),
        ],
    )
    def test_refused_with_improperly_configured(self, name: str, value: object) -> None:
        with pytest.raises(ImproperlyConfigured, match=f"'{name}'"):
            resolve(**{**REQUIRED, name: value})

    def test_a_key_in_the_wrong_option_is_not_shown(self) -> None:
        with pytest.raises(ImproperlyConfigured) as info:
            resolve(private_key="k", url_endpoint=SENTINEL_KEY)
        assert SENTINEL_KEY not in str(info.value)
        assert "looks like an API key" in str(info.value)

    def test_a_password_in_a_refused_url_is_not_shown(self) -> None:
        with pytest.raises(ImproperlyConfigured) as info:
            resolve(private_key="k", url_endpoint="https://user:hunter2@ik.example/x?a=1")
        assert "hunter2" not in str(info.value)
        assert "https://***@ik.example/x?a=1" in str(info.value)


class TestValidateValue:
    def test_returns_the_parsed_value(self) -> None:
        found = find_value("timeout", {"timeout": "2.5"}, environ={})
        assert conf.validate_value("timeout", found) == 2.5

    def test_returns_defaults_unparsed(self) -> None:
        found = find_value("private_key", {}, environ={})
        assert conf.validate_value("private_key", found) is conf.REQUIRED

    def test_never_raises_for_a_refused_value(self) -> None:
        with override_settings(IMAGEKIT_TIMEOUT=-1):
            found = find_value("timeout", {}, environ={})
        invalid = conf.validate_value("timeout", found)
        assert isinstance(invalid, conf.InvalidOptionValue)
        assert (invalid.name, invalid.source, invalid.origin_name) == (
            "timeout",
            "setting",
            "IMAGEKIT_TIMEOUT",
        )
        assert "IMAGEKIT_TIMEOUT setting must be a positive number" in invalid.message

    def test_never_shows_a_key(self) -> None:
        found = find_value("private_key", {"private_key": [SENTINEL_KEY]}, environ={})
        invalid = conf.validate_value("private_key", found)
        assert isinstance(invalid, conf.InvalidOptionValue)
        assert SENTINEL_KEY not in invalid.message
