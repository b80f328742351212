"""Command-line client for the Aethir network dashboard (HTTP API only)."""

__version__ = "0.1.0"
