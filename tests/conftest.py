"""Shared fixtures. The whole suite runs with the network blocked: any attempt to connect
to a non-loopback address fails at once, so offline paths are exercised for real."""

from __future__ import annotations

import http.server
import ipaddress
import os
import socket
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

# the maintainers' tools (tools/translate.py) are scripts, not part of the package: tests import
# them by module name (``import translate``)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection
_real_getaddrinfo = socket.getaddrinfo

#: every attempt of the running test to reach a non-loopback address: (how, address)
ATTEMPTS: list[tuple[str, object]] = []


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkBlocked(OSError):
    """A test tried to reach the internet."""


def _block(how: str, address):
    """Count the attempt, then refuse it (every way of connecting ends here)."""
    ATTEMPTS.append((how, address))
    raise NetworkBlocked(f"network blocked in tests: {how} to {address!r}")


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        _block("connect", address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        _block("connect_ex", address)
    return _real_connect_ex(self, address)


def _guarded_create_connection(address, *args, **kwargs):
    if not _is_loopback(address):
        _block("create_connection", address)
    return _real_create_connection(address, *args, **kwargs)


def _needs_dns(host) -> bool:
    """True for a host name other than localhost (an IP literal or None/"" needs no lookup)."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not host or _is_loopback(host):
        return False
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return True
    return False


def _guarded_getaddrinfo(host, *args, **kwargs):
    """Name lookups (DNS) are network traffic too; IP literals and localhost pass (their
    connection is checked by the guards above)."""
    if _needs_dns(host):
        _block("getaddrinfo", host)
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block every non-loopback connection and name lookup (loopback stays open for
    TensorBoard/Jupyter); each attempt is counted in ``ATTEMPTS`` (``network_attempts``)."""
    from course_utils import download

    ATTEMPTS.clear()
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    monkeypatch.setattr(download, "_probe_cache", {})
    yield


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """Every test starts in English, whatever an earlier test chose: ``chapter(N, lang="zh")``
    and ``i18n.set_language`` set the language for the whole process, as in a kernel."""
    from course_utils import i18n

    monkeypatch.delenv(i18n.ENV, raising=False)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


@pytest.fixture
def network_attempts():
    """The list of ``(how, address)`` network attempts the test has made so far."""
    return ATTEMPTS


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    """A test that needs a browser belongs to the slow tier (``-m slow``) as well: it starts
    Chromium and a server, seconds to minutes each."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a browser test may not skip: CI installs Chromium (``.ci/run``), so a skip
    there means a test silently did not run. It is reported as a failure with the reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("browser") and _in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"CI must run the browser tests, but this one skipped: {reason}"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty course cache (downloads and decoded arrays go here)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(path))
    return path


@pytest.fixture
def fast(monkeypatch):
    """Fast mode on, as in CI."""
    monkeypatch.setenv("COURSE_FAST", "1")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www``: yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def offline(monkeypatch, cache_dir):
    """COURSE_OFFLINE=1 with a private cache: the data layer uses the bundled samples."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args)`` runs ``cli.main`` in this process → (exit code, stdout, stderr).

    argparse's SystemExit is turned into its code; any other exception escapes and fails the
    test — for the learner that would have been a traceback."""
    from course_utils import cli

    def run(*args) -> tuple[int, str, str]:
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def group_alive():
    """``group_alive(pgid)``: True while any process of that process group still exists."""

    def alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True

    return alive
