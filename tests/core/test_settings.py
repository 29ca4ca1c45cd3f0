"""Bad configuration stops orchcap with the variable's name and what was expected, never a traceback."""

import os
import stat
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from orchcap.env import env_bool, env_int, env_list, env_url
from tests.processes import run_manage


def test_env_int_names_the_variable(monkeypatch):
    monkeypatch.setenv("ORCHCAP_X", "ten")
    with pytest.raises(ImproperlyConfigured, match="ORCHCAP_X must be an integer, got 'ten'"):
        env_int("ORCHCAP_X", 1)


def test_env_int_enforces_bounds(monkeypatch):
    monkeypatch.setenv("ORCHCAP_X", "0")
    with pytest.raises(ImproperlyConfigured, match="ORCHCAP_X must be at least 1"):
        env_int("ORCHCAP_X", 5, minimum=1)


def test_env_bool_accepts_common_spellings_and_rejects_others(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be true or false, got 'maybe'"):
        env_bool("FLAG", True)


def test_env_list_and_url(monkeypatch):
    monkeypatch.setenv("HOSTS", "a.example, b.example ,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("DB", "mysql://root:secret@host/db")
    with pytest.raises(ImproperlyConfigured) as info:
        env_url("DB", ("postgres",))
    assert "DB must be a URL starting with postgres://" in str(info.value)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false, got 'maybe'"),
        (
            "ORCHCAP_WORKER_CONCURRENCY",
            "ten",
            "ORCHCAP_WORKER_CONCURRENCY must be an integer, got 'ten'",
        ),
        ("DATABASE_URL", "mysql://u@h/db", "DATABASE_URL must be a URL starting with postgres://"),
        ("CELERY_BROKER_URL", "sqs://x", "CELERY_BROKER_URL must be a URL starting with redis://"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
    ],
)
def test_bad_variable_stops_manage_py_with_one_line_and_exit_2(variable, value, message):
    result = run_manage("check", **{variable: value})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_secret_key_is_required_when_debug_is_off():
    result = run_manage("check", DEBUG="false", SECRET_KEY=None)
    assert result.returncode == 2
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_local_secret_key_is_generated_once_and_private(settings):
    key_file = settings.DATA_DIR / "secret_key"
    assert key_file.read_text().strip() == settings.SECRET_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory nobody may write to: read-only bits, and immutable when we are root."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(locked)], check=True)
    yield locked
    if immutable:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_unwritable_data_dir_is_one_clear_line(unwritable_dir):
    result = run_manage("check", ORCHCAP_DATA_DIR=str(unwritable_dir))
    assert result.returncode == 2
    assert f"orchcap: cannot write to {unwritable_dir}" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_under_a_file_is_one_clear_line(tmp_path):
    # Works as root too: nobody can create a directory below a regular file.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    result = run_manage("check", ORCHCAP_DATA_DIR=str(blocker / "var"))
    assert result.returncode == 2
    assert "cannot write to" in result.stderr
    assert "ORCHCAP_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "orchcap.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://orchcap.example.com",
}


def test_documented_production_settings_pass_check_deploy_without_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# Empty means "default" for every type (docs/operations.md): an empty line left in a deployment
# file must never flip a safety setting.
@pytest.mark.parametrize(
    ("reader", "default"),
    [
        (lambda: env_bool("ORCHCAP_X", True), True),
        (lambda: env_int("ORCHCAP_X", 7), 7),
        (lambda: env_list("ORCHCAP_X", ["a.example"]), ["a.example"]),
        (lambda: env_url("ORCHCAP_X", ("redis",)) or "unset", "unset"),
    ],
    ids=["bool", "int", "list", "url"],
)
@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_variable_means_its_default(monkeypatch, reader, default, empty):
    monkeypatch.setenv("ORCHCAP_X", empty)
    assert reader() == default


def test_empty_ssl_redirect_keeps_the_production_default():
    code = (
        "from django.conf import settings;"
        "print(settings.SECURE_SSL_REDIRECT, settings.ALLOWED_HOSTS, settings.DEBUG)"
    )
    result = run_manage(
        "shell", "-c", code, **{**PRODUCTION, "SECURE_SSL_REDIRECT": "", "ALLOWED_HOSTS": ""}
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip().splitlines()[-1]
    assert printed.startswith("True ")
    assert "'localhost'" in printed


def test_empty_debug_means_debug_on():
    result = run_manage(
        "shell", "-c", "from django.conf import settings; print(settings.DEBUG)", DEBUG=""
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"
