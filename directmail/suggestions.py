""" "Did you mean …?" for a mistyped key or value of the project's YAML (difflib), found from the pydantic
model the YAML is read into, so a suggestion is always a key or value the model accepts."""

from __future__ import annotations

import difflib
import re
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def did_you_mean(word: str, choices: list[str]) -> str:
    """' (did you mean `x`?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    if not close:
        folded = {choice.casefold(): choice for choice in choices}
        close = [folded[word.casefold()]] if word.casefold() in folded else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def keys_at(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at `location` (a pydantic error's loc, without its last part) may hold."""
    candidates: list[Any] = [model]
    for part in location:
        candidates = [step for candidate in candidates for step in _step(candidate, part)]
    return sorted({key for candidate in candidates for key in _fields(candidate)})


def _fields(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _members(annotation: Any) -> list[Any]:
    """The annotation's alternatives: Union / Optional / Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _members(arg)]
    if origin is not None and hasattr(annotation, "__metadata__"):  # Annotated[X, ...]
        return _members(get_args(annotation)[0])
    return [annotation]


def _step(annotation: Any, part: Any) -> list[Any]:
    found = []
    for member in _members(annotation):
        origin = get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(str(part)) or next(
                (f for f in member.model_fields.values() if f.alias == part), None
            )
            if field is not None:
                found += _members(field.annotation)
            elif _tagged(member, part):  # a discriminated union's tag: the same model, one level down
                found.append(member)
        elif origin is dict:
            found += _members(get_args(member)[1])
        elif origin is list:
            found += _members(get_args(member)[0])
    return found


def _tagged(model: type[BaseModel], tag: Any) -> bool:
    """Whether `tag` is the Literal value of one of the model's fields (pydantic puts it in the loc)."""
    for field in model.model_fields.values():
        if get_origin(field.annotation) is Literal and tag in get_args(field.annotation):
            return True
    return False


def expected_values(context: dict[str, Any] | None) -> list[str]:
    """The quoted values of a literal_error's "expected" text ("'a', 'b' or 'c'")."""
    return re.findall(r"'([^']*)'", str((context or {}).get("expected", "")))
