#!/usr/bin/env python
"""orchcap's command line: `python manage.py up` runs everything; see `python manage.py help`."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from orchcap.runtime.errors import EngineError

    try:
        execute_from_command_line(sys.argv)
    except (EngineError, ImproperlyConfigured) as exc:
        # Configuration and engine problems are the user's to fix: one line, exit 2, no traceback.
        print(f"orchcap: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
