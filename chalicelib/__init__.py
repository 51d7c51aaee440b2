"""Backup controller for Lain clusters: everything behind the Chalice handlers in app.py."""

__version__ = "0.1.0"
