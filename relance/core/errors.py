"""The one refusal: a request that cannot be done as asked, naming the field and what to change.

Services raise it; the HTTP API answers it with one handler (its status, 422 unless said), the
CLI prints it as one line and exits non-zero.
"""

from __future__ import annotations


class Refused(ValueError):
    """``field`` is where the problem is (``properties.order_id``, ``contact``), ``message`` what
    to change. ``title`` heads the HTTP answer when it should say more than the message."""

    title: str | None = None

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status
