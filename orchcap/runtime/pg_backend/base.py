"""Django's PostgreSQL backend, plus: start the embedded server on first use, and refuse to run
on a server without pgvector (one clear line instead of a failure deep inside a migration)."""

from pathlib import Path

from django.db.backends.postgresql import base

from orchcap.runtime.errors import PgvectorMissing
from orchcap.runtime.postgres import EmbeddedPostgres
from orchcap.runtime.supervisor import under_supervisor

_checked_servers: set[tuple[str, str]] = set()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):  # type: ignore[no-untyped-def]
        data_dir = self.settings_dict.get("EMBEDDED_DATA_DIR")
        if data_dir and not under_supervisor():  # under `up`, only `up` restarts it
            EmbeddedPostgres(Path(data_dir)).ensure_running()
        connection = super().get_new_connection(conn_params)
        server = (str(self.settings_dict.get("HOST")), str(self.settings_dict.get("PORT")))
        if server not in _checked_servers:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                available = cursor.fetchone() is not None
            if not connection.autocommit:
                connection.rollback()  # leave no open transaction for Django's own setup
            if not available:
                connection.close()
                raise PgvectorMissing(
                    "the PostgreSQL server at DATABASE_URL has no pgvector extension: install "
                    "pgvector on that server, or unset DATABASE_URL to use orchcap's embedded "
                    "PostgreSQL"
                )
            _checked_servers.add(server)
        return connection
