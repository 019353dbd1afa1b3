"""Tests of gateway.server."""
