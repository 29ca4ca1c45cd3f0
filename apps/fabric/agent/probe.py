"""What the agent can see about its machine: capabilities, a fingerprint, load and idle time."""

import hashlib
import os
import platform
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

BUSY_CPU_PERCENT = 30.0  # above this the machine counts as in use for "only when idle"


def detect_gpus(timeout: float = 10) -> list[dict[str, Any]]:
    """NVIDIA GPUs through `nvidia-smi` when it is on PATH; [] otherwise or when it fails."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        result = subprocess.run(  # noqa: S603 (a fixed binary found on PATH, fixed arguments)
            [binary, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    gpus = []
    for line in result.stdout.splitlines():
        name, _, memory = line.rpartition(",")
        name, memory = name.strip(), memory.strip()
        if not name:
            continue
        gpu: dict[str, Any] = {"model": name}
        if memory.isdigit():
            gpu["memory_mb"] = int(memory)
        gpus.append(gpu)
    return gpus


def detect_capabilities(disk_path: Path | None = None) -> dict[str, Any]:
    """The machine as the probe sees it; anything else must be declared by the owner."""
    try:
        disk = psutil.disk_usage(str(disk_path or Path.home()))
    except (OSError, RuntimeError):  # a service user may have no home directory
        disk = psutil.disk_usage("/")
    return {
        "cpu_cores": psutil.cpu_count(logical=True) or 1,
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "memory_mb": psutil.virtual_memory().total // 2**20,
        "disk_free_mb": disk.free // 2**20,
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "gpus": detect_gpus(),
    }


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return ""


def fingerprint() -> str:
    """A stable hex id of this machine (machine-id, MAC, host name), shown to the approving
    admin so they can check the node is the machine they expect."""
    material = "|".join([_machine_id(), f"{uuid.getnode():012x}", socket.gethostname()])
    return hashlib.sha256(material.encode()).hexdigest()


def local_timezone() -> str:
    """The IANA name of the machine's timezone, or UTC when it can't be told."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name and "/" in name:
        return name
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1]
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


class IdleTracker:
    """Seconds since the machine was last in use: CPU above BUSY_CPU_PERCENT, or input on a
    logged-in user's terminal. Desktop (X11/Wayland) input is not seen; see docs/fabric.md."""

    def __init__(self) -> None:
        # Idle time counts from the agent's start: we know nothing about before.
        self.last_busy = time.time()
        psutil.cpu_percent(interval=None)  # primes the counter; the first reading is 0.0

    def _last_terminal_input(self) -> float:
        latest = 0.0
        for user in psutil.users():
            if not user.terminal:
                continue
            try:
                latest = max(latest, os.stat(f"/dev/{user.terminal}").st_atime)
            except OSError:
                continue
        return latest

    def sample(self) -> dict[str, Any]:
        """The load summary for a heartbeat, including idle_seconds."""
        now = time.time()
        cpu = psutil.cpu_percent(interval=None)
        if cpu > BUSY_CPU_PERCENT:
            self.last_busy = now
        self.last_busy = max(self.last_busy, min(now, self._last_terminal_input()))
        try:
            load_average = os.getloadavg()[0]
        except OSError:
            load_average = None
        return {
            "cpu_percent": cpu,
            "memory_percent": psutil.virtual_memory().percent,
            "load_average": load_average,
            "idle_seconds": max(0.0, now - self.last_busy),
        }
