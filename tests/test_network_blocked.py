"""The suite runs with the network blocked (tests/conftest.py), and the course copes:
downloads fall back to the bundled samples quickly, and at once with COURSE_OFFLINE=1."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from course_utils import data, download

PUBLIC = [("93.184.215.14", 80), ("8.8.8.8", 53), ("2606:4700:4700::1111", 443)]


@pytest.mark.parametrize("address", PUBLIC, ids=["http", "dns", "ipv6"])
def test_connections_to_public_addresses_fail_at_once(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    t0 = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        with pytest.raises(OSError, match="network blocked"):
            s.connect(address)
    with pytest.raises(OSError, match="network blocked"):
        socket.create_connection(address, timeout=10)
    assert time.monotonic() - t0 < 1.0
    host = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
    assert not download.host_reachable(f"http://{host}:{address[1]}/", timeout=10)


def test_loopback_stays_open():
    """TensorBoard and JupyterLab tests need 127.0.0.1: a real echo over loopback."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def echo():
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(16))

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"ping")
            assert client.recv(16) == b"ping"
        thread.join(5)


@pytest.fixture
def online_mode(monkeypatch, cache_dir):
    """No COURSE_OFFLINE: the code tries the network (and meets the block)."""
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    return cache_dir


def test_cifar10_without_network_falls_back_to_the_sample(online_mode, capsys):
    t0 = time.monotonic()
    ds = data.cifar10(train=False)
    assert time.monotonic() - t0 < 15
    assert ds.source == "sample" and len(ds) == 200 and ds.data.shape == (200, 32, 32, 3)
    out = capsys.readouterr().out
    assert "bundled sample" in out and "www.cs.toronto.edu" in out and "COURSE_DATA_DIR" in out
    assert not list(online_mode.rglob("*.part")), "a half download was left behind"


def test_hymenoptera_without_network_falls_back_to_the_sample(online_mode, capsys):
    t0 = time.monotonic()
    folder = data.hymenoptera()
    assert time.monotonic() - t0 < 15
    assert folder == data.HYMENOPTERA_SAMPLE
    assert (folder / "train" / "ants" / "0013035.jpg").is_file()
    out = capsys.readouterr().out
    assert "bundled sample" in out and "download.pytorch.org" in out


def test_the_guard_counts_every_way_to_open_a_connection(network_attempts):
    """The counter used below sees socket.connect, connect_ex, create_connection, name
    lookups and what urllib / http.client / download.host_reachable do on top of them."""
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    ways = {
        "connect": lambda: socket.socket().connect(("8.8.8.8", 53)),
        "connect_ex": lambda: socket.socket().connect_ex(("8.8.8.8", 53)),
        "create_connection": lambda: socket.create_connection(("1.1.1.1", 443), timeout=5),
        "getaddrinfo": lambda: socket.getaddrinfo("www.cs.toronto.edu", 443),
        "urlopen": lambda: no_proxy.open("http://download.pytorch.org/x.zip", timeout=5),
        "http.client": lambda: http.client.HTTPSConnection("example.com", timeout=5).connect(),
    }
    for how, attempt in ways.items():
        before = len(network_attempts)
        with pytest.raises(OSError, match="network blocked"):
            attempt()
        assert len(network_attempts) == before + 1, how
    assert not download.host_reachable("http://example.com/", timeout=5)
    assert [how for how, _ in network_attempts] == [
        "connect", "connect_ex", "create_connection", "getaddrinfo", "create_connection",
        "create_connection", "getaddrinfo"]
    with socket.socket() as s:  # loopback is neither blocked nor counted
        s.connect_ex(("127.0.0.1", 9))
    assert socket.getaddrinfo("localhost", 80) and socket.getaddrinfo("93.184.215.14", 80)
    assert len(network_attempts) == 7


def test_course_offline_never_touches_the_network(monkeypatch, cache_dir, capsys,
                                                  network_attempts):
    """COURSE_OFFLINE=1: no connection or name lookup is even attempted (counted by the
    guard, see above), and the samples come at once."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    t0 = time.monotonic()
    folder = data.hymenoptera()
    assert time.monotonic() - t0 < 1.0
    ds = data.cifar10(train=False)
    assert time.monotonic() - t0 < 5.0  # decoding the 200 sample images included
    assert folder == data.HYMENOPTERA_SAMPLE and ds.source == "sample"
    assert "COURSE_OFFLINE=1" in capsys.readouterr().out
    with pytest.raises(download.OfflineError, match="COURSE_OFFLINE=1"):
        download.download(data.HYMENOPTERA_URL, cache_dir / "h.zip")
    assert not download.host_reachable(data.HYMENOPTERA_URL)
    assert network_attempts == []


def test_under_ci_a_skipped_browser_test_fails(tmp_path):
    """The conftest turns a browser test's skip into a failure when CI is set (and only then):
    a missing Chromium cannot pass unseen in CI."""
    (tmp_path / "conftest.py").write_text(
        (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers = browser: needs Chromium\n")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.browser\n"
        "def test_needs_chromium():\n"
        "    pytest.skip('no Chromium here')\n\n"
        "def test_other_skip():\n"
        "    pytest.skip('not this platform')\n", encoding="utf-8")
    outcomes = {}
    for ci in ("true", ""):
        env = {**os.environ, "CI": ci}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
             "-m", "", "test_x.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120)
        outcomes[ci] = result.stdout.strip().splitlines()[-1]
        if ci:
            assert result.returncode == 1
            assert "CI must run the browser tests, but this one skipped: no Chromium here" \
                in result.stdout
    assert outcomes["true"].startswith("1 failed, 1 skipped")
    assert outcomes[""].startswith("2 skipped")
