"""Pydantic building blocks shared by the spec's schema modules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError


def _number(v):
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"must be a number, got {v!r}"[:80])
    return float(v)


Number = Annotated[float, BeforeValidator(_number)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class Strict(BaseModel):
    """A frozen section of the spec that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def at_path(subpath: tuple, message: str) -> PydanticCustomError:
    """A validation error below the validated value (load.py extends the location by `subpath`)."""
    return PydanticCustomError("at_path", "{message}", {"message": message, "subpath": subpath})
