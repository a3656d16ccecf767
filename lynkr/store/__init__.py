"""Persistent state: SQLite by default (``database.Database``)."""

from lynkr.store.database import Database

__all__ = ["Database"]
