"""Chapter 3 (P7–P8): SummaryWriter, add_scalar, add_image."""

from pathlib import Path

import numpy as np

from course_utils import data, tb
from course_utils.exercises import Exercise, expect


def _check_q1(answer):
    expect(isinstance(answer, (str, Path)), f"give the log folder (a str or Path), got "
           f"{type(answer).__name__}.")
    expect(Path(answer).is_dir(), f"{answer} is not a folder — did the writer create it?")
    scalars = tb.read_scalars(answer)
    expect("y=2x" in scalars, f"no scalar tag 'y=2x' in {answer}; it has {sorted(scalars)}. "
           "Did you call writer.close()?")
    points = scalars["y=2x"]
    steps = [s for s, _ in points]
    expect(sorted(steps) == list(range(100)),
           f"steps should be 0…99 once each; found {len(steps)} points. Log into a fresh folder "
           "(a second run into the same folder adds a second copy of every step).")
    bad = [(s, v) for s, v in points if abs(v - 2 * s) > 1e-6]
    expect(not bad, f"value at step {bad[0][0] if bad else 0} is {bad[0][1] if bad else 0:g}, "
           "not 2 × step — the course's cell logged 3*i here.")


q1 = Exercise(
    "3.1",
    "Log y = 2x correctly: tag 'y=2x', value 2*i at step i for i in range(100), into a NEW "
    "folder; close the writer and assign the folder to `answer`.",
    _check_q1,
    hint_text="writer = SummaryWriter(folder); writer.add_scalar('y=2x', 2 * i, i) in a loop; "
    "writer.close(). A fresh folder: course_utils.checkpoints.new_run_dir('runs', 'ex3').",
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
    wrong=["no/such/folder", 42],
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
