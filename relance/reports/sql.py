"""Time expressions that give the same answers on SQLite and PostgreSQL.

SQLite keeps ``UTCDateTime`` columns as text, ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC;
PostgreSQL as ``timestamptz``, whose text form follows the session's time zone. Each
construct here is compiled per dialect so that a month or a shifted instant is read in UTC
on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, func, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["plus_seconds", "utc_month"]


class utc_month(FunctionElement[str]):
    """``YYYY-MM`` of a timestamp, in UTC."""

    inherit_cache = True
    type = String()
    name = "utc_month"


class _plus_seconds(FunctionElement[Any]):
    inherit_cache = True
    name = "plus_seconds"


def plus_seconds(column: ColumnElement[Any], seconds: int) -> _plus_seconds:
    """The instant ``seconds`` (whole seconds) after the column's, comparable with the column."""
    return _plus_seconds(column, literal(int(seconds)))


# The formats are rendered inline, not bound: PostgreSQL must see the GROUP BY expression
# and the selected one as the same expression, which two bound parameters ($1, $5) are not.


@compiles(utc_month, "postgresql")
def _pg_month(element: utc_month, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    utc = func.timezone(literal_column("'UTC'"), column)
    return compiler.process(func.to_char(utc, literal_column("'YYYY-MM'")), **kw)


@compiles(utc_month, "sqlite")
def _lite_month(element: utc_month, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(func.strftime(literal_column("'%Y-%m'"), column), **kw)


@compiles(_plus_seconds, "postgresql")
def _pg_plus(element: _plus_seconds, compiler: Any, **kw: Any) -> str:
    column, seconds = element.clauses
    return f"({compiler.process(column, **kw)} + make_interval(secs => {compiler.process(seconds, **kw)}))"


@compiles(_plus_seconds, "sqlite")
def _lite_plus(element: _plus_seconds, compiler: Any, **kw: Any) -> str:
    column, seconds = element.clauses
    # strftime drops the microseconds: they are copied back from the stored text, so the result
    # compares with other instants as text, exactly.
    col = compiler.process(column, **kw)
    secs = compiler.process(seconds, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%S', {col}, ({secs}) || ' seconds') || substr({col}, 20))"
