"""Typed reads of JSON attributes that give the same answers on SQLite and PostgreSQL.

``contacts.attributes`` is a JSON column. The two databases disagree on what a JSON value
compares equal to (PostgreSQL's ``->>`` turns the number 12 into the text '12', SQLite keeps
an integer) and on how to look inside an array, so each reader here is a small SQL construct
compiled per dialect. Keys and values always travel as bound parameters.

Kinds are named ``string``, ``number``, ``true``, ``false``, ``null``, ``array`` and ``object``;
a missing key has no kind (NULL).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnExpressionArgument,
    Float,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["json_array_has", "json_kind", "json_number", "json_text"]


def _path(key: str) -> str:
    # keys are checked against [A-Za-z_][A-Za-z0-9_]* before they get here
    return f'$."{key}"'


class _JsonRead(FunctionElement[Any]):
    """Arguments: the JSON column, the key, the SQLite path of the key (and a value)."""

    inherit_cache = True

    def parts(self) -> list[ColumnElement[Any]]:
        return list(self.clauses)


class json_kind(_JsonRead):
    inherit_cache = True
    type = String()
    name = "json_kind"


class json_text(_JsonRead):
    inherit_cache = True
    type = String()
    name = "json_text"


class json_number(_JsonRead):
    inherit_cache = True
    type = Float()
    name = "json_number"


class json_array_has(_JsonRead):
    inherit_cache = True
    type = Boolean()
    name = "json_array_has"


def kind(column: ColumnExpressionArgument[Any], key: str) -> json_kind:
    return json_kind(column, literal(key), literal(_path(key)))


def text(column: ColumnExpressionArgument[Any], key: str) -> json_text:
    """The value when it is a JSON string, else NULL."""
    return json_text(column, literal(key), literal(_path(key)))


def number(column: ColumnExpressionArgument[Any], key: str) -> json_number:
    """The value when it is a JSON number, else NULL (never a cast error on odd data)."""
    return json_number(column, literal(key), literal(_path(key)))


def array_has(column: ColumnExpressionArgument[Any], key: str, value: str) -> json_array_has:
    """Whether the value is a JSON array holding the string ``value``."""
    return json_array_has(column, literal(key), literal(_path(key)), literal(value))


# -- PostgreSQL ------------------------------------------------------------------------------


def _pg_typeof(column: Any, key: Any) -> Any:
    return func.json_typeof(column.op("->")(key))


@compiles(json_kind, "postgresql")
def _pg_kind(element: json_kind, compiler: Any, **kw: Any) -> str:
    column, key, _ = element.parts()
    typeof = _pg_typeof(column, key)
    expr = case((typeof == "boolean", column.op("->>")(key)), else_=typeof)
    return compiler.process(expr, **kw)


@compiles(json_text, "postgresql")
def _pg_text(element: json_text, compiler: Any, **kw: Any) -> str:
    column, key, _ = element.parts()
    expr = case((_pg_typeof(column, key) == "string", column.op("->>", return_type=String())(key)))
    return compiler.process(expr, **kw)


@compiles(json_number, "postgresql")
def _pg_number(element: json_number, compiler: Any, **kw: Any) -> str:
    column, key, _ = element.parts()
    value = cast(column.op("->>", return_type=String())(key), Float())
    return compiler.process(case((_pg_typeof(column, key) == "number", value)), **kw)


@compiles(json_array_has, "postgresql")
def _pg_array_has(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, key, _, value = element.parts()
    inner = column.op("->")(key)
    # jsonb '?' matches string elements only, like the SQLite side; a string scalar would also
    # match '?', hence the array check first.
    expr = and_(func.json_typeof(inner) == "array", cast(inner, JSONB).op("?", return_type=Boolean())(value))
    return compiler.process(expr, **kw)


# -- SQLite ----------------------------------------------------------------------------------


@compiles(json_kind, "sqlite")
def _lite_kind(element: json_kind, compiler: Any, **kw: Any) -> str:
    column, _, path = element.parts()
    kind_ = func.json_type(column, path)
    expr = case(
        (kind_ == "text", "string"),
        (kind_.in_(["integer", "real"]), "number"),
        else_=kind_,
    )
    return compiler.process(expr, **kw)


@compiles(json_text, "sqlite")
def _lite_text(element: json_text, compiler: Any, **kw: Any) -> str:
    column, _, path = element.parts()
    expr = case((func.json_type(column, path) == "text", func.json_extract(column, path)))
    return compiler.process(expr, **kw)


@compiles(json_number, "sqlite")
def _lite_number(element: json_number, compiler: Any, **kw: Any) -> str:
    column, _, path = element.parts()
    value = cast(func.json_extract(column, path), Float())
    return compiler.process(case((func.json_type(column, path).in_(["integer", "real"]), value)), **kw)


@compiles(json_array_has, "sqlite")
def _lite_array_has(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, _, path, value = element.parts()
    items = func.json_each(column, path).table_valued("value", "type")
    found = exists(select(1).select_from(items).where(items.c.type == "text", items.c.value == value))
    expr = and_(func.json_type(column, path) == "array", found)
    return compiler.process(expr, **kw)
