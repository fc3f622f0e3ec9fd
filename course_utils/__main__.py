"""``python -m course_utils`` → :func:`course_utils.cli.main`, with Ctrl+C and SIGTERM
handled from the first line on (:mod:`course_utils.interrupts`)."""

from course_utils import interrupts

interrupts.leave(interrupts.main())
