"""One rule for what a database id is, shared by the routes, the forms and the API."""

from __future__ import annotations

import pytest

from corpora.models import ID_MAX, as_id
from corpora.schema import FieldErrors
from web.shortlists.forms import parse_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        ("42", 42),
        (" 42 ", 42),
        (ID_MAX, ID_MAX),
        (str(ID_MAX), ID_MAX),
        ("1000000000", 1_000_000_000),  # ten digits still fit a 32-bit column
        (0, None),
        (-1, None),
        ("0", None),
        (ID_MAX + 1, None),
        (str(ID_MAX + 1), None),
        ("9" * 30, None),
        ("0" * 20 + "1", None),
        (True, None),
        (False, None),
        (1.0, None),
        ("1.0", None),
        ("", None),
        ("²", None),
        ("١٢", None),
        ("１", None),
        ("-5", None),
        (None, None),
        ([1], None),
    ],
)
def test_as_id_accepts_only_what_an_integer_column_can_hold(value: object, expected) -> None:
    assert as_id(value) == expected


def test_shortlist_forms_take_every_id_the_database_can_hold() -> None:
    assert parse_id(str(ID_MAX), "result_id", "成果编号") == ID_MAX
    assert parse_id("１２", "result_id", "成果编号") == 12  # full-width, as typed in Chinese
    for bad in (str(ID_MAX + 1), "0", "-3", "abc"):
        with pytest.raises(FieldErrors, match="result_id"):
            parse_id(bad, "result_id", "成果编号")
    with pytest.raises(FieldErrors, match="请填写"):
        parse_id("", "result_id", "成果编号")
