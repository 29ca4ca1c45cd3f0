"""The agent's identity on disk: DIR/agent.json, mode 0600, in a 0700 directory."""

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIG_NAME = "agent.json"


class ConfigError(Exception):
    """No usable configuration; the message says what to do."""


@dataclass
class AgentConfig:
    server: str
    node_id: int
    credential: str
    name: str
    fingerprint: str
    enrolled_at: str

    @property
    def authorization(self) -> str:
        return f"Node {self.node_id}:{self.credential}"


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "orchcap-agent"


def config_path(directory: Path) -> Path:
    return directory / CONFIG_NAME


def load(directory: Path) -> AgentConfig:
    path = config_path(directory)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"not enrolled: {path} does not exist (run `orchcap-agent enroll` first)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return AgentConfig(
            server=str(data["server"]),
            node_id=int(data["node_id"]),
            credential=str(data["credential"]),
            name=str(data.get("name", "")),
            fingerprint=str(data.get("fingerprint", "")),
            enrolled_at=str(data.get("enrolled_at", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path} is not an orchcap-agent configuration") from None


def _make_private(directory: Path) -> None:
    # mkdir's mode only applies to a new directory: an existing --config directory keeps its
    # own, and the credential must not sit where others can list or enter.
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        try:
            directory.chmod(0o700)
        except OSError as exc:
            raise ConfigError(
                f"{directory} is open to other users (mode {mode:o}) and can't be made 0700: "
                f"{exc.strerror}; choose another --config directory"
            ) from None


def save(directory: Path, config: AgentConfig) -> Path:
    """Write atomically; the file is created 0600 (it holds the node's credential) so it is
    never readable by others, not even between create and chmod."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _make_private(directory)
    path = config_path(directory)
    temporary = directory / f".{CONFIG_NAME}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(config), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
