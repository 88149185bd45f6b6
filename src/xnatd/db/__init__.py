"""Metadata storage: SQLAlchemy tables, the engine, migrations and queries."""
