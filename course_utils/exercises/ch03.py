"""Chapter 3 (P7–P8): SummaryWriter, add_scalar, add_image."""

import gc
import itertools
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from course_utils import data, tb
from course_utils.exercises import Exercise, _short, call, expect


def _open_writers(folder) -> list:
    """The SummaryWriters of this Python process that log into ``folder`` and are not
    closed yet (``close()`` sets ``all_writers`` to None)."""
    from torch.utils.tensorboard import SummaryWriter

    try:
        want = Path(folder).resolve()
    except (OSError, RuntimeError, ValueError):
        return []
    with warnings.catch_warnings():  # isinstance on lazy modules may warn
        warnings.simplefilter("ignore")
        writers = [o for o in gc.get_objects() if isinstance(o, SummaryWriter)]
    found = []
    for w in writers:
        try:
            same = Path(str(w.log_dir)).resolve() == want
        except (OSError, RuntimeError, ValueError, TypeError):
            same = False
        if same and getattr(w, "all_writers", None) is not None:
            found.append(w)
    return found


#: how many entries of the answer's folder the checker looks at (never a walk of a disk)
_MAX_ENTRIES = 2000


def _event_files(folder: Path) -> list[Path]:
    entries = list(itertools.islice(folder.iterdir(), _MAX_ENTRIES))
    return [p for p in entries if "tfevents" in p.name and p.is_file()]


def _check_q1(answer):
    expect(isinstance(answer, (str, Path)), f"give the log folder (a str or Path), got "
           f"{type(answer).__name__}.")
    expect(Path(answer).is_dir(), f"{answer} is not a folder — did the writer create it?")
    folder = Path(answer)
    expect(not _open_writers(folder), f"the SummaryWriter that logs into {answer} is still "
           "open: call writer.close() — it writes what it still holds to the disk (until "
           "then the folder may hold only part of the points).")
    events = _event_files(folder)
    if not events:
        subs = [p.name for p in itertools.islice(folder.iterdir(), _MAX_ENTRIES)
                if p.is_dir() and any("tfevents" in q.name
                                      for q in itertools.islice(p.iterdir(), _MAX_ENTRIES))]
        expect(not subs, f"{answer} holds no event file itself, but its sub-folders {subs[:3]} "
               "do: give the folder you passed to SummaryWriter.")
        expect(False, f"{answer} holds no event file (events.out.tfevents.…): give the folder "
               "you passed to SummaryWriter(...), after writer.close().")
    scalars = tb._scalars_of(tb._events_in_order(folder))
    expect("y=2x" in scalars, f"no scalar tag 'y=2x' in {answer}; it has "
           f"{sorted(scalars)}.")
    points = scalars["y=2x"]
    steps = [s for s, _ in points]
    expect(len(events) == 1 or sorted(steps) == list(range(100)),
           f"{answer} holds {len(events)} event files: log into a fresh folder (a second "
           "run into the same folder adds a second copy of every step).")
    expect(sorted(steps) == list(range(100)),
           f"steps should be 0…99 once each; found {len(steps)} points, steps "
           f"{min(steps)}…{max(steps)}: add_scalar(tag, value, step) with step = i.")
    bad = [(s, v) for s, v in points if abs(v - 2 * s) > 1e-6]
    expect(not bad, f"value at step {bad[0][0] if bad else 0} is {bad[0][1] if bad else 0:g}, "
           "not 2 × step — the course's cell logged 3*i here.")


_UNCLOSED: list = []


q1 = Exercise(
    "3.1",
    "Log y = 2x correctly: tag 'y=2x', value 2*i at step i for i in range(100), into a NEW "
    "folder; close the writer and assign the folder to `answer`.",
    _check_q1,
    hint_text="writer = SummaryWriter(folder); writer.add_scalar('y=2x', 2 * i, i) in a loop; "
    "writer.close(). A fresh folder: course_utils.runs.new_run_dir('runs', 'ex3').",
    solution_code="""
        import tempfile
        from torch.utils.tensorboard import SummaryWriter
        folder = tempfile.mkdtemp(prefix="ex3_1_")
        writer = SummaryWriter(folder)
        for i in range(100):
            writer.add_scalar("y=2x", 2 * i, i)
        writer.close()
        answer = folder
    """,
    wrong=["no/such/folder", 42, "/"],
    time_limit=30.0,  # the first call imports TensorBoard
)


def _check_q2(answer):
    expect(isinstance(answer, str), f"give the dataformats string, got {type(answer).__name__}.")
    arr = np.asarray(data.open_rgb(data.HYMENOPTERA_SAMPLE / "train" / "ants" / "0013035.jpg"))
    try:
        shape = tb.check_image(arr, answer)
    except ValueError as exc:
        raise AssertionError(f"with dataformats={answer!r}: {exc}") from None
    expect((shape.height, shape.width) == arr.shape[:2],
           f"{answer!r} reads the photo as {shape.height}x{shape.width}, but it is "
           f"{arr.shape[0]} high and {arr.shape[1]} wide.")


q2 = Exercise(
    "3.2",
    "np.array(Image.open('0013035.jpg')).shape is (512, 768, 3). Which `dataformats` string "
    "must you pass to writer.add_image for this array? Assign it to `answer`.",
    _check_q2,
    hint_text="Read the shape's axes in order: height, width, channels.",
    solution_code="answer = 'HWC'",
    wrong=["CHW", "WHC", "HW", "NHWC"],
)


