"""Fast mode and folders."""

import pytest

from course_utils import fast_mode, scaled, settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"CI": "true"}, True), ({"COURSE_FAST": "1"}, True),
     ({"CI": "false"}, False), ({"COURSE_FAST": "0", "CI": "1"}, True)],
)
def test_fast_mode_reads_ci_and_course_fast(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert fast_mode() is expected
    assert scaled(10, 1) == (1 if expected else 10)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    assert settings.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_offline_flag(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert settings.offline()
    monkeypatch.setenv("COURSE_OFFLINE", "no")
    assert not settings.offline()
