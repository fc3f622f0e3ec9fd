"""Collection rules for the whole repository (``pytest --nbmake notebooks/ tests/``).

The Chinese notebooks (``notebooks/zh/``) are not executed by the test commands: they are
generated from the English ones, their code cells equal the English code cells (checked by
``tests/test_translations.py``, which also checks their markdown and the exercises' Chinese
messages), so running them again would double the time and test nothing new. To execute them
anyway: ``pytest --nbmake notebooks/zh --run-zh-notebooks``.
"""

from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption("--run-zh-notebooks", action="store_true",
                     help="execute the generated Chinese notebooks in notebooks/zh/ too")


def pytest_ignore_collect(collection_path, config):
    if (collection_path.suffix == ".ipynb" and collection_path.parent.name == "zh"
            and collection_path.parent.parent.name == "notebooks"
            and not config.getoption("--run-zh-notebooks")):
        return True
    return None
