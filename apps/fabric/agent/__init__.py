"""orchcap-agent: runs on a machine that lends its spare capacity to orchcap.

Nothing in this package may import Django or orchcap's settings: the agent runs on machines that
have no database credentials, and talks to the server only over HTTP(S), outbound.
"""

from importlib import metadata

try:
    __version__ = metadata.version("orchcap")
except metadata.PackageNotFoundError:  # running from a source tree that isn't installed
    __version__ = "0+unknown"
