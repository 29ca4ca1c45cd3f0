"""Artefacts on the node: downloaded by hash with the node credential, checked, then cached.

The server hands an artefact only to a node holding a task that names it. The bytes are checked
against their SHA-256 on download and again on every read from the cache (a file in the cache
directory could have been changed), and never used when they don't match.
"""

import json
import os
from pathlib import Path
from urllib.parse import urlencode

from apps.fabric import payloads
from apps.fabric.agent.client import request_bytes


class ArtifactCache:
    def __init__(self, directory: Path, server: str, authorization: str) -> None:
        self.directory = directory
        self.server = server
        self.authorization = authorization

    def fetch(self, sha256: str) -> bytes:
        if not payloads.is_sha256(sha256):
            raise payloads.PayloadError(f"not a SHA-256: {sha256!r}")
        path = self.directory / sha256
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        if data is not None:
            try:
                payloads.verify(data, sha256)
                return data
            except payloads.ArtifactMismatch:
                path.unlink(missing_ok=True)  # corrupted or tampered: fetch it again
        data = request_bytes(
            "GET",
            f"{self.server}/api/v1/fabric/artifacts/{sha256}",
            authorization=self.authorization,
            timeout=300,
        )
        payloads.verify(data, sha256)
        self._keep(path, data)
        return data

    def upload(self, *, task: int, attempt: int, token: str, data: bytes, name: str = "") -> str:
        """Store bytes this attempt produced on the server (kept in the cache too, since the
        node may need them next); returns the SHA-256 the server answered."""
        query = urlencode({"attempt": attempt, "token": token, "name": name})
        reply = request_bytes(
            "POST",
            f"{self.server}/api/v1/fabric/tasks/{task}/artifacts?{query}",
            data,
            authorization=self.authorization,
            timeout=300,
        )
        sha256 = json.loads(reply).get("sha256", "")
        payloads.verify(data, sha256)
        self._keep(self.directory / sha256, data)
        return sha256

    def _keep(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
