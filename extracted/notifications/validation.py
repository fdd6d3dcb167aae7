"""Strict request-body validation, with the monolith's messages (pure).

JSON types are checked, not coerced; unknown fields are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from extracted.notifications.errors import ValidationFailed

REQUIRED = "This field is required."


class FieldError(Exception):
    def __init__(self, messages: list[str] | dict[str, Any]) -> None:
        super().__init__(str(messages))
        self.messages = messages


@dataclass(frozen=True)
class Field:
    required: bool = True
    nullable: bool = False

    def clean(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class String(Field):
    max_length: int | None = None

    def clean(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldError(["Must be a string."])
        text = value.strip()
        if not text:
            raise FieldError(["May not be blank."])
        if self.max_length is not None and len(text) > self.max_length:
            raise FieldError([f"At most {self.max_length} characters."])
        return text


@dataclass(frozen=True)
class Integer(Field):
    min_value: int | None = None

    def clean(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(["Must be an integer."])
        if self.min_value is not None and value < self.min_value:
            raise FieldError([f"Must be at least {self.min_value}."])
        return value


@dataclass(frozen=True)
class Boolean(Field):
    def clean(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldError(["Must be true or false."])
        return value


@dataclass(frozen=True)
class Choice(Field):
    choices: tuple[str, ...] = ()

    def clean(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise FieldError([f"Must be one of: {', '.join(self.choices)}."])
        return value


@dataclass(frozen=True)
class StringMap(Field):
    """A JSON object of string or number values (template context)."""

    def clean(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
        ):
            raise FieldError(["Must be an object of string or number values."])
        return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class FlagMap(Field):
    keys: tuple[str, ...] = ()

    def clean(self, value: Any) -> dict[str, bool]:
        if not isinstance(value, dict) or not value:
            raise FieldError(["Must be a non-empty object of name -> true/false."])
        errors: dict[str, Any] = {}
        for key, flag in value.items():
            if key not in self.keys:
                errors[key] = [f"Unknown; use one of: {', '.join(self.keys)}."]
            elif not isinstance(flag, bool):
                errors[key] = ["Must be true or false."]
        if errors:
            raise FieldError(errors)
        return dict(value)


def validate(body: Any, spec: Mapping[str, Field], *, partial: bool = False) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}
    for name in body:
        if name not in spec:
            errors[name] = ["Unknown or read-only field."]
    for name, rule in spec.items():
        if name not in body:
            if rule.required and not partial:
                errors[name] = [REQUIRED]
            continue
        value = body[name]
        if value is None:
            if rule.nullable:
                cleaned[name] = None
            else:
                errors[name] = ["May not be null."]
            continue
        try:
            cleaned[name] = rule.clean(value)
        except FieldError as exc:
            errors[name] = exc.messages
    if partial and not body and not errors:
        errors["non_field_errors"] = ["Nothing to update."]
    if errors:
        raise ValidationFailed(errors)
    return cleaned
