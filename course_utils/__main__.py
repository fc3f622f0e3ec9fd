"""``python -m course_utils`` and the ``course-utils`` console script: both run :func:`run`,
so both handle Ctrl+C and SIGTERM from the first line on and end with the same exit codes.

:func:`main` installs the signal handlers (:mod:`course_utils.interrupts`) before the slow
imports, then runs :func:`course_utils.cli.main`; :func:`run` ends the process with its code.
"""

from __future__ import annotations

from course_utils import interrupts


def main(argv: list[str] | None = None) -> int:
    """Handlers first, then the imports and :func:`course_utils.cli.main`; returns the exit
    code (argparse's too)."""
    interrupts.install()
    finished, held = False, None
    try:
        from course_utils import cli

        code = cli.main(argv)
        finished = True
        held = interrupts.finish()
    except KeyboardInterrupt as exc:  # during the imports, or just after the command
        code = interrupts.report(exc, "the command had finished: everything is saved."
                                 if finished else "nothing was started or written.")
    except SystemExit as exc:  # argparse: --help, a bad option
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    held = held or interrupts.finish()
    if held is not None:  # came during the last writes
        code = interrupts.report(interrupts.Interrupted(held),
                                 "it came as the command ended: everything is saved.")
    return code


def run() -> None:
    """The program: :func:`main`, then end the process with its exit code."""
    interrupts.leave(main())


if __name__ == "__main__":
    run()
