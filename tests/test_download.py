"""Bounded, checksummed downloads against real local HTTP servers."""

from __future__ import annotations

import errno
import hashlib
import re
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from course_utils import download as dl
from course_utils import files


def test_download_verifies_md5(local_server, tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    www, base = local_server
    (www / "f.bin").write_bytes(b"x" * 100_000)
    good = hashlib.md5(b"x" * 100_000).hexdigest()
    out = dl.download(f"{base}/f.bin", tmp_path / "f.bin", md5=good, progress=False)
    assert out.read_bytes() == b"x" * 100_000
    with pytest.raises(dl.ChecksumError, match="does not match"):
        dl.download(f"{base}/f.bin", tmp_path / "g.bin", md5="0" * 32, progress=False)
    assert not list(tmp_path.glob("g.bin*")), "no partial file is left behind"


def test_offline_switch_never_connects(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    calls = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: calls.append(a))
    with pytest.raises(dl.OfflineError, match="COURSE_OFFLINE"):
        dl.download("https://example.org/x", tmp_path / "x")
    assert calls == []


def test_unreachable_host_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    t0 = time.perf_counter()
    with pytest.raises(dl.OfflineError, match="cannot reach") as info:
        dl.download("https://www.cs.toronto.edu/~kriz/x.tar.gz", tmp_path / "x")
    assert time.perf_counter() - t0 < 15
    assert "www.cs.toronto.edu" in str(info.value) and "network" in str(info.value)


def test_a_download_shows_its_progress_and_writes_beside_its_destination(
        local_server, tmp_path, monkeypatch, capsys):
    """By default a learner sees a progress bar named after the file; the bytes arrive in a
    hidden ``.<name>.*.part`` file in the destination folder (made, two levels deep), which
    becomes the file only when complete; the request says who is asking (course_utils)."""
    import urllib.request

    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    www, base = local_server
    (www / "f.bin").write_bytes(b"y" * 300_000)
    dest = tmp_path / "cache" / "new" / "f.bin"
    seen, asked = [], []
    real_bar, real_open = dl._progress_bar, urllib.request.urlopen

    def bar_that_looks(total, name):
        seen.extend(sorted(p.name for p in dest.parent.iterdir()))
        return real_bar(total, name)

    def open_that_records(request, **kwargs):
        asked.append(request.get_header("User-agent"))
        return real_open(request, **kwargs)

    monkeypatch.setattr(dl, "_progress_bar", bar_that_looks)
    monkeypatch.setattr(urllib.request, "urlopen", open_that_records)
    assert dl.download(f"{base}/f.bin", dest).read_bytes() == b"y" * 300_000
    assert len(seen) == 1 and re.fullmatch(r"\.f\.bin\..+\.part", seen[0]), seen
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]
    bar = capsys.readouterr().err
    assert "download f.bin" in bar and "100%" in bar and asked == ["course_utils"], bar


def test_server_that_never_answers_times_out(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(dl.OfflineError, match="failed"):
        dl.download(f"http://127.0.0.1:{port}/x", tmp_path / "x", timeout=1, progress=False)
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    listener.close()


def test_slow_name_lookup_is_bounded(monkeypatch):
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror("the resolver gave up")

    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    t0 = time.perf_counter()
    try:
        assert dl.host_reachable("https://slow-dns.example/x", timeout=1) is False
        assert time.perf_counter() - t0 < 3
    finally:
        release.set()


def test_tree_checksum_detects_a_changed_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"one")
    first = dl.tree_sha256(tmp_path)
    (tmp_path / "a" / "x.jpg").write_bytes(b"two")
    assert dl.tree_sha256(tmp_path) != first


def _tar_of_folder(tmp_path, name: str, file: str) -> Path:
    """``tmp_path/src/<name>/<file>`` (its text: the file's stem) packed as
    ``tmp_path/thing.tar.gz`` with ``name/`` at its top; returns the source folder."""
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / file).write_text(Path(file).stem)
    with tarfile.open(tmp_path / "thing.tar.gz", "w:gz") as tar:
        tar.add(src, arcname=name)
    return src


