"""Every service test runs on SQLite and on the real PostgreSQL (fixtures `db` and
`world` live in tests/conftest.py, shared with the rules tests)."""
