"""Strict validation of JSON request bodies (pure).

JSON types are checked, not coerced: ``"5"`` is not an integer, ``1`` is not a boolean.
Unknown fields are rejected so typos never pass silently.

    spec = {"email": Email(), "name": String(max_length=200), "phone": String(required=False)}
    data = validate(body, spec)              # create: required fields enforced
    data = validate(body, spec, partial=True)  # update: only what was sent
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from monolith.common.errors import ValidationFailed

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
    allow_blank: bool = False

    def clean(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldError(["Must be a string."])
        value = value.strip()
        if not value and not self.allow_blank:
            raise FieldError(["May not be blank."])
        if self.max_length is not None and len(value) > self.max_length:
            raise FieldError([f"At most {self.max_length} characters."])
        return value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Email(String):
    max_length: int | None = 254

    def clean(self, value: Any) -> str:
        value = super().clean(value).lower()
        if not _EMAIL.match(value):
            raise FieldError(["Enter a valid email address."])
        return value


@dataclass(frozen=True)
class Slug(String):
    max_length: int | None = 80

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not _SLUG.match(value):
            raise FieldError(["Lowercase letters, digits and single hyphens only."])
        return value


@dataclass(frozen=True)
class Integer(Field):
    min_value: int | None = None
    max_value: int | None = None

    def clean(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(["Must be an integer."])
        if self.min_value is not None and value < self.min_value:
            raise FieldError([f"Must be at least {self.min_value}."])
        if self.max_value is not None and value > self.max_value:
            raise FieldError([f"Must be at most {self.max_value}."])
        return value


@dataclass(frozen=True)
class Money(Field):
    """A decimal amount given as a string ("12.50") or a JSON number."""

    max_digits: int = 12
    decimal_places: int = 2
    min_value: Decimal | None = Decimal("0")

    def clean(self, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FieldError(["Must be a decimal string such as \"12.50\"."])
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise FieldError(["Must be a decimal string such as \"12.50\"."]) from None
        if not amount.is_finite():
            raise FieldError(["Must be a finite number."])
        exponent = amount.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > self.decimal_places:
            raise FieldError([f"At most {self.decimal_places} decimal places."])
        if amount and amount.adjusted() >= self.max_digits - self.decimal_places:
            raise FieldError([f"At most {self.max_digits - self.decimal_places} digits before "
                              "the decimal point."])
        quantized = amount.quantize(Decimal(1).scaleb(-self.decimal_places))
        if self.min_value is not None and quantized < self.min_value:
            raise FieldError([f"Must be at least {self.min_value}."])
        return quantized


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
class Currency(String):
    max_length: int | None = 3

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise FieldError(["Must be a three-letter ISO 4217 code such as \"EUR\"."])
        return value


@dataclass(frozen=True)
class StringMap(Field):
    """A JSON object of string values (template context and the like)."""

    def clean(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
        ):
            raise FieldError(["Must be an object of string or number values."])
        return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class ListOf(Field):
    item: Mapping[str, Field] = field(default_factory=dict)
    min_items: int = 1
    max_items: int = 100

    def clean(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise FieldError(["Must be a list."])
        if len(value) < self.min_items:
            raise FieldError([f"At least {self.min_items} item(s) required."])
        if len(value) > self.max_items:
            raise FieldError([f"At most {self.max_items} items."])
        cleaned: list[dict[str, Any]] = []
        errors: dict[str, Any] = {}
        for index, element in enumerate(value):
            try:
                cleaned.append(validate(element, self.item))
            except ValidationFailed as exc:
                errors[str(index)] = exc.fields
        if errors:
            raise FieldError(errors)
        return cleaned


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


@dataclass(frozen=True)
class FlagMap(Field):
    """A non-empty JSON object mapping known keys to booleans: ``{"email": true}``."""

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
