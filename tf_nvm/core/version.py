"""The version of tf_nvm (one place; ``setup.cfg`` reads it without importing the package)."""

__all__ = ["__version__"]

__version__ = "0.4.0"
"""Semantic versioning (MAJOR.MINOR.PATCH): see CHANGELOG.md, one section per release."""
