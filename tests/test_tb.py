"""course_utils.tb against real event files and a real TensorBoard server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from course_utils import _tb_server, data, tb

ANT_PHOTO = data.HYMENOPTERA_SAMPLE / "train" / "ants" / "0013035.jpg"


def _tensorboard_children() -> list[int]:
    """pids of live TensorBoard processes whose parent is this test process (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == os.getpid() and state != "Z" and "tensorboard" in cmdline:
            found.append(int(entry.name))
    return found


def _listening_addresses(port: int) -> list[str]:
    """Local IPv4 addresses listening on ``port`` (from /proc/net/tcp)."""
    result = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _, state = line.split()[1:4]
        ip_hex, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # 0A = LISTEN
            result.append(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    return result


def _wait_for_tags(board, expected: dict[str, list[str]], timeout: float = 60.0) -> dict:
    """Poll until the server serves every ``{run: [tags]}`` in ``expected``; return what it
    serves. TensorBoard loads event files in the background, so the first answers may lack tags.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            served = board.scalar_tags()
        except (OSError, ValueError):
            served = {}
        if all(set(tags) <= set(served.get(run, [])) for run, tags in expected.items()):
            return served
        assert time.monotonic() < deadline and board.running, (
            f"TensorBoard at {board.url} did not serve {expected} within {timeout:.0f} s; "
            f"it serves {served}. Its output:\n{board.output()}")
        time.sleep(0.2)


@pytest.fixture
def logdir(tmp_path):
    """y=x and loss = 1/(i+1) at steps 0..9 in the folder itself; acc = i/10 in run 'sub'."""
    folder = tmp_path / "logs"
    with SummaryWriter(str(folder)) as writer:
        for i in range(10):
            writer.add_scalar("y=x", i, i)
            writer.add_scalar("loss", 1 / (i + 1), i)
    with SummaryWriter(str(folder / "sub")) as writer:
        for i in range(5):
            writer.add_scalar("acc", i / 10, i)
    return folder


@pytest.fixture(autouse=True)
def no_leftover_servers():
    yield
    tb.stop_all()


# ------------------------------------------------------------------------- reading back
def test_read_scalars_tags_steps_values(logdir):
    scalars = tb.read_scalars(logdir)
    assert set(scalars) == {"y=x", "loss", "sub/acc"}
    assert [s for s, _ in scalars["y=x"]] == list(range(10))
    assert [v for _, v in scalars["y=x"]] == [float(i) for i in range(10)]
    assert [v for _, v in scalars["loss"]] == pytest.approx([1 / (i + 1) for i in range(10)])
    assert scalars["sub/acc"] == [(i, pytest.approx(i / 10)) for i in range(5)]


def test_read_runs_names_runs_like_tensorboard(logdir):
    runs = tb.read_runs(logdir)
    assert set(runs) == {".", "sub"}
    assert set(runs["."]) == {"y=x", "loss"} and set(runs["sub"]) == {"acc"}


def test_read_scalars_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tb.read_scalars(tmp_path / "nope")
    assert tb.read_scalars(tmp_path) == {}


def test_read_scalars_honours_purge_step_on_resume(tmp_path):
    """A resumed run (SummaryWriter(purge_step=5), as engine.fit does) replaces steps >= 5."""
    with SummaryWriter(str(tmp_path)) as writer:
        for i in range(10):
            writer.add_scalar("loss", float(i), i)
    with SummaryWriter(str(tmp_path), purge_step=5) as writer:
        for i in range(5, 8):
            writer.add_scalar("loss", 100.0 + i, i)
    points = tb.read_scalars(tmp_path)["loss"]
    assert [s for s, _ in points] == list(range(8))
    assert [v for _, v in points] == [0, 1, 2, 3, 4, 105, 106, 107]


def test_read_scalars_orders_event_files_by_time_not_by_name(tmp_path):
    """Two writers made in the same second are told apart by a process-wide counter in the
    file name (``….9`` and ``….10``), which sorts the later file first: the reader must
    still apply the resumed run after the original."""
    with SummaryWriter(str(tmp_path)) as writer:
        for i in range(10):
            writer.add_scalar("loss", float(i), i)
    (first,) = tmp_path.glob("*tfevents*")
    first.rename(tmp_path / "events.out.tfevents.1.host.1.9")
    with SummaryWriter(str(tmp_path), purge_step=5) as writer:
        for i in range(5, 8):
            writer.add_scalar("loss", 100.0 + i, i)
    (resumed,) = (p for p in tmp_path.glob("*tfevents*") if not p.name.endswith(".9"))
    resumed.rename(tmp_path / "events.out.tfevents.1.host.1.10")  # sorts before ….9
    points = tb.read_scalars(tmp_path)["loss"]
    assert [s for s, _ in points] == list(range(8))
    assert [v for _, v in points] == [0, 1, 2, 3, 4, 105, 106, 107]


def test_read_images_and_tags_roundtrip(tmp_path):
    photo = np.array(Image.open(ANT_PHOTO).convert("RGB"))
    batch = torch.rand(4, 3, 8, 8)
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_image("photo", photo, 1, dataformats="HWC")
        writer.add_image("photo", photo[:, ::-1].copy(), 2, dataformats="HWC")
        writer.add_images("batch", batch, 0)
        writer.add_scalar("s", 1.0, 0)
    assert tb.read_tags(tmp_path) == {"images": ["batch", "photo"], "scalars": ["s"]}
    images = tb.read_images(tmp_path)
    assert [s for s, _ in images["photo"]] == [1, 2]
    assert images["photo"][0][1].shape == (512, 768, 3)
    np.testing.assert_array_equal(images["photo"][0][1], photo)  # PNG is lossless
    np.testing.assert_array_equal(images["photo"][1][1], photo[:, ::-1])
    grid = images["batch"][0][1]
    assert grid.shape[0] == 8 and grid.shape[1] >= 4 * 8


# ------------------------------------------------------------------------- the server
def test_server_starts_answers_serves_tags_and_stops(logdir, group_alive):
    board = tb.launch(logdir, timeout=60)
    pid = board.process.pid
    try:
        assert board.url == f"http://127.0.0.1:{board.port}/"
        assert board.running and group_alive(pid)
        assert _listening_addresses(board.port) == ["127.0.0.1"]  # localhost only
        assert b"<html" in board.get("").lower()  # the web app itself answers
        expected = {run: sorted(tags) for run, tags in tb.read_runs(logdir).items()}
        assert expected == {".": ["loss", "y=x"], "sub": ["acc"]}
        assert _wait_for_tags(board, expected) == expected  # served = what the files hold
        assert sorted(board.runs()) == [".", "sub"]
        assert board.scalars(".", "y=x") == [(i, float(i)) for i in range(10)]
        http_loss = board.scalars(".", "loss")
        assert http_loss == [(s, pytest.approx(v)) for s, v in tb.read_scalars(logdir)["loss"]]
    finally:
        board.stop()
    assert not board.running and board.process.returncode is not None
    assert not group_alive(pid), "a process of TensorBoard's group is still alive"
    assert pid not in _tensorboard_children()
    assert board not in _tb_server._RUNNING
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(board.url, timeout=3)
    board.stop()  # idempotent


def test_context_manager_and_stop_all_leave_nothing(logdir):
    with tb.launch(logdir) as first:
        second = tb.launch(logdir)
        assert first.port != second.port
        assert {first.process.pid, second.process.pid} <= set(_tensorboard_children())
    assert not first.running and second.running
    tb.stop_all()
    assert not second.running
    assert _tensorboard_children() == []


def test_busy_port_is_reported_and_cleaned_up(logdir):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(tb.TensorBoardError, match="already in use") as info:
            tb.launch(logdir, port=port, timeout=60)
    assert "another port" in str(info.value)
    assert _tensorboard_children() == []


def test_launch_missing_logdir(tmp_path):
    with pytest.raises(FileNotFoundError, match="SummaryWriter"):
        tb.launch(tmp_path / "missing")


def test_show_in_ci_mode_plots_the_event_files_without_a_server(logdir, fast, capsys,
                                                               monkeypatch):
    def no_server(*args, **kwargs):
        raise AssertionError("tb.show started a process in static mode")

    monkeypatch.setattr(_tb_server.subprocess, "Popen", no_server)
    shown = []
    monkeypatch.setattr(tb, "_display", shown.append)
    assert tb.show(logdir) is None
    assert "tensorboard --logdir" in capsys.readouterr().out
    [fig] = shown
    titled = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(titled) == {"loss", "sub/acc", "y=x"}
    assert list(titled["y=x"].lines[0].get_ydata()) == [float(i) for i in range(10)]


def test_show_static_on_images_only_shows_the_images(tmp_path, capsys, monkeypatch):
    photo = np.array(Image.open(ANT_PHOTO).convert("RGB"))
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_image("photo", photo, 3, dataformats="HWC")
        writer.add_text("note", "hello", 0)
    shown = []
    monkeypatch.setattr(tb, "_display", shown.append)
    tb.show(tmp_path, static=True)
    [fig] = shown
    [ax] = [ax for ax in fig.axes if ax.images]
    assert ax.get_title() == "photo (step 3)"
    np.testing.assert_array_equal(ax.images[0].get_array(), photo)
    assert "Also logged" in capsys.readouterr().out  # the text tag is named


def test_show_static_on_an_empty_folder_says_so(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(tb, "_display", shown.append)
    tb.show(tmp_path, static=True)
    assert "no scalars in" in shown[0].axes[0].texts[0].get_text()


def test_plot_images_needs_images(logdir):
    with pytest.raises(ValueError, match="no images were logged"):
        tb.plot_images(logdir)


def test_show_interactive_embeds_the_served_url_and_reuses_one_server(logdir, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)  # record what is shown
    board = tb.show(logdir, static=False)
    try:
        assert board.running
        assert tb.show(logdir, static=False) is board
        html = shown[0].data
        assert f'<iframe src="{board.url}"' in html
        assert b"<html" in board.get("").lower()  # the embedded URL answers
    finally:
        board.stop()
    assert _tensorboard_children() == []


# ------------------------------------------------------------------------- plotting
def test_plot_scalars_draws_the_logged_values(logdir):
    fig = tb.plot_scalars(logdir)
    titled = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(titled) == {"loss", "sub/acc", "y=x"}
    x, y = titled["y=x"].lines[0].get_data()
    assert list(x) == list(range(10)) and list(y) == [float(i) for i in range(10)]
    assert fig._repr_png_().startswith(b"\x89PNG")
    only = tb.plot_scalars(logdir, tags=["loss"])
    assert [ax.get_title() for ax in only.axes] == ["loss"]
    with pytest.raises(KeyError, match="y=x"):
        tb.plot_scalars(logdir, tags=["nope"])


# ------------------------------------------------------------------------- check_image
def test_check_image_accepts_what_add_image_accepts(tmp_path):
    photo = np.array(Image.open(ANT_PHOTO).convert("RGB"))
    assert tb.check_image(photo, "HWC") == (None, 3, 512, 768)
    chw = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
    assert tb.check_image(chw) == (None, 3, 512, 768)
    assert tb.check_image(torch.rand(5, 3, 8, 9), "NCHW") == (5, 3, 8, 9)
    assert tb.check_image(np.zeros((4, 6), np.uint8), "HW") == (None, 1, 4, 6)
    with SummaryWriter(str(tmp_path)) as writer:  # and the writer takes them all
        writer.add_image("hwc", photo, 0, dataformats="HWC")
        writer.add_image("chw", chw, 0)
    shapes = {tag: imgs[0][1].shape for tag, imgs in tb.read_images(tmp_path).items()}
    assert shapes == {"hwc": (512, 768, 3), "chw": (512, 768, 3)}


def test_check_image_explains_hwc_passed_as_chw(tmp_path):
    photo = np.array(Image.open(ANT_PHOTO).convert("RGB"))
    with pytest.raises(ValueError, match="512 channels.*dataformats='HWC'"):
        tb.check_image(photo)  # CHW is the default, as in add_image
    with SummaryWriter(str(tmp_path)) as writer, pytest.raises(TypeError):
        writer.add_image("oops", photo, 0)  # what the check saves you from
    chw = torch.from_numpy(photo).permute(2, 0, 1)
    with pytest.raises(ValueError, match="dataformats='CHW'"):
        tb.check_image(chw, "HWC")
    with pytest.raises(ValueError, match="NHWC"):
        tb.check_image(torch.rand(2, 8, 8, 3), "NCHW")


@pytest.mark.parametrize(
    "img, formats, message",
    [
        (Image.open(ANT_PHOTO), "HWC", "not a PIL image"),
        (torch.rand(3, 8, 8) * 255, "CHW", "Divide by 255"),
        (torch.rand(3, 8, 8) * 2 - 1, "CHW", "Normalize"),
        (torch.randint(0, 255, (3, 8, 8)), "CHW", "uint8"),
        (torch.rand(3, 8, 8), "NCHW", "unsqueeze"),
        (torch.rand(8, 8), "CHW", "dataformats='HW'"),
        (np.zeros((3, 8, 8), bool), "CHW", "dtype bool"),
        (torch.rand(3, 8, 8), "XYZ", "not one of"),
        ([[0.0]], "HW", "torch.Tensor or numpy array"),
    ],
)
def test_check_image_rejects_with_a_clear_message(img, formats, message):
    with pytest.raises((TypeError, ValueError), match=message):
        tb.check_image(img, formats)
