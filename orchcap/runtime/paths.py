import hashlib
import os
import tempfile
from pathlib import Path

from orchcap.runtime.errors import EngineError

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# AF_UNIX paths are limited to 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100


def data_dir() -> Path:
    """Where orchcap keeps its state: ORCHCAP_DATA_DIR, else var/ beside manage.py."""
    raw = os.environ.get("ORCHCAP_DATA_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else BASE_DIR / "var"


def run_dir(data: Path) -> Path:
    """Directory for sockets and pid files; short enough for unix socket paths.

    Deterministic for a given data dir, so settings can name the sockets without starting anything.
    """
    candidate = data / "run"
    if len(str(candidate / "broker" / "valkey.sock")) <= _MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"orchcap-{digest}"


def pg_socket_dir(data: Path) -> Path:
    return run_dir(data) / "pg"


def broker_socket(data: Path) -> Path:
    return run_dir(data) / "broker" / "valkey.sock"


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and prove it is writable, or stop with one clear line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise EngineError(
            f"cannot write to {path} ({exc.strerror or exc}); "
            "fix its permissions or set ORCHCAP_DATA_DIR to a writable directory"
        ) from None
    return path
