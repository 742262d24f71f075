"""System checks: each ID fires on its misconfiguration and stays silent on the neighbouring
correct one, on every Django of the matrix; no message shows a key; no network."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import django
import django.apps
import django.conf
import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test.utils import isolate_apps

from django_imagekit_storage.checks import check_storages
from tests import settings as test_settings
from tests.backends_for_checks import ProjectStorage
from tests.fake_keys import fake_key

OURS = "django_imagekit_storage.storage.ImageKitStorage"
OURS_SHORT = "django_imagekit_storage.ImageKitStorage"
PROJECT = "tests.backends_for_checks.ProjectStorage"
STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"
IN_MEMORY = "django.core.files.storage.InMemoryStorage"
# Real-looking keys: ImageKit's shape (prefix, then base64-ish).
PRIVATE = fake_key("private", "Lq8sZ3kV0pW7yT2nR5mX9cB1dF4gH6jK=")
PUBLIC = "public_Ab3dE9xQzLmN0pQrStUvWxYz12345="
ENDPOINT = "https://ik.imagekit.io/demo"
VALID = {"private_key": PRIVATE, "url_endpoint": ENDPOINT}
BEFORE_5_1 = django.VERSION < (5, 1)

Settings = Any  # pytest-django's `settings` fixture


def ours(**options: object) -> dict[str, object]:
    return {"BACKEND": OURS, "OPTIONS": options}


def storages(default: object = None, **aliases: object) -> dict[str, object]:
    """A STORAGES dict with Django's static files storage unless given."""
    result: dict[str, object] = {"default": default or {"BACKEND": IN_MEMORY}}
    result["staticfiles"] = {"BACKEND": STATIC}
    result.update(aliases)
    return result


def run(*, deploy: bool = False) -> list[checks.CheckMessage]:
    return [
        message
        for message in checks.run_checks(include_deployment_checks=deploy)
        if message.id and message.id.startswith("django_imagekit_storage.")
    ]


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(str(message.id).rsplit(".", 1)[1] for message in messages)


def only(messages: list[checks.CheckMessage], check_id: str) -> checks.CheckMessage:
    matching = [message for message in messages if str(message.id).endswith(f".{check_id}")]
    assert len(matching) == 1, ids(messages)
    return matching[0]


def text(message: checks.CheckMessage) -> str:
    return f"{message.msg}\n{message.hint}"


