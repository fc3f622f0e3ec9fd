"""``python -m course_utils`` → :func:`course_utils.cli.main`."""

import sys

from course_utils.cli import main

sys.exit(main())
