"""Shared test configuration: the source root is importable without installation."""
