"""Stress tests of the durable stores: real worker processes, real SQLite and PostgreSQL,
SIGKILL at random points. How the runs are built: the docstrings of ``common`` and
``worker``."""
