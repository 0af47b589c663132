"""Contact lists at the edges (HTTP API, CLI): what may be asked and what is answered."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Salesperson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, min_length=1, max_length=200, description="default: L<unix time>, like the seed platform"
    )
    contacts: list[str] = Field(default_factory=list, description="external ids of the first members")
    salesperson: Salesperson | None = None


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[str] = Field(min_length=1, description="external ids")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(min_length=2, description="names of the lists to merge")
    name: str | None = Field(None, min_length=1, max_length=200, description="default: L<unix time>")


class ListOut(BaseModel):
    name: str
    members: int
    archived: bool
    salesperson: Salesperson | None
