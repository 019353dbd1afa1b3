"""Logs, metrics, traces and the version they report."""
