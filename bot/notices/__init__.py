"""Incident and maintenance notices: stored, timed, shown before the FAQ answer, API and CLI."""
