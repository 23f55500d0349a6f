"""Dialogue decisions as plain functions (actions only call these)."""
