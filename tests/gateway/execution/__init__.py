"""Tests of gateway.execution."""
