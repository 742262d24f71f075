"""ImageKitStorage: Django's storage contract, through the real SDK over real HTTP to the
stand-in server. Request counts come from the server's own log."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import django
import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.utils import timezone as django_timezone

import django_imagekit_storage
from django_imagekit_storage.exceptions import (
    ImageKitAuthenticationError,
    ImageKitConnectionError,
    ImageKitFileExistsError,
    ImageKitStorageError,
    ImageKitTimeoutError,
)
from django_imagekit_storage.storage import FileInfo, ImageKitStorage
from django_imagekit_storage.testing import FakeImageKitServer
from tests.helpers import ForwardOnlyStream

SECRET = "private_SENTINEL_do_not_leak"
UNIQUE = re.compile(r"_[A-Za-z0-9]{9}")
DJANGO_51 = django.VERSION >= (5, 1)

MakeStorage = Callable[..., ImageKitStorage]


pytestmark = pytest.mark.usefixtures("quick_backoff")


@pytest.fixture
def storage(make_storage: MakeStorage, server: FakeImageKitServer) -> ImageKitStorage:
    storage = make_storage(location="media")
    server.clear_requests()
    return storage


@pytest.fixture
def overwrite_storage(make_storage: MakeStorage) -> ImageKitStorage:
    return make_storage(location="media", file_overwrite=True)


@pytest.fixture
def exact_storage(make_storage: MakeStorage) -> ImageKitStorage:
    return make_storage(location="media", use_unique_file_name=False)


def stored_paths(server: FakeImageKitServer) -> list[str]:
    return sorted(server.files)


def routes(server: FakeImageKitServer) -> list[str]:
    return [request.route for request in server.requests]


# --- configuration -----------------------------------------------------------------


def test_unknown_option_names_the_closest() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"'file_overwrites'.*'file_overwrite'"):
        ImageKitStorage(private_key=SECRET, url_endpoint="https://ik.example/x", file_overwrites=1)


def test_missing_key_says_where_to_set_it(settings: Any) -> None:
    settings.IMAGEKIT_PRIVATE_KEY = None
    with pytest.raises(ImproperlyConfigured) as caught:
        ImageKitStorage(url_endpoint="https://ik.example/x")
    message = str(caught.value)
    assert "'private_key'" in message
    assert "OPTIONS" in message
    assert "IMAGEKIT_PRIVATE_KEY" in message


def test_settings_are_read_when_created(settings: Any) -> None:
    settings.IMAGEKIT_PRIVATE_KEY = SECRET
    settings.IMAGEKIT_URL_ENDPOINT = "https://ik.example/one/"
    settings.IMAGEKIT_LOCATION = "/media/"
    storage = ImageKitStorage()
    assert storage.settings.url_endpoint == "https://ik.example/one"
    assert storage.settings.location == "media"
    settings.IMAGEKIT_URL_ENDPOINT = "https://ik.example/two"
    assert ImageKitStorage().settings.url_endpoint == "https://ik.example/two"


def test_default_storage_follows_setting_changes(imagekit_settings: FakeImageKitServer) -> None:
    name = default_storage.save("hello.txt", ContentFile(b"hi"))
    assert imagekit_settings.files[f"/{name}"].data == b"hi"
    default_storage.close()


def test_top_level_exports() -> None:
    assert django_imagekit_storage.ImageKitStorage is ImageKitStorage
    assert django_imagekit_storage.FileInfo is FileInfo


def test_importing_the_storage_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "import django_imagekit_storage.storage\n"
        "heavy = [m for m in ('imagekitio', 'httpx', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_creating_a_storage_makes_no_request(
    make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    make_storage()
    assert server.count() == 0


def test_deconstruct_leaves_keys_out() -> None:
    storage = ImageKitStorage(
        private_key=SECRET,
        public_key="public_SENTINEL",
        url_endpoint="https://ik.example/x",
        location="media",
    )
    path, args, kwargs = storage.deconstruct()
    assert path == "django_imagekit_storage.storage.ImageKitStorage"
    assert args == ()
    assert kwargs == {"url_endpoint": "https://ik.example/x", "location": "media"}
    assert "SENTINEL" not in repr(storage.deconstruct())


def test_deconstruct_of_a_subclass_keeps_its_path() -> None:
    storage = SubclassStorage(private_key=SECRET, url_endpoint="https://ik.example/x")
    path, _, kwargs = storage.deconstruct()
    assert path == f"{__name__}.SubclassStorage"
    assert kwargs == {"url_endpoint": "https://ik.example/x"}


def test_repr_shows_no_secret() -> None:
    storage = ImageKitStorage(
        private_key=SECRET, public_key="public_SENTINEL", url_endpoint="https://ik.example/x"
    )
    assert "SENTINEL" not in repr(storage)
    assert "SENTINEL" not in repr(storage.settings)
    assert "https://ik.example/x" in repr(storage)


class SubclassStorage(ImageKitStorage):
    pass


# --- names ---------------------------------------------------------------------------


@pytest.fixture
def offline() -> ImageKitStorage:
    # Pure name logic: nothing listens at this address and nothing may be asked.
    return ImageKitStorage(
        private_key=SECRET, url_endpoint="https://ik.example/x", base_url="http://127.0.0.1:9"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("my file (1).jpg", "my_file_1.jpg"),
        ("photo.JPG", "photo.JPG"),
        ("été 文件.txt", "_t____.txt"),
        ("a+b@c#d.png", "abcd.png"),
        ("  spaced  .txt ", "spaced__.txt"),
    ],
)
def test_get_valid_name(offline: ImageKitStorage, given: str, expected: str) -> None:
    assert offline.get_valid_name(given) == expected


def test_get_valid_name_refuses_what_django_refuses(offline: ImageKitStorage) -> None:
    with pytest.raises(SuspiciousFileOperation):
        offline.get_valid_name("..")


def test_unique_name_has_our_suffix(offline: ImageKitStorage) -> None:
    name = offline.get_available_name("dir/photo.jpg")
    assert re.fullmatch(r"dir/photo_[A-Za-z0-9]{9}\.jpg", name), name
    assert offline.get_available_name("dir/photo.jpg") != name


def test_unique_name_reserves_the_suffix_in_max_length(offline: ImageKitStorage) -> None:
    long = "d/" + "x" * 200 + ".jpeg"
    name = offline.get_available_name(long, max_length=30)
    assert len(name) == 30
    assert re.fullmatch(r"d/x{13}_[A-Za-z0-9]{9}\.jpeg", name), name
    # It fits as it is: nothing cut.
    assert len(offline.get_available_name("d/abc.jpeg", max_length=30)) == 20


def test_unique_name_impossible_in_max_length(offline: ImageKitStorage) -> None:
    with pytest.raises(SuspiciousFileOperation, match="max_length=15"):
        offline.get_available_name("folder/a.jpeg", max_length=15)


def test_unique_name_sanitised_like_imagekit(offline: ImageKitStorage) -> None:
    name = offline.get_available_name("my dir/a b&c.txt")
    assert re.fullmatch(r"my_dir/a_b_c_[A-Za-z0-9]{9}\.txt", name), name


def test_overwrite_name_is_exact() -> None:
    storage = ImageKitStorage(
        private_key=SECRET, url_endpoint="https://ik.example/x", file_overwrite=True
    )
    assert storage.get_available_name("a/b.txt", max_length=7) == "a/b.txt"
    with pytest.raises(SuspiciousFileOperation, match="max_length=6"):
        storage.get_available_name("a/b.txt", max_length=6)


BAD_NAMES = ["../x.txt", "a/../../x.txt", "/abs.txt", "a\\b.txt", "x\x00y.txt"]


def _call(storage: ImageKitStorage, method: str, name: str) -> object:
    content = ContentFile(b"data", name="x.txt")
    calls: dict[str, Callable[[], object]] = {
        "save": lambda: storage.save(name, content),
        "save_exact": lambda: storage.save_exact(name, content),
        "open": lambda: storage.open(name),
        "exists": lambda: storage.exists(name),
        "size": lambda: storage.size(name),
        "delete": lambda: storage.delete(name),
        "url": lambda: storage.url(name),
        "stat": lambda: storage.stat(name),
        "get_created_time": lambda: storage.get_created_time(name),
        "get_modified_time": lambda: storage.get_modified_time(name),
        "get_available_name": lambda: storage.get_available_name(name),
        "listdir": lambda: storage.listdir(name),
        "iter_files": lambda: list(storage.iter_files(name)),
    }
    return calls[method]()


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "method",
    [
        "save",
        "save_exact",
        "open",
        "exists",
        "size",
        "delete",
        "url",
        "stat",
        "get_created_time",
        "get_modified_time",
        "get_available_name",
        "listdir",
        "iter_files",
    ],
)
def test_dangerous_names_refused_everywhere(
    storage: ImageKitStorage, server: FakeImageKitServer, method: str, name: str
) -> None:
    with pytest.raises(SuspiciousFileOperation):
        _call(storage, method, name)
    assert server.count() == 0


@pytest.mark.parametrize("name", ["", ".", "...", "dir/..."])
def test_names_that_name_no_file(
    storage: ImageKitStorage, server: FakeImageKitServer, name: str
) -> None:
    with pytest.raises(SuspiciousFileOperation):
        storage.save(name, ContentFile(b"x"))
    assert server.count() == 0


# --- save and read back ------------------------------------------------------------


def test_save_open_exists_delete_round_trip(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    name = storage.save("docs/report.pdf", ContentFile(b"%PDF-1.4 data"))
    assert re.fullmatch(r"docs/report_[A-Za-z0-9]{9}\.pdf", name), name
    assert stored_paths(server) == [f"/media/{name}"]
    assert storage.exists(name)
    assert storage.size(name) == 13
    with storage.open(name) as handle:
        assert handle.read() == b"%PDF-1.4 data"
    storage.delete(name)
    assert not storage.exists(name)
    assert server.files == {}


NAMES_FOR_EXISTS = ["d", "d/", "d/sub", "d/x.txt", "d/sub/y.txt", "nothing", "d/nothing", "x.txt"]


def test_exists_answers_for_folders_as_file_system_storage_does(
    storage: ImageKitStorage, server: FakeImageKitServer, tmp_path: Path
) -> None:
    local = FileSystemStorage(location=tmp_path)
    for name in ("d/x.txt", "d/sub/y.txt"):
        server.add_file(f"/media/{name}", b"x")
        local.save(name, ContentFile(b"x"))
    server.clear_requests()
    answers = {name: storage.exists(name) for name in NAMES_FOR_EXISTS}
    assert answers == {name: local.exists(name) for name in NAMES_FOR_EXISTS}
    assert answers["d"] is answers["d/sub"] is True
    # One search per name, folder or file, found or not.
    assert routes(server) == ["list"] * len(NAMES_FOR_EXISTS)


def test_exists_of_a_file_costs_one_search_or_none_when_cached(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.add_file("/media/theirs.txt", b"x")
    assert storage.exists("theirs.txt")
    assert routes(server) == ["list"]
    name = storage.save("mine.txt", ContentFile(b"x"))
    server.clear_requests()
    assert storage.exists(name)
    assert routes(server) == []


def test_delete_with_a_stale_cached_id_deletes_the_file_now_under_the_name(
    storage: ImageKitStorage, make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    name = storage.save("stale.txt", ContentFile(b"first"))  # its file id is now cached
    other = make_storage(location="media")
    other.delete(name)  # behind the first storage's back...
    other.save_exact(name, ContentFile(b"second upload"))  # ...and uploaded again: a new id
    new_id = server.files[f"/media/{name}"].file_id
    server.clear_requests()
    storage.delete(name)
    assert server.files == {}, "a stale cache must not make delete() delete nothing"
    # The stale id's 404, one search, then the file the name holds now.
    assert routes(server) == ["delete", "list", "delete"]
    assert server.requests[-1].path.endswith(new_id)
    server.clear_requests()
    storage.delete(name)  # forgotten: a search finds nothing, no delete is sent
    assert routes(server) == ["list"]


def test_delete_file_deletes_exactly_the_listed_file_by_id(
    storage: ImageKitStorage, server: FakeImageKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.add_file("/media/d/listed.txt", b"listed")
    (info,) = storage.iter_files("d")
    server.clear_requests()
    caplog.set_level(logging.INFO, logger="django_imagekit_storage.storage")
    assert storage.delete_file(info) is True
    assert routes(server) == ["delete"]  # no search
    assert server.files == {}
    assert any(
        r.getMessage().startswith("deleted media/d/listed.txt (6 bytes)") for r in caplog.records
    )
    # Gone already: False, still no search.
    server.clear_requests()
    assert storage.delete_file(info) is False
    assert routes(server) == ["delete"]


def test_delete_file_leaves_a_new_file_under_the_same_name_and_drops_the_cache(
    storage: ImageKitStorage, make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    name = storage.save("same.txt", ContentFile(b"one"))
    info = storage.stat(name)
    assert info is not None
    other = make_storage(location="media")
    other.delete(name)
    other.save_exact(name, ContentFile(b"two!"))  # a new file id under the same name
    assert storage.delete_file(info) is False
    assert server.files[f"/media/{name}"].data == b"two!"
    server.clear_requests()
    assert storage.size(name) == 4  # the cached entry was dropped: a search tells the truth
    assert routes(server) == ["list"]


def test_delete_file_refuses_what_is_not_a_file_info(storage: ImageKitStorage) -> None:
    with pytest.raises(TypeError, match="FileInfo"):
        storage.delete_file("a.txt")  # type: ignore[arg-type]
    with pytest.raises(SuspiciousFileOperation):
        storage.delete_file(FileInfo("../a.txt", 1, "id", None, None, False))


def test_delete_with_a_stale_cached_id_and_nothing_there_logs_no_deletion(
    storage: ImageKitStorage,
    make_storage: MakeStorage,
    server: FakeImageKitServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = storage.save("gone.txt", ContentFile(b"x"))
    make_storage(location="media").delete(name)
    server.clear_requests()
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="django_imagekit_storage.storage")
    storage.delete(name)
    assert routes(server) == ["delete", "list"]
    messages = [r.getMessage() for r in caplog.records if r.name.endswith(".storage")]
    assert not any(message.startswith("deleted ") for message in messages), messages
    assert any("already gone" in message for message in messages), messages


@pytest.mark.parametrize("mode", ["default", "overwrite", "exact"])
def test_pathlib_names_in_every_method(
    make_storage: MakeStorage, server: FakeImageKitServer, mode: str
) -> None:
    # As Django's test_file_methods_pathlib_path, in each naming mode.
    options = {
        "default": {},
        "overwrite": {"file_overwrite": True},
        "exact": {"use_unique_file_name": False},
    }[mode]
    storage = make_storage(location="media", **options)
    assert not storage.exists(Path("dir/test.file"))
    name = storage.save(Path("dir/test.file"), ContentFile(b"custom contents"))
    path = Path(name)
    assert storage.exists(path)
    assert storage.size(path) == 15
    assert storage.url(path) == f"{server.url_endpoint}/media/{name}"
    assert storage.get_modified_time(path) >= storage.get_created_time(path)
    with storage.open(path) as handle:
        assert handle.read() == b"custom contents"
    assert storage.listdir(Path("dir")) == ([], [path.name])
    assert [info.name for info in storage.iter_files(Path("dir"))] == [name]
    storage.delete(path)
    assert server.files == {}


def test_save_without_a_name_uses_the_content_name(storage: ImageKitStorage) -> None:
    name = storage.save(None, ContentFile(b"abc", name="given.txt"))
    assert UNIQUE.sub("", name) == "given.txt"


@pytest.mark.parametrize("content", [ContentFile(b"abc"), io.BytesIO(b"abc")])
def test_save_without_any_name_says_what_to_do(
    storage: ImageKitStorage, server: FakeImageKitServer, content: Any
) -> None:
    with pytest.raises(ValueError, match=r"needs a name.*name=\.\.\."):
        storage.save(None, content)
    assert server.count() == 0


def test_default_mode_costs_one_upload_and_no_search(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    name = storage.save("a.txt", ContentFile(b"abc"))
    assert routes(server) == ["upload"]
    server.clear_requests()
    # What the save learned is remembered: no lookup afterwards.
    assert storage.exists(name)
    assert storage.size(name) == 3
    storage.url(name)
    assert server.count() == 0
    storage.delete(name)
    assert routes(server) == ["delete"]


def test_operations_on_unknown_names_cost_one_search(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.add_file("/media/known.txt", b"12345")
    assert storage.exists("known.txt")
    assert routes(server) == ["list"]
    server.clear_requests()
    assert not storage.exists("unknown.txt")
    assert routes(server) == ["list"]
    server.clear_requests()
    storage.delete("unknown.txt")
    assert routes(server) == ["list"]


def test_url_makes_no_request(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    url = storage.url("a/b c.jpg")
    assert url == f"{server.url_endpoint}/media/a/b%20c.jpg"
    assert server.count() == 0


def test_url_with_transformation(storage: ImageKitStorage) -> None:
    url = storage.url("a.jpg", transformation=[{"width": 300, "height": 200}])
    assert url.endswith("/media/a.jpg?tr=w-300,h-200")


def test_signed_urls(make_storage: MakeStorage, server: FakeImageKitServer) -> None:
    storage = make_storage(signed_urls=True, url_expire=600)
    first, second = storage.url("a.jpg"), storage.url("a.jpg")
    assert first == second
    assert "ik-t=" in first
    assert "ik-s=" in first
    expiry = int(re.search(r"ik-t=(\d+)", first).group(1))  # type: ignore[union-attr]
    assert expiry >= datetime.now(tz=timezone.utc).timestamp() + 600 - 1
    assert server.count() == 0


@pytest.mark.parametrize("transformation", [None, [{"width": 300}]])
def test_url_expire_signs_a_public_storage_url(
    storage: ImageKitStorage,
    server: FakeImageKitServer,
    transformation: list[dict[str, object]] | None,
) -> None:
    import httpx

    server.add_file("/media/dir/private file.txt", b"for your eyes", is_private=True)
    unsigned = storage.url("dir/private file.txt", transformation=transformation)
    signed = storage.url("dir/private file.txt", transformation=transformation, expire=60)
    assert "ik-s=" not in unsigned
    expiry = int(re.search(r"ik-t=(\d+)", signed).group(1))  # type: ignore[union-attr]
    assert expiry >= datetime.now(tz=timezone.utc).timestamp() + 60 - 1
    assert server.count() == 0
    # The stand-in server checks the signature as ImageKit does.
    assert httpx.get(unsigned).status_code in {401, 403}
    answer = httpx.get(signed)
    assert answer.status_code == 200
    assert answer.content == b"for your eyes"
    assert httpx.get(signed.replace("ik-s=", "ik-s=0")).status_code in {401, 403}


def test_url_refuses_empty_names(storage: ImageKitStorage) -> None:
    with pytest.raises(ValueError, match="name"):
        storage.url("")
    with pytest.raises(ValueError, match="name"):
        storage.url(None)


def test_nested_paths_and_listdir(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    server.add_file("/media/top.txt", b"1")
    server.add_file("/media/dir/one.txt", b"1")
    server.add_file("/media/dir/two.txt", b"2")
    server.add_file("/media/dir/sub/deep.txt", b"3")
    server.add_file("/media/dir/other/x.txt", b"3")
    server.add_file("/elsewhere/dir/no.txt", b"4")
    assert storage.listdir("") == (["dir"], ["top.txt"])
    assert storage.listdir("dir") == (["other", "sub"], ["one.txt", "two.txt"])
    assert storage.listdir("dir/") == (["other", "sub"], ["one.txt", "two.txt"])
    assert storage.listdir("dir/sub") == ([], ["deep.txt"])
    assert storage.listdir("missing") == ([], [])


def test_listdir_paginates_over_a_thousand_files(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    names = [f"f{index:04d}.txt" for index in range(1205)]
    for name in names:
        server.add_file(f"/media/many/{name}", b"x")
    server.clear_requests()
    directories, files = storage.listdir("many")
    assert directories == []
    assert files == names
    # 1205 files in pages of at most 1000.
    assert server.count("list") >= 2


def test_iter_files_and_stat(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    server.add_file("/media/a.txt", b"aa", created_at=created)
    server.add_file("/media/d/b.txt", b"bbb", is_private=True)
    server.add_file("/other/c.txt", b"c")
    infos = sorted(storage.iter_files(), key=lambda info: info.name)
    assert [(info.name, info.size, info.is_private) for info in infos] == [
        ("a.txt", 2, False),
        ("d/b.txt", 3, True),
    ]
    assert [info.name for info in storage.iter_files("d")] == ["d/b.txt"]
    info = storage.stat("a.txt")
    assert info is not None
    assert info.created_at == created
    assert info.file_id == server.files["/media/a.txt"].file_id
    assert storage.stat("nope.txt") is None


def test_save_exact(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    info = storage.save_exact("keep/name.txt", ContentFile(b"one"))
    assert info.name == "keep/name.txt"
    assert info.size == 3
    assert server.files["/media/keep/name.txt"].data == b"one"
    with pytest.raises(ImageKitFileExistsError):
        storage.save_exact("keep/name.txt", ContentFile(b"two"))
    assert server.files["/media/keep/name.txt"].data == b"one"
    storage.save_exact("keep/name.txt", ContentFile(b"three"), overwrite=True)
    assert server.files["/media/keep/name.txt"].data == b"three"
    assert len(server.files) == 1


# --- the three naming modes ----------------------------------------------------------


def test_duplicate_names_default_mode(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    first = storage.save("same.txt", ContentFile(b"1"))
    second = storage.save("same.txt", ContentFile(b"2"))
    assert first != second
    assert server.files[f"/media/{first}"].data == b"1"
    assert server.files[f"/media/{second}"].data == b"2"


def test_duplicate_names_overwrite_mode(
    overwrite_storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.clear_requests()
    assert overwrite_storage.save("same.txt", ContentFile(b"1")) == "same.txt"
    assert overwrite_storage.save("same.txt", ContentFile(b"22")) == "same.txt"
    assert routes(server) == ["upload", "upload"]
    assert stored_paths(server) == ["/media/same.txt"]
    assert server.files["/media/same.txt"].data == b"22"
    assert overwrite_storage.size("same.txt") == 2


def test_duplicate_names_exact_mode(
    exact_storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.clear_requests()
    first = exact_storage.save("dir/a.tar.gz", ContentFile(b"1"))
    assert first == "dir/a.tar.gz"
    # A truthful exists() for a name not cached, then the upload.
    assert routes(server) == ["list", "upload"]
    second = exact_storage.save("dir/a.tar.gz", ContentFile(b"2"))
    # Django's alternative-name form differs by release.
    pattern = r"dir/a_[A-Za-z0-9]{7}\.tar\.gz" if DJANGO_51 else r"dir/a\.tar_[A-Za-z0-9]{7}\.gz"
    assert re.fullmatch(pattern, second), second
    assert server.files["/media/dir/a.tar.gz"].data == b"1"
    assert server.files[f"/media/{second}"].data == b"2"


def test_exact_mode_max_length(exact_storage: ImageKitStorage) -> None:
    exact_storage.save("abcdefgh.txt", ContentFile(b"1"))
    second = exact_storage.save("abcdefgh.txt", ContentFile(b"2"), max_length=16)
    assert len(second) <= 16
    assert second != "abcdefgh.txt"


def test_exact_mode_picks_another_name_when_taken_meanwhile(
    exact_storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    # Another process stores the name between our exists() and our upload.
    original = exact_storage.get_available_name

    def racing(name: str, max_length: int | None = None) -> str:
        chosen = original(name, max_length)
        if not server.files:
            server.add_file(f"/media/{chosen}", b"theirs")
        return chosen

    exact_storage.get_available_name = racing  # type: ignore[method-assign]
    name = exact_storage.save("race.txt", ContentFile(b"ours"))
    assert name != "race.txt"
    assert server.files["/media/race.txt"].data == b"theirs"
    assert server.files[f"/media/{name}"].data == b"ours"


@pytest.mark.parametrize("mode", ["default", "overwrite", "exact"])
def test_retried_upload_never_duplicates(
    make_storage: MakeStorage, server: FakeImageKitServer, mode: str
) -> None:
    options = {
        "default": {},
        "overwrite": {"file_overwrite": True},
        "exact": {"use_unique_file_name": False},
    }[mode]
    storage = make_storage(location="media", **options)
    # ImageKit stores the file, then the answer is lost.
    server.drop("upload", after_processing=True)
    name = storage.save("retry.txt", ContentFile(b"payload"))
    assert stored_paths(server) == [f"/media/{name}"]
    assert server.files[f"/media/{name}"].data == b"payload"
    if mode != "default":
        assert name == "retry.txt"
    assert server.count("upload") == 2


# --- content kinds ---------------------------------------------------------------------


def test_content_kinds(
    storage: ImageKitStorage, server: FakeImageKitServer, tmp_path: Path
) -> None:
    path = tmp_path / "on-disk.bin"
    path.write_bytes(b"from disk")
    text_path = tmp_path / "text.txt"
    text_path.write_text("text file ✓", encoding="utf-8")
    upload = TemporaryUploadedFile("temp.bin", "application/octet-stream", 9, None)
    upload.write(b"temporary")
    upload.flush()
    with path.open("rb") as on_disk, text_path.open(encoding="utf-8") as text_file:
        cases: list[tuple[str, Any, bytes]] = [
            ("bytes.bin", ContentFile(b"bytes"), b"bytes"),
            ("text.txt", ContentFile("tëxt"), "tëxt".encode()),
            ("stringio.txt", io.StringIO("string io"), b"string io"),
            ("bytesio.bin", io.BytesIO(b"bytes io"), b"bytes io"),
            ("simple.bin", SimpleUploadedFile("simple.bin", b"simple"), b"simple"),
            ("temp.bin", upload, b"temporary"),
            ("disk.bin", File(on_disk), b"from disk"),
            ("textfile.txt", File(text_file), "text file ✓".encode()),
        ]
        for name, content, data in cases:
            saved = storage.save(name, content)
            assert server.files[f"/media/{saved}"].data == data, name
            # save() does not close what it was given.
            assert not content.closed, name
    upload.close()


def test_content_is_rewound_before_upload(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    content = ContentFile(b"whole content")
    content.read(5)
    name = storage.save("rewound.txt", content)
    assert server.files[f"/media/{name}"].data == b"whole content"


def test_empty_and_closed_content_upload_nothing(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    with pytest.raises(ValueError, match="empty"):
        storage.save("empty.txt", ContentFile(b""))
    closed = File(io.BytesIO(b"data"), name="closed.txt")
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        storage.save("closed.txt", closed)
    assert server.count() == 0


# --- unicode and special characters ------------------------------------------------------


def test_unicode_names_are_stored_as_imagekit_names_them(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    # ImageKit's upload API turns non-ASCII characters into '_': the name returned is the
    # name stored, and what Django predicts with get_valid_name.
    name = storage.save("фото/été.txt", ContentFile("ü".encode()))
    assert re.fullmatch(r"____/_t__[A-Za-z0-9]{9}\.txt", name), name
    assert stored_paths(server) == [f"/media/{name}"]


def test_unicode_names_and_urls(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    # Files stored by other means (the media library, another tool) keep Unicode names.
    name = "фото/été 文件.txt"
    server.add_file(f"/media/{name}", "ü".encode())
    url = storage.url(name)
    assert url.isascii()
    assert url == f"{server.url_endpoint}/media/{quote(name)}"
    assert storage.exists(name)
    assert storage.size(name) == 2
    with storage.open(name) as handle:
        assert handle.read() == "ü".encode()
    assert storage.listdir("фото") == ([], ["été 文件.txt"])
    storage.delete(name)
    assert server.files == {}


URL_NAMES = [
    "photo_Ab3dE9xQz.jpg",
    "фото/été 文件.txt",
    "a b&c=d?.txt",
    "hash#tag.jpg",
    "already%20encoded.jpg",
    "plus+sign.jpg",
    "dir/~tilde;semi@at.png",
    "q'uote\"s.png",
    # Django's own url() test name.
    "~!*()'@#$%^&*abc`+ =.file",
]


@pytest.mark.parametrize("name", URL_NAMES)
@pytest.mark.parametrize("transformation", [None, [{"width": 300, "height": 200}]])
def test_urls_equal_the_sdk_helper(
    make_storage: MakeStorage,
    server: FakeImageKitServer,
    name: str,
    transformation: list[dict[str, object]] | None,
) -> None:
    from imagekitio import ImageKit

    sdk = ImageKit(private_key=server.private_key, password="", base_url=server.base_url)
    try:
        for location in ("", "media/uploads"):
            storage = make_storage(location=location)
            src = f"{location}/{name}" if location else name
            expected = sdk.helper.build_url(
                src=src, url_endpoint=server.url_endpoint, transformation=transformation
            )
            assert storage.url(name, transformation=transformation) == expected
    finally:
        sdk.close()
    assert server.count() == 0


def test_special_characters_become_underscores(
    exact_storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    name = exact_storage.save("a b&c=d?.txt", ContentFile(b"x"))
    assert name == "a_b_c_d_.txt"
    assert stored_paths(server) == ["/media/a_b_c_d_.txt"]


# --- open ------------------------------------------------------------------------------


def test_open_is_lazy(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    name = storage.save("lazy.txt", ContentFile(b"lazy bytes"))
    server.clear_requests()
    handle = storage.open(name)
    assert handle.size == 10
    assert server.count() == 0
    assert handle.read(4) == b"lazy"
    assert routes(server) == ["delivery"]
    assert handle.read() == b" bytes"
    assert list(handle.chunks()) == [b"lazy bytes"]
    handle.close()
    assert handle.closed
    assert server.count() == 1


def test_open_missing_and_write_modes(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    with pytest.raises(FileNotFoundError):
        storage.open("missing.txt")
    server.clear_requests()
    for mode in ("wb", "ab", "rb+", "r+", "w", "x", "rbt", ""):
        with pytest.raises(ValueError, match=r"reading only.*storage\.save"):
            storage.open("missing.txt", mode)
    assert server.count() == 0


def test_open_in_text_mode(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    # As FileSystemStorage: mode "r" reads str (UTF-8 here), newlines translated.
    name = storage.save("notes.txt", ContentFile("line één\r\nline two\n".encode()))
    server.clear_requests()
    with storage.open(name, "r") as handle:
        assert handle.mode == "r"
        assert handle.size == len("line één\r\nline two\n".encode())
        assert handle.read() == "line één\nline two\n"
        assert list(handle) == ["line één\n", "line two\n"]
        assert "".join(handle.chunks()) == "line één\nline two\n"
        # Reopened in binary mode, the same download reads bytes.
        handle.open("rb")
        assert handle.read() == "line één\r\nline two\n".encode()
        handle.open("rt")
        assert handle.readline() == "line één\n"
    assert routes(server) == ["delivery"]
    assert handle.closed


@pytest.mark.parametrize("mode", ["rb", "r"])
def test_copy_an_opened_file(
    storage: ImageKitStorage, server: FakeImageKitServer, mode: str
) -> None:
    data = "héllo\nworld".encode()
    name = storage.save("original.txt", ContentFile(data))
    with storage.open(name, mode) as handle:
        copy = storage.save("copy.txt", handle)
        assert not handle.closed
    assert server.files[f"/media/{copy}"].data == data


def test_open_deleted_meanwhile(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    name = storage.save("gone.txt", ContentFile(b"x"))
    handle = storage.open(name)
    server.reset()
    with pytest.raises(FileNotFoundError):
        handle.read()


def test_private_files_are_read_through_signed_urls(
    make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    storage = make_storage(private_files=True)
    name = storage.save("secret.txt", ContentFile(b"private bytes"))
    assert server.files[f"/{name}"].is_private
    assert "ik-s=" in storage.url(name)
    with storage.open(name) as handle:
        assert handle.read() == b"private bytes"


# --- metadata and times ------------------------------------------------------------------


def test_missing_file_behaviour(storage: ImageKitStorage) -> None:
    assert not storage.exists("missing.txt")
    for method in (storage.size, storage.get_created_time, storage.get_modified_time):
        with pytest.raises(FileNotFoundError):
            method("missing.txt")
    storage.delete("missing.txt")
    for empty in ("", None):
        with pytest.raises(ValueError, match="name"):
            storage.delete(empty)  # type: ignore[arg-type]


def test_times_with_use_tz(
    storage: ImageKitStorage, server: FakeImageKitServer, settings: Any
) -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    server.add_file("/media/t.txt", b"x", created_at=created)
    updated = server.files["/media/t.txt"].updated_at
    settings.USE_TZ = True
    assert storage.get_created_time("t.txt") == created
    assert storage.get_created_time("t.txt").tzinfo is not None
    assert storage.get_modified_time("t.txt") == updated


def test_times_without_use_tz(
    storage: ImageKitStorage, server: FakeImageKitServer, settings: Any
) -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    server.add_file("/media/t.txt", b"x", created_at=created)
    settings.USE_TZ = False
    settings.TIME_ZONE = "America/Chicago"
    value = storage.get_created_time("t.txt")
    assert value.tzinfo is None
    assert value == datetime(2024, 1, 1, 21, 4, 5)
    assert django_timezone.make_aware(value) == created


def test_times_after_a_save_cost_one_search(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    before = datetime.now(tz=timezone.utc) - timedelta(seconds=5)
    name = storage.save("fresh.txt", ContentFile(b"x"))
    server.clear_requests()
    created = storage.get_created_time(name)
    modified = storage.get_modified_time(name)
    assert routes(server) == ["list"]
    assert created >= before
    assert modified >= created


# --- errors, hooks, logging ----------------------------------------------------------------


def test_api_errors_carry_the_details(
    make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    storage = make_storage(private_key="private_wrong_SENTINEL", max_retries=0)
    with pytest.raises(ImageKitAuthenticationError) as caught:
        storage.save("a.txt", ContentFile(b"x"))
    assert caught.value.status_code in {401, 403}
    assert "SENTINEL" not in str(caught.value)
    assert server.files == {}


STORAGE_CALLS: dict[str, Callable[[ImageKitStorage], object]] = {
    "upload": lambda storage: storage.save("a.txt", ContentFile(b"x")),
    "exists": lambda storage: storage.exists("a.txt"),
    "size": lambda storage: storage.size("a.txt"),
    "delete": lambda storage: storage.delete("a.txt"),
    "listdir": lambda storage: storage.listdir("dir"),
}


@pytest.mark.parametrize("call", list(STORAGE_CALLS))
def test_unreachable_imagekit_is_a_connection_error(call: str) -> None:
    storage = ImageKitStorage(
        private_key=SECRET,
        url_endpoint="https://ik.example/x",
        base_url="http://127.0.0.1:9",  # nothing listens there
        max_retries=0,
    )
    try:
        with pytest.raises(ImageKitConnectionError) as caught:
            STORAGE_CALLS[call](storage)
    finally:
        storage.close()
    assert caught.value.operation
    assert "SENTINEL" not in str(caught.value)


@pytest.mark.parametrize("call", ["upload", "exists"])
def test_a_stalled_imagekit_is_a_timeout_within_the_deadline(
    make_storage: MakeStorage, server: FakeImageKitServer, call: str
) -> None:
    storage = make_storage(timeout=0.3, upload_timeout=0.3)
    server.stall("upload" if call == "upload" else "list", 2)
    started = time.monotonic()
    with pytest.raises(ImageKitTimeoutError) as caught:
        STORAGE_CALLS[call](storage)
    assert time.monotonic() - started < 1.5
    # The name tried (in the unique mode, with its suffix).
    assert UNIQUE.sub("", caught.value.name or "") == "a.txt"


def test_persistent_failure_reports_nothing_saved(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.fail("upload", 500, times=3, message="Boom", help="Try later")
    with pytest.raises(ImageKitStorageError) as caught:
        storage.save("fails.txt", ContentFile(b"x"))
    assert server.count("upload") == 3
    assert caught.value.message == "Boom"
    assert caught.value.help == "Try later"
    assert caught.value.status_code == 500
    assert caught.value.operation == "upload"
    assert server.files == {}


class TaggingStorage(ImageKitStorage):
    def get_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        return {"tags": ["hook", name.rpartition(".")[2]], "custom_metadata": {"n": 1}}


def test_upload_options_and_hook(make_storage: MakeStorage, server: FakeImageKitServer) -> None:
    storage = make_storage(tags=["site"], custom_metadata={"origin": "tests"})
    name = storage.save("a.txt", ContentFile(b"x"))
    assert list(server.files[f"/{name}"].tags) == ["site"]
    assert dict(server.files[f"/{name}"].custom_metadata) == {"origin": "tests"}

    hooked = TaggingStorage(
        private_key=server.private_key, url_endpoint=server.url_endpoint, base_url=server.base_url
    )
    try:
        name = hooked.save("b.jpg", ContentFile(b"x"))
    finally:
        hooked.close()
    assert list(server.files[f"/{name}"].tags) == ["hook", "jpg"]
    assert dict(server.files[f"/{name}"].custom_metadata) == {"n": 1}


class BadHookStorage(ImageKitStorage):
    def get_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        return {"overwrite_file": True}


def test_hook_cannot_set_the_storage_flags(server: FakeImageKitServer) -> None:
    storage = BadHookStorage(
        private_key=server.private_key, url_endpoint=server.url_endpoint, base_url=server.base_url
    )
    with pytest.raises(ValueError, match="overwrite_file"):
        storage.save("a.txt", ContentFile(b"x"))
    assert server.count() == 0


class DeadlineHookStorage(ImageKitStorage):
    def get_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        return {"timeout": 60, "extra_headers": {"X-A": "b"}}


def test_hook_cannot_set_what_the_client_sets_either(server: FakeImageKitServer) -> None:
    # The request's deadline and headers are the client's: refused like the storage's own
    # flags (a ValueError before any request), not with another exception type later.
    storage = DeadlineHookStorage(
        private_key=server.private_key, url_endpoint=server.url_endpoint, base_url=server.base_url
    )
    try:
        with pytest.raises(ValueError, match=r"extra_headers, timeout.*upload_timeout"):
            storage.save("a.txt", ContentFile(b"x"))
    finally:
        storage.close()
    assert server.count() == 0


def test_logging_has_sizes_and_no_secret(
    make_storage: MakeStorage, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(location="media")
    caplog.set_level(logging.DEBUG, logger="django_imagekit_storage")
    name = storage.save("logged.txt", ContentFile(b"12345"))
    storage.delete(name)
    infos = [
        record.getMessage()
        for record in caplog.records
        if record.name == "django_imagekit_storage.storage" and record.levelno == logging.INFO
    ]
    assert len(infos) == 2
    assert f"media/{name}" in infos[0]
    assert "5 bytes" in infos[0]
    assert " ms" in infos[0]
    assert "deleted" in infos[1]
    assert all(storage.settings.private_key not in record.getMessage() for record in caplog.records)


def test_one_info_line_per_upload_and_delete(
    make_storage: MakeStorage, caplog: pytest.LogCaptureFixture
) -> None:
    # The storage's line; the client's per-call lines are DEBUG (no duplicate at INFO).
    storage = make_storage(location="media")
    caplog.set_level(logging.INFO, logger="django_imagekit_storage")
    name = storage.save("once.txt", ContentFile(b"12345"))
    storage.delete(name)
    infos = [
        (record.name, record.getMessage())
        for record in caplog.records
        if record.name.startswith("django_imagekit_storage")
    ]
    assert infos == [
        ("django_imagekit_storage.storage", infos[0][1]),
        ("django_imagekit_storage.storage", infos[1][1]),
    ]
    assert infos[0][1].startswith(f"uploaded media/{name} (5 bytes) in ")
    assert infos[1][1].startswith(f"deleted media/{name} (5 bytes) in ")


# --- cache and threads ---------------------------------------------------------------------


def test_cache_is_bounded() -> None:
    from django_imagekit_storage.storage import _MetadataCache

    cache = _MetadataCache(max_size=3)
    remote = object()
    for index in range(5):
        cache.put(f"p{index}", remote)  # type: ignore[arg-type]
    cache.get("p2")
    cache.put("p5", remote)  # type: ignore[arg-type]
    assert len(cache) == 3
    # Least recently used out first.
    assert [cache.get(f"p{index}") is not None for index in range(6)] == [
        False,
        False,
        True,
        False,
        True,
        True,
    ]


def test_close_then_reuse(storage: ImageKitStorage) -> None:
    name = storage.save("a.txt", ContentFile(b"x"))
    storage.close()
    storage.close()
    assert storage.exists(name)


def test_one_storage_shared_by_threads(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    names: list[str] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        for index in range(5):
            name = storage.save("shared.txt", ContentFile(f"{thread}-{index}".encode()))
            with lock:
                names.append(name)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 20
    assert len(server.files) == 20


def test_one_client_however_many_threads_ask_first(
    make_storage: MakeStorage, server: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_imagekit_storage.client import ImageKitClient

    created: list[ImageKitClient] = []
    original = ImageKitClient.__init__

    def slow_init(self: ImageKitClient, *args: Any, **kwargs: Any) -> None:
        # Widens the window in which an unguarded lazy property would make several.
        time.sleep(0.05)
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ImageKitClient, "__init__", slow_init)
    storage = make_storage(location="media")
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def work() -> None:
        barrier.wait()
        answers.append(storage.exists("nothing.txt"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [False] * 8
    assert len(created) == 1
    assert server.count("list") == 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_makes_its_own_client(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    # gunicorn --preload, Celery prefork: a storage used before the fork must not share
    # its pooled connections with the children.
    name = storage.save("parent.txt", ContentFile(b"parent bytes"))
    parent_client = storage._client_instance
    assert parent_client is not None
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking with threads (the stand-in server's).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            inherited = storage._client_instance is not None
            with storage.open(name) as handle:
                data = handle.read()
            fresh = storage._client_instance is not parent_client
            os.write(write_end, repr((inherited, data, fresh)).encode())
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(write_end, repr(error).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    assert answer == repr((False, b"parent bytes", True))
    # The parent keeps its own client, still working.
    assert storage._client_instance is parent_client
    with storage.open(name) as handle:
        assert handle.read() == b"parent bytes"


def test_download_survives_transient_faults(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    name = storage.save("flaky.txt", ContentFile(b"flaky bytes"))
    server.fail("delivery", 503, times=1)
    server.drop("delivery", times=1)
    with storage.open(name) as handle:
        assert handle.read() == b"flaky bytes"
    assert server.count("delivery") == 3


def test_searches_are_not_cached(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    # Another process may delete or replace a file: exists() stays truthful.
    server.add_file("/media/theirs.txt", b"x")
    assert storage.exists("theirs.txt")
    server.reset()
    assert not storage.exists("theirs.txt")
    assert server.count("list") == 1


def test_non_seekable_content(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    name = storage.save(
        "piped.bin", File(ForwardOnlyStream(b"piped bytes" * 1000), name="piped.bin")
    )
    assert server.files[f"/media/{name}"].data == b"piped bytes" * 1000
    assert storage.size(name) == 11000


def test_an_unclosed_file_in_memory_does_not_warn(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    import gc

    name = storage.save("unclosed.txt", ContentFile(b"abc"))
    # filterwarnings = error: a ResourceWarning at collection would fail the test.
    assert storage.open(name).read() == b"abc"
    gc.collect()


@pytest.mark.parametrize("content", ["text", b"bytes"])
def test_raw_data_is_refused_with_advice(
    exact_storage: ImageKitStorage, server: FakeImageKitServer, content: Any
) -> None:
    server.clear_requests()
    with pytest.raises(TypeError, match="ContentFile"):
        exact_storage.save("raw.txt", content)
    assert server.count() == 0


def test_too_long_for_max_length_uploads_nothing(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    with pytest.raises(SuspiciousFileOperation):
        storage.save("folder/name.txt", ContentFile(b"x"), max_length=16)
    assert server.count() == 0


def test_request_counts_for_names_not_cached(
    storage: ImageKitStorage, server: FakeImageKitServer
) -> None:
    server.add_file("/media/d/theirs.txt", b"12345")
    server.add_file("/media/d/sub/x.txt", b"1")
    counts = {}
    for label, operation in [
        ("size", lambda: storage.size("d/theirs.txt")),
        ("created", lambda: storage.get_created_time("d/theirs.txt")),
        ("modified", lambda: storage.get_modified_time("d/theirs.txt")),
        ("open", lambda: storage.open("d/theirs.txt").close()),
        ("listdir", lambda: storage.listdir("d")),
        ("stat", lambda: storage.stat("d/theirs.txt")),
        ("delete", lambda: storage.delete("d/theirs.txt")),
    ]:
        server.clear_requests()
        operation()
        counts[label] = routes(server)
    assert counts == {
        "size": ["list"],
        "created": ["list"],
        "modified": ["list"],
        "open": ["list"],
        "listdir": ["list", "list"],
        "stat": ["list"],
        "delete": ["list", "delete"],
    }


THREADS = 8
FILES_PER_THREAD = 50


@pytest.mark.parametrize("mode", ["default", "overwrite", "exact"])
def test_threads_share_one_storage(
    make_storage: MakeStorage, server: FakeImageKitServer, mode: str
) -> None:
    # Issue 8: 8 threads saving 50 files each, half under one name shared by all threads and
    # half under names of their own.
    options = {
        "default": {},
        "overwrite": {"file_overwrite": True},
        "exact": {"use_unique_file_name": False},
    }[mode]
    storage = make_storage(location="media", **options)
    results: list[tuple[str, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        try:
            for index in range(FILES_PER_THREAD):
                data = f"{thread}-{index}".encode()
                given = "same.txt" if index % 2 else f"t{thread}-{index}.txt"
                name = storage.save(given, ContentFile(data))
                with lock:
                    results.append((name, data))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == THREADS * FILES_PER_THREAD
    stored = {path: file.data for path, file in server.files.items()}
    if mode == "overwrite":
        # No duplicate: one file per name, the shared one holding one of the writes.
        assert len(stored) == THREADS * FILES_PER_THREAD // 2 + 1
        assert stored["/media/same.txt"] in {data for name, data in results if name == "same.txt"}
        results = [(name, data) for name, data in results if name != "same.txt"]
    else:
        # Every save got its own name: nothing lost, nothing replaced.
        assert len({name for name, _ in results}) == THREADS * FILES_PER_THREAD
        assert len(stored) == THREADS * FILES_PER_THREAD
    for name, data in results:
        assert stored[f"/media/{name}"] == data
    # Every name's bytes are checked on the server above; one name in eight is also read back
    # through the storage (each read costs a search and a download).
    for name, data in results[::8]:
        with storage.open(name) as handle:
            assert handle.read() == data


class WrongTagsStorage(ImageKitStorage):
    def get_upload_options(self, name: str, content: File[Any]) -> dict[str, Any]:
        return {"tags": "one,two"}


def test_hook_values_are_validated(server: FakeImageKitServer) -> None:
    storage = WrongTagsStorage(
        private_key=server.private_key, url_endpoint=server.url_endpoint, base_url=server.base_url
    )
    with pytest.raises(ValueError, match=r"get_upload_options\(\)\['tags'\]"):
        storage.save("a.txt", ContentFile(b"x"))
    assert server.count() == 0


@pytest.mark.parametrize("content", [ContentFile(b""), io.BytesIO(b"")])
def test_empty_content_in_exact_mode_makes_no_search(
    exact_storage: ImageKitStorage, server: FakeImageKitServer, content: Any
) -> None:
    server.clear_requests()
    with pytest.raises(ValueError, match="empty"):
        exact_storage.save("empty.txt", content)
    assert server.count() == 0


def test_binary_file_with_mode_r(storage: ImageKitStorage, server: FakeImageKitServer) -> None:
    # Binary streams may say mode "r": ZipExtFile did before Python 3.13.
    class ModeR(io.BytesIO):
        mode = "r"

    name = storage.save("inner.bin", File(ModeR(b"\x00binary\xff"), name="inner.bin"))
    assert server.files[f"/media/{name}"].data == b"\x00binary\xff"


def test_what_imagekit_cannot_do(offline: ImageKitStorage) -> None:
    # No local path and no access time, as Django's contract allows.
    with pytest.raises(NotImplementedError):
        offline.path("a.txt")
    with pytest.raises(NotImplementedError):
        offline.get_accessed_time("a.txt")


def test_generate_filename(offline: ImageKitStorage) -> None:
    assert offline.generate_filename("docs/my file (1).pdf") == "docs/my_file_1.pdf"
    with pytest.raises(SuspiciousFileOperation):
        offline.generate_filename("../docs/a.pdf")


def test_unique_mode_draws_again_on_a_collision(
    storage: ImageKitStorage, server: FakeImageKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_imagekit_storage import storage as module

    suffixes = iter(["AAAAAAAAA", "BBBBBBBBB"])
    monkeypatch.setattr(module, "_random_suffix", lambda: next(suffixes))
    server.add_file("/media/a_AAAAAAAAA.txt", b"theirs")
    name = storage.save("a.txt", ContentFile(b"ours"))
    assert name == "a_BBBBBBBBB.txt"
    assert server.files["/media/a_AAAAAAAAA.txt"].data == b"theirs"
    assert server.files["/media/a_BBBBBBBBB.txt"].data == b"ours"
    assert server.count("upload") == 2


def test_every_error_names_the_media_library_path_with_location(
    make_storage: MakeStorage, server: FakeImageKitServer
) -> None:
    import httpx

    from django_imagekit_storage.client import ImageKitClient

    storage = make_storage(location="media", file_overwrite=True, max_retries=0)
    server.fail("upload", 500)
    # An error the client raises, and ones the storage raises itself, name one path.
    with pytest.raises(ImageKitStorageError) as from_client:
        storage.save("a.txt", ContentFile(b"ours"))
    assert from_client.value.name == "media/a.txt"

    entry = {"type": "file", "fileId": "id1", "filePath": "/media/a.txt", "name": "a.txt"}
    storage._client_instance = ImageKitClient(
        storage.settings,
        _transport=httpx.MockTransport(lambda request: httpx.Response(200, json=[entry])),
    )
    for call in (storage.size, storage.get_created_time):
        with pytest.raises(ImageKitStorageError) as from_storage:
            call("a.txt")
        assert from_storage.value.name == "media/a.txt"
        assert "'media/a.txt'" in str(from_storage.value)
