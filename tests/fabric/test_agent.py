"""orchcap-agent without a server: arguments, its config file, the probe, no Django inside."""

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from apps.fabric.agent import cli, config, probe

AGENT_DIR = Path(cli.__file__).parent


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse exits on its own for usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "orchcap-agent: choose a command: enroll, status or run"),
        (["enroll", "--token", "t"], "orchcap-agent: the following arguments are required: --server"),
        (["enroll", "--server", "ftp://x", "--token", "t"], "--server must be an http:// or https:// URL"),
        (["enroll", "--server", "http://x", "--token", "t", "--declare", "gpus"], "must look like key=value"),
        (["enroll", "--server", "http://x", "--token", "t", "--label", "Site=x"], "the key must be lower-case"),
        (["enroll", "--server", "http://x", "--token", "t", "--max-tasks", "0"], "must be from 1 to 256"),
        (["enroll", "--server", "http://x", "--token", "t", "--class", "laptop"], "invalid choice: 'laptop'"),
        (["run", "--interval", "soon"], "must be a number of seconds"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1, err
    assert out == ""


def test_status_and_run_without_enrolling_say_so(capsys, tmp_path):
    for command in ("status", "run"):
        code, _, err = run_cli(capsys, command, "--config", str(tmp_path / "none"))
        assert code == 1
        assert "not enrolled" in err
        assert "orchcap-agent enroll" in err


def test_enrolling_twice_into_one_config_is_refused_before_contacting_anyone(capsys, tmp_path):
    config.save(tmp_path, config.AgentConfig("http://x", 1, "ocn_s", "n", "ab", "now"))
    code, _, err = run_cli(
        capsys,
        "enroll",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--config",
        str(tmp_path),
    )
    assert code == 1
    assert "already enrolled" in err


def test_config_is_written_0600_in_a_0700_directory_and_read_back(tmp_path):
    directory = tmp_path / "agent-a"
    saved = config.AgentConfig("https://orchcap.example", 7, "ocn_secret", "box", "ab" * 32, "t")
    path = config.save(directory, saved)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert config.load(directory) == saved
    assert saved.authorization == "Node 7:ocn_secret"
    assert [p.name for p in directory.iterdir()] == ["agent.json"]  # no temporary left behind


def test_an_existing_config_directory_others_can_read_is_made_0700(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o755)
    config.save(directory, config.AgentConfig("http://x", 1, "ocn_s", "n", "ab", "t"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_rewriting_a_config_that_others_could_read_makes_it_private(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text("{}")
    path.chmod(0o644)
    config.save(tmp_path, config.AgentConfig("http://x", 1, "ocn_s", "n", "ab", "t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["credential"] == "ocn_s"


def test_a_broken_config_is_named(tmp_path):
    (tmp_path / "agent.json").write_text('{"server": "http://x"}')
    with pytest.raises(config.ConfigError, match="is not an orchcap-agent configuration"):
        config.load(tmp_path)


def test_default_config_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.default_config_dir() == tmp_path / "orchcap-agent"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config.default_config_dir() == Path.home() / ".config" / "orchcap-agent"


def test_declared_values_get_their_types():
    assert [cli._typed(v) for v in ("1", "1.5", "true", "no", "A100")] == [1, 1.5, True, False,
                                                                            "A100"]  # fmt: skip


def test_probe_sees_this_machine():
    caps = probe.detect_capabilities()
    assert caps["cpu_cores"] >= 1
    assert caps["memory_mb"] > 0
    assert caps["os"]
    assert isinstance(caps["gpus"], list)
    assert len(probe.fingerprint()) == 64
    assert probe.fingerprint() == probe.fingerprint()
    sample = probe.IdleTracker().sample()
    assert 0 <= sample["cpu_percent"] <= 100
    assert sample["idle_seconds"] >= 0


def test_gpus_come_from_nvidia_smi_when_it_is_on_path(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        '#!/bin/sh\necho "NVIDIA GeForce RTX 4090, 24564"\necho "NVIDIA A100-SXM4-80GB, 81920"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert probe.detect_gpus() == [
        {"model": "NVIDIA GeForce RTX 4090", "memory_mb": 24564},
        {"model": "NVIDIA A100-SXM4-80GB", "memory_mb": 81920},
    ]
    fake.write_text("#!/bin/sh\nexit 9\n")
    assert probe.detect_gpus() == []


AGENT_SIDE = ("apps.fabric.agent", "apps.fabric.payloads", "apps.fabric.protocol")


def test_the_agent_imports_nothing_from_django_or_the_server():
    """It runs on machines without database credentials: only the standard library, psutil,
    Celery/kombu, its own modules and the payload and protocol modules it shares."""
    sources = [*AGENT_DIR.glob("*.py"), AGENT_DIR.parent / "payloads.py",
               AGENT_DIR.parent / "protocol.py"]  # fmt: skip
    for source in sources:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in ("django", "ninja", "orchcap"), (source.name, name)
                if top == "apps":
                    assert name.startswith(AGENT_SIDE), (source.name, name)


def test_importing_the_whole_agent_loads_no_django_settings_database_or_server_code():
    # (kombu imports django.utils.functional when Django is installed; that needs no settings.)
    code = (
        "import sys\n"
        "import apps.fabric.agent.cli, apps.fabric.agent.worker, apps.fabric.agent.reporter\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('django.conf', 'django.db', "
        "'django.apps', 'orchcap', 'ninja')) or (m.startswith('apps.') and not "
        f"m.startswith({AGENT_SIDE!r}) and m != 'apps.fabric'))\n"
        "assert not bad, bad\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=AGENT_DIR.parents[2], timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
