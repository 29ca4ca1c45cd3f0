"""Embedded engines (PostgreSQL + pgvector, a Valkey broker) and the `up` supervisor.

Nothing here imports Django: settings, manage.py and the test fixtures use it before Django is set up.
"""
