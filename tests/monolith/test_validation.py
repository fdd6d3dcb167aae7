from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from monolith.common.errors import ValidationFailed
from monolith.common.validation import Boolean, Integer, ListOf, Money, String, validate

SPEC = {"name": String(max_length=5), "qty": Integer(min_value=1), "ok": Boolean(required=False)}


def errors(body: Any, **kw: Any) -> dict[str, Any]:
    with pytest.raises(ValidationFailed) as info:
        validate(body, SPEC, **kw)
    assert info.value.fields is not None
    return info.value.fields


def test_types_are_checked_not_coerced() -> None:
    assert validate({"name": " ab ", "qty": 2}, SPEC) == {"name": "ab", "qty": 2}
    assert set(errors({"name": 1, "qty": "2"})) == {"name", "qty"}
    assert set(errors({"name": "a", "qty": True})) == {"qty"}
    assert set(errors({"name": "a", "qty": 1, "ok": 1})) == {"ok"}


def test_required_unknown_null_and_partial() -> None:
    assert errors({}) == {"name": ["This field is required."], "qty": ["This field is required."]}
    assert errors({"name": "a", "qty": 1, "extra": 1}) == {"extra": ["Unknown or read-only field."]}
    assert errors({"name": None, "qty": 1}) == {"name": ["May not be null."]}
    assert validate({"qty": 3}, SPEC, partial=True) == {"qty": 3}
    assert errors({}, partial=True) == {"non_field_errors": ["Nothing to update."]}


@pytest.mark.parametrize(("raw", "expected"), [("12.5", Decimal("12.50")), (3, Decimal("3.00")),
                                               ("0.01", Decimal("0.01"))])
def test_money_accepts_strings_and_numbers(raw: Any, expected: Decimal) -> None:
    assert Money().clean(raw) == expected


@pytest.mark.parametrize("raw", ["1.001", "-1", "NaN", "Infinity", "1e400", "x", None, True])
def test_money_rejects(raw: Any) -> None:
    with pytest.raises(Exception) as info:
        validate({"m": raw}, {"m": Money()})
    assert isinstance(info.value, ValidationFailed)


def test_list_errors_are_indexed() -> None:
    spec = {"lines": ListOf(item={"q": Integer(min_value=1)})}
    with pytest.raises(ValidationFailed) as info:
        validate({"lines": [{"q": 1}, {"q": 0}]}, spec)
    assert info.value.fields == {"lines": {"1": {"q": ["Must be at least 1."]}}}
