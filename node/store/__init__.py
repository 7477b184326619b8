"""Storage behind a small interface: SQLite (default) and PostgreSQL."""
