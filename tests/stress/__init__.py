"""Stress tests of the durable stores: real worker processes, real SQLite and PostgreSQL,
SIGKILL at random points (tests/stress/README is the docstring of ``common``)."""
