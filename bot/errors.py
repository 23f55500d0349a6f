"""A refusal meant for support staff: a Chinese message and the HTTP status the console answers.

Tickets, notices, FAQ changes and retraining all refuse things the same way, and the console's
`authenticated` wrapper turns any of them into `{"error", "status"}`.
"""
from __future__ import annotations


class StaffError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status