@pytest.fixture
def settings_module(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Load settings the way ``manage.py`` does, from a settings module (``Settings``), not
    through override_settings: DEFAULT_FILE_STORAGE behaves differently there on 4.2/5.0."""

    def use(**values: object) -> None:
        module = types.ModuleType("tests._checks_settings_module")
        for name in dir(test_settings):
            if name.isupper() and name != "STORAGES":
                setattr(module, name, getattr(test_settings, name))
        for name, value in values.items():
            setattr(module, name, value)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        loaded = django.conf.Settings(module.__name__)
        monkeypatch.setattr(django.conf.settings, "_wrapped", loaded)

    return use


def test_the_test_settings_are_silent() -> None:
    assert run(deploy=True) == []


def test_a_correct_configuration_yields_no_message(settings: Settings) -> None:
    settings.STORAGES = storages(
        ours(
            private_key=PRIVATE,
            public_key=PUBLIC,
            url_endpoint=ENDPOINT,
            location="media",
            private_files=True,
            timeout=5,
            tags=["site"],
        ),
        staticfiles={
            "BACKEND": OURS_SHORT,
            "OPTIONS": {**VALID, "use_unique_file_name": False, "file_overwrite": True},
        },
    )
    assert run(deploy=True) == []


class TestE001E002Missing:
    @pytest.mark.parametrize(
        ("name", "check_id", "what"),
        [("private_key", "E001", "private key"), ("url_endpoint", "E002", "URL endpoint")],
    )
    def test_fires_when_no_source_has_it(
        self, settings: Settings, name: str, check_id: str, what: str
    ) -> None:
        options = {key: value for key, value in VALID.items() if key != name}
        settings.STORAGES = storages(media=ours(**options))
        message = only(run(), check_id)
        assert isinstance(message, checks.Error)
        setting = f"IMAGEKIT_{name.upper()}"
        assert f"STORAGES['media'] uses ImageKitStorage, but no {what} is set" in message.msg
        assert f"STORAGES['media']['OPTIONS']['{name}']" in message.msg
        assert f"the {setting} setting" in message.msg
        assert f"the {setting} environment variable" in message.msg
        assert setting in str(message.hint)

    @pytest.mark.parametrize("name", ["private_key", "url_endpoint"])
    @pytest.mark.parametrize("source", ["OPTIONS", "setting", "environment"])
    def test_silent_when_any_source_has_it(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str, source: str
    ) -> None:
        options = {key: value for key, value in VALID.items() if key != name}
        setting = f"IMAGEKIT_{name.upper()}"
        if source == "OPTIONS":
            options[name] = VALID[name]
        elif source == "setting":
            setattr(settings, setting, VALID[name])
        else:
            monkeypatch.setenv(setting, VALID[name])
        settings.STORAGES = storages(media=ours(**options))
        assert run() == []

    def test_an_empty_value_counts_as_missing(self, settings: Settings) -> None:
        settings.STORAGES = storages(media=ours(private_key="", url_endpoint=ENDPOINT))
        settings.IMAGEKIT_PRIVATE_KEY = ""
        assert ids(run()) == ["E001"]

    def test_the_short_path_and_subclasses_are_recognised(self, settings: Settings) -> None:
        settings.STORAGES = storages(
            a={"BACKEND": OURS_SHORT}, b={"BACKEND": PROJECT, "OPTIONS": {}}
        )
        assert ids(run()) == ["E001", "E001", "E002", "E002"]

    @pytest.mark.parametrize(
        "backend",
        [
            IN_MEMORY,
            "tests.backends_for_checks.UnrelatedStorage",
            "tests.backends_for_checks.make_storage",
            "no.such.module.Storage",
            "nodots",
        ],
    )
    def test_other_backends_are_left_alone(self, settings: Settings, backend: str) -> None:
        settings.STORAGES = storages(media={"BACKEND": backend, "OPTIONS": {"x": 1}})
        assert run() == []

    def test_applies_to_the_default_alias_on_every_django(self, settings: Settings) -> None:
        # 4.2/5.0 drop the OPTIONS of "default" from the storage under overrides; the
        # checks read the STORAGES setting itself, so they see them.
        settings.STORAGES = storages(ours(url_endpoint=ENDPOINT))
        assert ids(run()) == ["E001"]


class TestE003UnknownOption:
    @pytest.mark.parametrize(
        ("key", "suggestion"),
        [
            ("privat_key", "private_key"),
            ("PRIVATE_KEY", "private_key"),
            ("IMAGEKIT_LOCATION", "location"),
            ("file_overwrites", "file_overwrite"),
        ],
    )
    def test_names_the_closest_valid_option(
        self, settings: Settings, key: str, suggestion: str
    ) -> None:
        settings.STORAGES = storages(ours(**VALID, **{key: PRIVATE}))
        message = only(run(), "E003")
        assert isinstance(message, checks.Error)
        assert f"STORAGES['default']['OPTIONS'] has {key!r}" in message.msg
        assert f"Rename it to {suggestion!r}" in str(message.hint)

    def test_without_a_close_match_lists_the_valid_options(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(**VALID, zzz=1))
        hint = str(only(run(), "E003").hint)
        assert "Valid options: private_key, public_key, url_endpoint" in hint

    def test_a_non_string_key(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(**VALID) | {"OPTIONS": {**VALID, 3: "x"}})
        assert "has 3" in only(run(), "E003").msg

    def test_silent_for_every_valid_option(self, settings: Settings) -> None:
        settings.STORAGES = storages(
            ours(
                **VALID,
                public_key=PUBLIC,
                base_url=None,
                location="m",
                file_overwrite=False,
                use_unique_file_name=True,
                private_files=False,
                signed_urls=None,
                url_expire=60,
                timeout=1,
                upload_timeout=2,
                max_retries=0,
                tags=(),
                custom_metadata={},
            )
        )
        assert run() == []

    def test_a_subclass_accepts_its_own_options(self, settings: Settings) -> None:
        settings.STORAGES = storages(
            {"BACKEND": PROJECT, "OPTIONS": {**VALID, "bucket_label": "x"}},
            other={"BACKEND": PROJECT, "OPTIONS": {**VALID, "bucket_lable": "x"}},
        )
        message = only(run(), "E003")
        assert "STORAGES['other']['OPTIONS'] has 'bucket_lable'" in message.msg


class TestE004Malformed:
    @pytest.mark.parametrize(
        ("config", "problem"),
        [
            (OURS, f"it is {OURS!r}, not a dict"),
            ({"backend": OURS_SHORT}, "it has no 'BACKEND' key (found 'backend'"),
            ({"OPTIONS": VALID}, "it has no 'BACKEND' key"),
            ({"BACKEND": OURS, "OPTIONS": None}, "'OPTIONS' is a NoneType, not a dict"),
            ({"BACKEND": OURS, "OPTIONS": [("private_key", "x")]}, "'OPTIONS' is a list"),
            ({"BACKEND": ProjectStorage}, "'BACKEND' is a type, not a dotted path string"),
            (
                {"BACKEND": "django_imagekit_storage.storages.ImageKitStorage"},
                "django_imagekit_storage defines no such backend",
            ),
            ({"BACKEND": f" {OURS}"}, "it has spaces around the dotted path"),
            ({"Backends": OURS}, "it has no 'BACKEND' key (found 'Backends'"),
            ({"BACKEND": OURS, "options": VALID}, "Django ignores its key 'options'"),
        ],
    )
    def test_fires_for_an_alias_naming_our_backend(
        self, settings: Settings, config: object, problem: str
    ) -> None:
        settings.STORAGES = storages(media=config)
        message = only(run(), "E004")
        assert isinstance(message, checks.Error)
        assert "STORAGES['media'] names ImageKitStorage but is malformed" in message.msg
        assert problem in message.msg
        assert OURS in str(message.hint) or "OPTIONS" in str(message.hint)

    def test_a_malformed_alias_gets_no_other_message(self, settings: Settings) -> None:
        # Fix the shape first: Django would not use the backend at all.
        settings.STORAGES = storages(media={"BACKEND": OURS, "options": {"privat_key": 1}})
        assert ids(run()) == ["E004"]

    @pytest.mark.parametrize(
        "config",
        [IN_MEMORY, {"backend": IN_MEMORY}, {"OPTIONS": {"x": 1}}, None, 42],
    )
    def test_silent_for_other_backends(self, settings: Settings, config: object) -> None:
        settings.STORAGES = storages(media=config)
        assert run() == []

    @pytest.mark.parametrize("value", [None, [("default", {"BACKEND": OURS})], OURS])
    def test_storages_not_a_dict(self, settings: Settings, value: object) -> None:
        if BEFORE_5_1:
            pytest.skip("Django 4.2/5.0 fail on such a STORAGES before any check runs")
        settings.STORAGES = value
        # Directly: Django's own staticfiles check fails on such a STORAGES.
        message = only(check_storages(), "E004")
        assert "The STORAGES setting is" in message.msg
        assert "not a dict" in message.msg
        assert 'STORAGES = {"default": {"BACKEND": ' in str(message.hint)


class TestE005RefusedValue:
    @pytest.mark.parametrize(
        ("options", "setting", "environ", "expected", "where"),
        [
            (
                {"url_endpoint": "ik.imagekit.io/demo"},
                {},
                {},
                "The 'url_endpoint' option must be an absolute http(s) URL",
                "Fix STORAGES['default']['OPTIONS']['url_endpoint']: 'https://ik.imagekit.io/",
            ),
            (
                {"url_endpoint": "https://ik.imagekit.io/demo?tr=w-10"},
                {},
                {},
                "without a query string",
                "STORAGES['default']['OPTIONS']['url_endpoint']",
            ),
            (
                {"timeout": -1},
                {},
                {},
                "The 'timeout' option must be a positive number of seconds, got -1.",
                "e.g. 10",
            ),
            (
                {},
                {"IMAGEKIT_MAX_RETRIES": "two"},
                {},
                "The IMAGEKIT_MAX_RETRIES setting must be a number",
                "Fix the IMAGEKIT_MAX_RETRIES setting",
            ),
            (
                {},
                {},
                {"IMAGEKIT_BASE_URL": "localhost:8000"},
                "The IMAGEKIT_BASE_URL environment variable must be an absolute http(s) URL",
                "Fix the IMAGEKIT_BASE_URL environment variable",
            ),
            ({"location": "../up"}, {}, {}, "'location' option must be a folder path", "media/"),
            ({"tags": "a,b"}, {}, {}, "'tags' option must be a list of tag strings", "['"),
            ({"private_files": "maybe"}, {}, {}, "must be True or False", "True or False"),
            ({"max_retries": float("nan")}, {}, {}, "whole number", "e.g. 2"),
        ],
    )
    def test_fires_naming_the_value_and_where_it_came_from(
        self,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        options: dict[str, object],
        setting: dict[str, object],
        environ: dict[str, str],
        expected: str,
        where: str,
    ) -> None:
        for name, value in setting.items():
            setattr(settings, name, value)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        settings.STORAGES = storages(ours(**{**VALID, **options}))
        message = only(run(), "E005")
        assert isinstance(message, checks.Error)
        assert "STORAGES['default'] uses ImageKitStorage, which would refuse a value" in message.msg
        assert expected in message.msg
        assert where in str(message.hint)

    def test_silent_for_accepted_spellings(self, settings: Settings) -> None:
        settings.IMAGEKIT_TIMEOUT = "2.5"
        settings.IMAGEKIT_PRIVATE_FILES = "off"
        settings.STORAGES = storages(
            ours(
                private_key=PRIVATE,
                max_retries="3",
                location="/media/",
                url_endpoint=f"{ENDPOINT}/",
            )
        )
        assert run() == []


class TestW001DefaultFileStorage:
    def test_in_a_settings_module(self, settings_module: Callable[..., None]) -> None:
        if BEFORE_5_1:
            from django.utils.deprecation import RemovedInDjango51Warning

            # Django's own warning, when it loads the settings; the check adds none.
            with pytest.warns(RemovedInDjango51Warning):
                settings_module(DEFAULT_FILE_STORAGE=OURS)
        else:
            settings_module(DEFAULT_FILE_STORAGE=OURS)
        messages = run()
        message = only(messages, "W001")
        assert isinstance(message, checks.Warning)
        assert f"DEFAULT_FILE_STORAGE is set to {OURS!r}" in message.msg
        assert f'STORAGES = {{"default": {{"BACKEND": "{OURS}"}}, "staticfiles"' in str(
            message.hint
        )
        if BEFORE_5_1:
            assert "deprecated" in message.msg
            assert "still copies it into STORAGES['default']" in message.msg
            assert "Django 5.1 and later ignore it" in message.msg
            # Django copied it into STORAGES["default"]: the storage is in use.
            assert ids(messages) == ["E001", "E002", "W001"]
        else:
            assert "ignores it: STORAGES['default'] uses " in message.msg
            assert "FileSystemStorage' (the local disk under MEDIA_ROOT)" in message.msg
            assert ids(messages) == ["W001"]

    def test_together_with_storages_in_a_settings_module(
        self, settings_module: Callable[..., None]
    ) -> None:
        if BEFORE_5_1:
            # Django refuses the settings outright: the checks never run.
            with pytest.raises(ImproperlyConfigured, match="mutually exclusive"):
                settings_module(DEFAULT_FILE_STORAGE=OURS, STORAGES=storages(ours(**VALID)))
            return
        settings_module(DEFAULT_FILE_STORAGE=IN_MEMORY, STORAGES=storages(ours(**VALID)))
        message = only(run(), "W001")
        assert f"ignores it: STORAGES['default'] uses {OURS!r}" in message.msg

    def test_same_backend_in_both_on_5_1_and_later(
        self, settings_module: Callable[..., None]
    ) -> None:
        if BEFORE_5_1:
            pytest.skip("both in one settings module are an error before Django 5.1")
        settings_module(DEFAULT_FILE_STORAGE=OURS, STORAGES=storages(ours(**VALID)))
        message = only(run(), "W001")
        assert "already uses the same backend" in message.msg
        assert message.hint == "Delete the DEFAULT_FILE_STORAGE setting."

    def test_silent_for_storages_in_a_settings_module(
        self, settings_module: Callable[..., None]
    ) -> None:
        # 4.2/5.0 fill DEFAULT_FILE_STORAGE from STORAGES themselves: that is not the project's.
        settings_module(STORAGES=storages(ours(**VALID)))
        assert run() == []

    def test_silent_when_tests_override_storages(self, settings: Settings) -> None:
        # 4.2/5.0 write STORAGES["default"]["BACKEND"] into DEFAULT_FILE_STORAGE of the
        # override, and is_overridden("DEFAULT_FILE_STORAGE") then says True.
        settings.STORAGES = storages(ours(**VALID))
        settings.STORAGES = storages(ours(**VALID), other=ours(**VALID))
        assert run() == []

    def test_an_override_of_default_file_storage(self, settings: Settings) -> None:
        # A fresh STORAGES first: 4.2/5.0 write into the current STORAGES dict in place.
        settings.STORAGES = storages()
        if BEFORE_5_1:
            from django.utils.deprecation import RemovedInDjango51Warning

            with pytest.warns(RemovedInDjango51Warning):
                settings.DEFAULT_FILE_STORAGE = "tests.backends_for_checks.UnrelatedStorage"
        else:
            settings.DEFAULT_FILE_STORAGE = "tests.backends_for_checks.UnrelatedStorage"
        message = only(run(), "W001")
        assert "DEFAULT_FILE_STORAGE is set to 'tests.backends_for_checks" in message.msg
        if not BEFORE_5_1:
            assert f"STORAGES['default'] uses {IN_MEMORY!r}" in message.msg


class TestW002UnusedCredentials:
    @pytest.mark.parametrize("source", ["setting", "environment"])
    @pytest.mark.parametrize("name", ["IMAGEKIT_PRIVATE_KEY", "IMAGEKIT_URL_ENDPOINT"])
    def test_fires_and_says_where_media_goes(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch, source: str, name: str
    ) -> None:
        value = PRIVATE if name == "IMAGEKIT_PRIVATE_KEY" else ENDPOINT
        if source == "setting":
            setattr(settings, name, value)
        else:
            monkeypatch.setenv(name, value)
        message = only(run(), "W002")
        assert isinstance(message, checks.Warning)
        kind = "setting" if source == "setting" else "environment variable"
        assert f"ImageKit is configured (the {name} {kind})" in message.msg
        assert "no STORAGES alias uses ImageKitStorage" in message.msg
        assert f"media goes to {IN_MEMORY!r}" in message.msg
        assert f'"default": {{"BACKEND": "{OURS}"}}' in str(message.hint)

    def test_names_the_local_disk(self, settings: Settings) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        settings.STORAGES = storages({"BACKEND": "django.core.files.storage.FileSystemStorage"})
        assert "(the local disk under MEDIA_ROOT)" in only(run(), "W002").msg

    def test_silent_when_an_alias_uses_it(self, settings: Settings) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        settings.STORAGES = storages(media=ours(url_endpoint=ENDPOINT))
        assert run() == []

    def test_silent_when_a_model_field_uses_an_instance(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        assert ids(run()) == ["W002"]
        with isolate_apps("django_imagekit_storage") as registry:

            class Photo(models.Model):
                image = models.FileField(storage=ProjectStorage())

                class Meta:
                    app_label = "django_imagekit_storage"

                def __str__(self) -> str:
                    return self.image.name

            monkeypatch.setattr(django.apps.apps, "get_models", registry.get_models)
            assert run() == []

    def test_only_w001_when_default_file_storage_names_it(
        self, settings_module: Callable[..., None]
    ) -> None:
        if BEFORE_5_1:
            pytest.skip("before 5.1 DEFAULT_FILE_STORAGE fills STORAGES['default']")
        settings_module(DEFAULT_FILE_STORAGE=OURS, IMAGEKIT_PRIVATE_KEY=PRIVATE)
        assert ids(run()) == ["W001"]


class TestW003SwappedKeys:
    def test_private_key_with_the_public_prefix(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(private_key=PUBLIC, url_endpoint=ENDPOINT))
        message = only(run(), "W003")
        assert isinstance(message, checks.Warning)
        assert (
            "STORAGES['default']: the private key from STORAGES['default']['OPTIONS']"
            "['private_key'] starts with 'public_'"
        ) in message.msg
        assert "starts with 'private_'" in str(message.hint)

    def test_public_key_with_the_private_prefix(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("IMAGEKIT_PUBLIC_KEY", PRIVATE)
        settings.STORAGES = storages(ours(**VALID))
        message = only(run(), "W003")
        assert "public key from the IMAGEKIT_PUBLIC_KEY environment variable" in message.msg
        assert "starts with 'private_'" in message.msg

    def test_silent_with_the_right_prefixes(self, settings: Settings) -> None:
        settings.IMAGEKIT_PUBLIC_KEY = PUBLIC
        settings.STORAGES = storages(ours(**VALID))
        assert run() == []


class TestW004UrlEndpoint:
    def test_plain_http_for_a_public_host(self, settings: Settings) -> None:
        settings.IMAGEKIT_URL_ENDPOINT = "http://ik.imagekit.io/demo"
        settings.STORAGES = storages(ours(private_key=PRIVATE))
        message = only(run(), "W004")
        assert isinstance(message, checks.Warning)
        assert "STORAGES['default']: the URL endpoint 'http://ik.imagekit.io/demo'" in message.msg
        assert "from the IMAGEKIT_URL_ENDPOINT setting" in message.msg
        assert "https://ik.imagekit.io/your_imagekit_id" in str(message.hint)

    def test_a_password_in_the_url_is_reported_not_shown(self, settings: Settings) -> None:
        settings.STORAGES = storages(
            ours(private_key=PRIVATE, url_endpoint="https://user:hunter2secret@ik.example/x")
        )
        message = only(run(), "W004")
        assert "user name or password" in message.msg
        assert "hunter2secret" not in text(message)

    @pytest.mark.parametrize(
        "url", [ENDPOINT, "http://127.0.0.1:8000/demo", "http://localhost:9/e", "http://[::1]:9"]
    )
    def test_silent_for_https_and_loopback_http(self, settings: Settings, url: str) -> None:
        settings.STORAGES = storages(ours(private_key=PRIVATE, url_endpoint=url))
        assert run() == []


class TestW005Staticfiles:
    def test_fires_with_unique_file_names(self, settings: Settings) -> None:
        settings.STORAGES = storages(staticfiles=ours(**VALID))
        message = only(run(), "W005")
        assert isinstance(message, checks.Warning)
        assert "STORAGES['staticfiles'] uses ImageKitStorage with unique file names" in message.msg
        assert "{% static" in message.msg
        assert 'Add "use_unique_file_name": False to STORAGES[\'staticfiles\']["OPTIONS"]' in str(
            message.hint
        )

    def test_silent_without_them(self, settings: Settings) -> None:
        settings.STORAGES = storages(staticfiles=ours(**VALID, use_unique_file_name=False))
        assert run() == []

    def test_silent_when_the_setting_turns_them_off(self, settings: Settings) -> None:
        settings.IMAGEKIT_USE_UNIQUE_FILE_NAME = False
        settings.STORAGES = storages(staticfiles=ours(**VALID))
        assert run() == []

    def test_only_for_the_staticfiles_alias(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(**VALID), static_assets=ours(**VALID))
        assert run() == []


class TestW006PrivateFilesUnsigned:
    def test_fires(self, settings: Settings) -> None:
        settings.IMAGEKIT_SIGNED_URLS = False
        settings.STORAGES = storages(ours(**VALID, private_files=True))
        message = only(run(), "W006")
        assert isinstance(message, checks.Warning)
        assert "STORAGES['default'] uploads private files" in message.msg
        assert "signed_urls is False (from the IMAGEKIT_SIGNED_URLS setting)" in message.msg
        assert "signed_urls'] = True" in str(message.hint)

    @pytest.mark.parametrize("signed_urls", [None, True])
    def test_silent_when_urls_are_signed(self, settings: Settings, signed_urls: object) -> None:
        settings.STORAGES = storages(ours(**VALID, private_files=True, signed_urls=signed_urls))
        assert run() == []

    def test_silent_for_public_files(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(**VALID, signed_urls=False))
        assert run() == []


class TestW007DeployLocalHosts:
    @pytest.mark.parametrize(
        "base_url",
        ["http://127.0.0.1:8000", "http://localhost:9", "http://10.0.0.5", "http://0.0.0.0:1"],
    )
    def test_fires_only_with_deploy(self, settings: Settings, base_url: str) -> None:
        settings.STORAGES = storages(ours(**VALID, base_url=base_url))
        assert run() == []
        message = only(run(deploy=True), "W007")
        assert isinstance(message, checks.Warning)
        assert "STORAGES['default']: base_url from STORAGES['default']['OPTIONS']['base_url']" in (
            message.msg
        )
        assert "loopback or private address" in message.msg
        assert "Unset base_url" in str(message.hint)

    def test_a_local_url_endpoint(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(private_key=PRIVATE, url_endpoint="http://127.0.0.1:9/e"))
        assert "url_endpoint from" in only(run(deploy=True), "W007").msg

    @pytest.mark.parametrize("base_url", [None, "https://api.imagekit.io", "https://proxy.example"])
    def test_silent_for_the_cloud_or_a_public_proxy(
        self, settings: Settings, base_url: str | None
    ) -> None:
        settings.STORAGES = storages(ours(**VALID, base_url=base_url))
        assert run(deploy=True) == []


class TestRegistration:
    def test_manage_py_check_reports_errors(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(url_endpoint=ENDPOINT))
        with pytest.raises(SystemCheckError) as info:
            call_command("check")
        assert "(django_imagekit_storage.E001)" in str(info.value)

    def test_manage_py_check_prints_warnings(self, settings: Settings) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        out, err = io.StringIO(), io.StringIO()
        call_command("check", stdout=out, stderr=err)
        assert "(django_imagekit_storage.W002)" in err.getvalue() + out.getvalue()

    def test_deploy_and_tag(self, settings: Settings) -> None:
        settings.STORAGES = storages(ours(**VALID, base_url="http://127.0.0.1:9"))
        out, err = io.StringIO(), io.StringIO()
        call_command("check", "--deploy", "--tag", "imagekit_storage", stdout=out, stderr=err)
        output = err.getvalue() + out.getvalue()
        assert "(django_imagekit_storage.W007)" in output
        assert "(security." not in output

    def test_silenced(self, settings: Settings) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        settings.SILENCED_SYSTEM_CHECKS = ["django_imagekit_storage.W002"]
        out = io.StringIO()
        call_command("check", stdout=out, stderr=io.StringIO())
        assert "1 silenced" in out.getvalue()


class TestSecrets:
    def test_no_message_contains_a_key(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        other_private = fake_key("private", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0F=")
        monkeypatch.setenv("IMAGEKIT_PUBLIC_KEY", other_private)
        settings.IMAGEKIT_PRIVATE_KEY = f"  {PUBLIC}  "
        settings.STORAGES = storages(
            ours(private_key=f"{PRIVATE}\n", url_endpoint=PRIVATE, base_url=PRIVATE),
            staticfiles=ours(privat_key=PRIVATE, url_endpoint=f"http://x.example/{PRIVATE}"),
            a=ours(private_key=[PRIVATE], public_key=PRIVATE, url_endpoint=ENDPOINT),
            b={"BACKEND": OURS, "OPTIONS": {PRIVATE: 1}},
            c={"BACKEND": "django_imagekit_storage.nope", "OPTIONS": {"private_key": PRIVATE}},
            d=ours(url_endpoint="http://10.0.0.1/x", base_url=f"https://ik.example/{PRIVATE}"),
        )
        messages = run(deploy=True)
        assert {"E003", "E004", "E005", "W003", "W004", "W005", "W007"} <= set(ids(messages))
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(SystemCheckError) as info:
            call_command("check", "--deploy", stdout=out, stderr=err)
        outputs = [text(message) for message in messages]
        outputs += [str(info.value), out.getvalue(), err.getvalue()]
        for output in outputs:
            for secret in (PRIVATE, PUBLIC, other_private, PRIVATE[8:], PUBLIC[7:]):
                assert secret not in output

    def test_a_password_in_a_refused_url_is_not_shown(self, settings: Settings) -> None:
        settings.STORAGES = storages(
            ours(private_key=PRIVATE, url_endpoint="https://u:pw-Secret-1@h.example/x?q=1")
        )
        message = only(run(), "E005")
        assert "pw-Secret-1" not in text(message)

    def test_w002_names_settings_not_values(self, settings: Settings) -> None:
        settings.IMAGEKIT_PRIVATE_KEY = PRIVATE
        settings.IMAGEKIT_PUBLIC_KEY = PUBLIC
        message = only(run(), "W002")
        assert PRIVATE not in text(message)
        assert PUBLIC not in text(message)
        assert "IMAGEKIT_PRIVATE_KEY setting, the IMAGEKIT_PUBLIC_KEY setting" in message.msg


class TestNeverRaises:
    @pytest.mark.parametrize(
        "options",
        [
            {"timeout": 10**400, "max_retries": "inf", "url_expire": float("nan")},
            {"url_endpoint": "https://[::1", "base_url": "http://h:port"},
            {"tags": 5, "custom_metadata": [1], "location": None, "private_key": object()},
            {"url_endpoint": b"https://ik.imagekit.io/x", "signed_urls": "sometimes"},
        ],
    )
    def test_broken_values_become_messages(
        self, settings: Settings, options: dict[str, object]
    ) -> None:
        settings.STORAGES = storages(ours(**{**VALID, **options}))
        messages = run(deploy=True)
        assert messages
        assert {str(message.id)[-4:] for message in messages} <= {"E005", "E001", "E002"}

    @pytest.mark.parametrize(
        "value",
        [{}, {"default": None}, {"default": {"BACKEND": None}}, {1: {"BACKEND": OURS}}],
    )
    def test_odd_storages(self, settings: Settings, value: object) -> None:
        settings.STORAGES = value
        run(deploy=True)

    def test_nothing_is_printed_or_logged(
        self,
        settings: Settings,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level("DEBUG")
        settings.IMAGEKIT_PUBLIC_KEY = PRIVATE
        for config in (
            storages(ours(timeout="abc", base_url="http://10.0.0.1"), staticfiles=ours()),
            storages({"BACKEND": OURS, "OPTIONS": [1]}, broken=OURS),
            storages(
                ours(private_key=PRIVATE, privat_key="x", url_endpoint="http://cdn.example/x")
            ),
        ):
            settings.STORAGES = config
            assert run(deploy=True)
        assert capfd.readouterr() == ("", "")
        assert [r for r in caplog.records if r.name.startswith("django_imagekit_storage")] == []


class TestNoNetwork:
    @pytest.fixture
    def no_network(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a check touched the network")

        for name in ("getaddrinfo", "create_connection", "gethostbyname"):
            monkeypatch.setattr(socket, name, refuse)
        monkeypatch.setattr(socket.socket, "connect", refuse)

    @pytest.mark.usefixtures("no_network")
    def test_checks_resolve_and_connect_nothing(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("IMAGEKIT_PRIVATE_KEY", PRIVATE)
        settings.STORAGES = storages(
            ours(url_endpoint="https://ik.imagekit.io/demo", base_url="https://proxy.example"),
            staticfiles=ours(url_endpoint="http://cdn.example/x", base_url="http://10.1.1.1"),
        )
        assert ids(run(deploy=True)) == ["W004", "W005", "W007"]

    def test_checks_import_neither_the_storage_nor_the_sdk(self) -> None:
        code = (
            "import sys, django\n"
            "from django.conf import settings\n"
            "settings.configure(INSTALLED_APPS=['django_imagekit_storage'], STORAGES={\n"
            f"  'default': {{'BACKEND': {OURS!r}, 'OPTIONS': {{'url_endpoint': 'x'}}}},\n"
            f"  'short': {{'BACKEND': {OURS_SHORT!r}}}}},\n"
            f"  IMAGEKIT_PRIVATE_KEY={PRIVATE!r})\n"
            "django.setup()\n"
            "from django.core.checks import run_checks\n"
            "found = sorted(m.id for m in run_checks(include_deployment_checks=True))\n"
            "loaded = [m for m in ('imagekitio', 'httpx', 'PIL', 'django_imagekit_storage.storage',"
            " 'django_imagekit_storage.client') if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "print(found)\n"
        )
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            env={"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "django_imagekit_storage.E005" in result.stdout
        assert "django_imagekit_storage.E002" in result.stdout


def test_every_check_id_is_documented() -> None:
    import re
    from pathlib import Path

    import django_imagekit_storage.checks as module

    emitted = set(re.findall(r'[."]([EW]\d{3})"', Path(module.__file__).read_text()))
    page = (Path(__file__).parents[1] / "docs" / "checks.md").read_text()
    headings = set(re.findall(r"^### django_imagekit_storage\.([EW]\d{3}): ", page, re.MULTILINE))
    rows = set(re.findall(r"^\| \[([EW]\d{3})\]\(#", page, re.MULTILINE))
    assert emitted == headings == rows
    assert len(emitted) == 12