def test_unpack_folder_moves_into_place_only_when_complete(tmp_path):
    src = _tar_of_folder(tmp_path, "thing", "x.txt")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="no folder other/"):
        dl.unpack_folder(tmp_path / "thing.tar.gz", "other", out)
    assert list(out.iterdir()) == []  # the temporary folder is gone too
    folder = dl.unpack_folder(tmp_path / "thing.tar.gz", "thing", out, dl.tree_sha256(src))
    assert folder == out / "thing" and (folder / "x.txt").read_text() == "x"
    assert [p.name for p in out.iterdir()] == ["thing"]


def test_a_damaged_unpacked_copy_is_replaced_and_a_complete_one_kept(tmp_path):
    _tar_of_folder(tmp_path, "thing", "x.txt")
    archive, out = tmp_path / "thing.tar.gz", tmp_path / "out"
    folder = dl.unpack_folder(archive, "thing", out)
    (folder / "x.txt").write_text("")  # cut short after unpacking
    assert dl.check_unpacked(folder) is not None
    assert dl.unpack_folder(archive, "thing", out) == folder  # made again, complete
    assert (folder / "x.txt").read_text() == "x" and dl.check_unpacked(folder) is None
    kept = (folder / "x.txt").stat().st_mtime_ns
    # a complete copy already in place (another process was first) is kept as it is
    assert dl.unpack_folder(archive, "thing", out) == folder
    assert (folder / "x.txt").stat().st_mtime_ns == kept
    assert sorted(p.name for p in out.iterdir()) == ["thing"]  # no temporary left


def test_unpacking_makes_the_folders_on_the_way_and_names_a_full_disk(tmp_path, monkeypatch):
    from course_utils import archives

    _tar_of_folder(tmp_path, "thing", "x.txt")
    archive, deep = tmp_path / "thing.tar.gz", tmp_path / "cache" / "new"
    assert (dl.unpack_folder(archive, "thing", deep) / "x.txt").read_text() == "x"

    def full(archive, dest):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives, "_extract", full)
    before = archive.read_bytes()
    with pytest.raises(files.WriteError) as info:
        dl.unpack_folder(archive, "thing", tmp_path / "other")
    text = str(info.value)
    assert "\n" not in text and str(tmp_path / "other") in text and "COURSE_CACHE_DIR" in text
    assert archive.read_bytes() == before  # the archive is kept for the next try


@pytest.mark.parametrize("downloaded", [True, False])
def test_an_archive_whose_folder_is_not_the_known_one_is_refused(tmp_path, downloaded):
    """The tree checksum differs (another version, a changed photo): the course's own
    download is deleted (fetched anew next time); the learner's archive is left as it is."""
    _tar_of_folder(tmp_path, "thing", "x.txt")
    archive, wrong = tmp_path / "thing.tar.gz", "0" * 64
    error = dl.ChecksumError if downloaded else dl.DamagedInputError
    with pytest.raises(error) as info:
        dl.unpack_folder(archive, "thing", tmp_path / "out", wrong, downloaded=downloaded)
    text = str(info.value)
    assert str(archive) in text and "thing/" in text and wrong in text, text
    assert archive.exists() is not downloaded
    assert not (tmp_path / "out" / "thing").exists() and list((tmp_path / "out").iterdir()) == []


def test_tarfiles_own_filter_is_a_second_guard(tmp_path, monkeypatch):
    """Should the course's own member check ever let a member through, tarfile's "data"
    filter still refuses it, and the learner reads the same one line naming the member."""
    from course_utils import archives

    monkeypatch.setattr(archives, "_refusal", lambda name, kind, size: None)
    archive = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload.txt"
    payload.write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload, arcname="thing/../../escape.txt")
    with pytest.raises(dl.UnsafeArchiveError) as info:
        dl.unpack_folder(archive, "thing", tmp_path / "out")
    text = str(info.value)
    assert str(archive) in text and repr("thing/../../escape.txt") in text, text
    assert "\n" not in text and archive.exists() and not list(tmp_path.rglob("escape.txt"))