# ----------------------------------------------------------------------------- 3.3
def _check_q3(answer):
    expect(callable(answer) and not isinstance(answer, type),
           f"`answer` should be your function log_both (no parentheses), got {_short(answer)}.")
    gen = torch.Generator().manual_seed(3)
    chw = torch.rand(3, 20, 30, generator=gen)  # like ToTensor's output: C, H, W in [0, 1]
    hwc = (torch.rand(24, 36, 3, generator=gen) * 255).to(torch.uint8).numpy()  # like np.array(img)
    with tempfile.TemporaryDirectory(prefix="ex3_3_") as folder:
        try:
            call("log_both(logdir, tensor_chw, array_hwc)", answer, folder, chw, hwc)
        except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
            # the learner's writer refused an image: explain why
            raise AssertionError(
                f"log_both raised {type(exc).__name__}: {str(exc)[:120]}. add_image reads "
                "CHW unless told otherwise: the numpy array (H, W, C) needs dataformats='HWC', "
                "the tensor (C, H, W) needs none.") from None
        finally:
            still_open = _open_writers(folder)
            for writer in still_open:  # before the folder goes: its thread must not write
                writer.close()
        expect(not still_open, "log_both left its SummaryWriter open: call writer.close() at "
               "the end (or use `with SummaryWriter(logdir) as writer:`) — until then the "
               "images may not be on the disk.")
        images = tb.read_images(folder)
    for tag in ("tensor", "array"):
        expect(tag in images, f"no image with tag {tag!r} in the folder (it has "
               f"{sorted(images)}). Log both, then call writer.close().")
    (step_t, got_t), *_ = images["tensor"]
    (step_a, got_a), *_ = images["array"]
    expect((step_t, step_a) == (0, 0), f"the images are logged at steps {step_t} and "
           f"{step_a}; log both at step 0 (add_image(tag, img, 0, ...)).")
    expect(got_t.shape[:2] == (20, 30), f"the tensor shows as {got_t.shape[0]}×{got_t.shape[1]}, "
           "not 20 high × 30 wide: a CHW tensor needs no dataformats (the default is 'CHW').")
    expect(got_a.shape[:2] == (24, 36), f"the array shows as {got_a.shape[0]}×{got_a.shape[1]}, "
           "not 24 high × 36 wide: its axes are (H, W, C) → dataformats='HWC'.")
    want_t = (chw.permute(1, 2, 0).numpy() * 255)
    expect(np.abs(got_t.astype(float) - want_t).max() <= 1.0,
           "the tensor's pixels changed: log it as it is (values in [0, 1]).")
    expect(np.array_equal(got_a, hwc), "the array's pixels changed: log it as it is.")


def _log_without_dataformats(logdir, tensor_chw, array_hwc):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(logdir) as writer:
        writer.add_image("tensor", tensor_chw, 0)
        writer.add_image("array", array_hwc, 0)


def _log_both_as_hwc(logdir, tensor_chw, array_hwc):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(logdir) as writer:
        writer.add_image("tensor", tensor_chw, 0, dataformats="HWC")
        writer.add_image("array", array_hwc, 0, dataformats="HWC")


def _log_array_transposed(logdir, tensor_chw, array_hwc):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(logdir) as writer:
        writer.add_image("tensor", tensor_chw, 0)
        writer.add_image("array", array_hwc.transpose(2, 0, 1), 0, dataformats="CWH")


def _log_at_step_1(logdir, tensor_chw, array_hwc):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(logdir) as writer:
        writer.add_image("tensor", tensor_chw, 1)
        writer.add_image("array", array_hwc, 1, dataformats="HWC")


def _log_unclosed(logdir, tensor_chw, array_hwc):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(logdir)
    writer.add_image("tensor", tensor_chw, 0)
    writer.add_image("array", array_hwc, 0, dataformats="HWC")
    _UNCLOSED.append(writer)


q3 = Exercise(
    "3.3",
    "Write a function `log_both(logdir, tensor_chw, array_hwc)` that logs, with one "
    "`SummaryWriter(logdir)`, the tensor `tensor_chw` (shape (C, H, W), like the output of "
    "`ToTensor()`) under the tag `'tensor'` and the numpy array `array_hwc` (shape (H, W, C), "
    "like `np.array(Image.open(...))`) under the tag `'array'`, both at step 0, and closes "
    "the writer. The checker calls it with images of its own and reads them back. Assign the "
    "function to `answer`.",
    _check_q3,
    hint_text="writer.add_image(tag, img, step, dataformats=...): the default 'CHW' fits the "
    "tensor; the array needs dataformats='HWC'. `with SummaryWriter(logdir) as writer:` closes "
    "it for you.",
    solution_code="""
        from torch.utils.tensorboard import SummaryWriter

        def log_both(logdir, tensor_chw, array_hwc):
            with SummaryWriter(logdir) as writer:
                writer.add_image("tensor", tensor_chw, 0)
                writer.add_image("array", array_hwc, 0, dataformats="HWC")

        answer = log_both
    """,
    wrong=[_log_without_dataformats, _log_both_as_hwc, _log_array_transposed, _log_at_step_1,
           _log_unclosed, "HWC"],
    time_limit=30.0,  # the first call imports TensorBoard
)