def test_a_file_where_the_folder_belongs_is_an_error_not_the_folder(tmp_path):
    _tar_of_folder(tmp_path, "thing", "x.txt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "thing").write_text("a note of the learner's")
    with pytest.raises(OSError):
        dl.unpack_folder(tmp_path / "thing.tar.gz", "thing", out)
    assert (out / "thing").read_text() == "a note of the learner's"


def test_a_download_that_is_already_gone_is_still_reported_as_a_bad_download(tmp_path):
    """Two processes found the same damaged download: the second one's delete finds nothing
    to delete, and it still reports the bad download (not FileNotFoundError)."""
    from course_utils import archives

    gone = tmp_path / "cifar10-jpg.tar.gz"
    with pytest.raises(dl.ChecksumError) as info:
        archives._reject(gone, "is damaged or cut short", downloaded=True)
    assert str(gone) in str(info.value) and "again" in str(info.value)


def test_the_download_progress_bar_counts_bytes_of_the_named_file(capsys):
    bar = dl._progress_bar(2_000_000, "cifar-10-python.tar.gz")
    bar.update(1_000_000)
    shown = str(bar)
    bar.close()
    assert "download cifar-10-python.tar.gz" in shown and "50%" in shown, shown
    assert "1.00M/2.00M" in shown and "B/s" in shown, shown
    unknown = dl._progress_bar(0, "x.zip")  # the server sent no size: no percentage
    unknown.update(1500)
    shown = str(unknown)
    unknown.close()
    assert unknown.total is None and "%" not in shown and "1.50kB" in shown, shown


@pytest.mark.parametrize("where", ["creating the file", "writing it"])
def test_a_full_or_read_only_cache_is_one_line_not_offline(local_server, tmp_path, monkeypatch,
                                                           where):
    """A full disk is not "no network": it is reported as such, naming the folder; no
    partial file is left."""
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    www, base = local_server
    (www / "f.bin").write_bytes(b"x" * 1000)  # small: sent whole before the client fails

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC if where == "writing it" else errno.EROFS, "no")

    if where == "creating the file":
        monkeypatch.setattr(dl.tempfile, "mkstemp", fail)
    else:
        monkeypatch.setattr(dl, "_progress_bar", fail)  # called once the file is open
    with pytest.raises(files.WriteError) as info:
        dl.download(f"{base}/f.bin", tmp_path / "f.bin", progress=True)
    text = str(info.value)
    assert str(tmp_path) in text and "COURSE_CACHE_DIR" in text and "\n" not in text
    assert ("free space" in text) == (where == "writing it")
    assert not list(tmp_path.glob("*f.bin*"))


def test_an_archive_without_the_folder_is_left_as_it_is(tmp_path):
    _tar_of_folder(tmp_path, "other", "a.txt")
    before = (tmp_path / "thing.tar.gz").read_bytes()
    with pytest.raises(ValueError) as info:
        dl.unpack_folder(tmp_path / "thing.tar.gz", "thing", tmp_path / "out")
    assert "thing/" in str(info.value) and str(tmp_path / "thing.tar.gz") in str(info.value)
    assert (tmp_path / "thing.tar.gz").read_bytes() == before
    assert not list((tmp_path / "out").iterdir())


def test_the_network_probe_knocks_on_the_urls_port_and_never_offline(monkeypatch):
    asked = []
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(dl, "_probe_cache", {})
    monkeypatch.setattr(dl, "_connects", lambda host, port, timeout: asked.append((host, port))
                        or True)
    assert dl.host_reachable("https://download.pytorch.org/tutorial/hymenoptera_data.zip")
    assert dl.host_reachable("http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
    assert dl.host_reachable("http://127.0.0.1:8123/x")
    assert asked == [("download.pytorch.org", 443), ("www.cs.toronto.edu", 80),
                     ("127.0.0.1", 8123)]
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(dl, "_probe_cache", {})
    assert dl.host_reachable("https://download.pytorch.org/x") is False and len(asked) == 3


def test_a_refused_connection_is_not_reachable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: the connection is refused
    assert dl._connects("127.0.0.1", port, 2.0) is False
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert dl._connects("127.0.0.1", server.getsockname()[1], 2.0) is True
