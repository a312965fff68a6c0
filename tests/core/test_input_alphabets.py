"""The alphabets and lengths of names, ids and texts (``qrgate.core.inputs``)."""

from __future__ import annotations

import pytest

from qrgate.core import inputs
from qrgate.errors import QrgateError


def refused(check: object, value: str, **kwargs: object) -> str:
    with pytest.raises(QrgateError) as error:
        check(value, **kwargs)  # type: ignore[operator]
    return error.value.code


@pytest.mark.parametrize("value", ["alice", "a", "A.b_c@d+e-f", "9lives", "a" * 128])
def test_logins_that_travel_in_urls(value: str) -> None:
    assert inputs.login(value) == value


@pytest.mark.parametrize("value", ["", ".", "..", ".alice", "-a", "a/b", "a b", "ü",
                                   "a" * 129, "alice\n"])
def test_logins_that_could_not_be_named_in_a_path(value: str) -> None:
    assert refused(inputs.login, value) == "invalid_field"


@pytest.mark.parametrize("value", ["web", "web-banking.v2", "W_1", "a" * 64])
def test_business_ids(value: str) -> None:
    assert inputs.business_id(value) == value


@pytest.mark.parametrize("value", ["", "_web", "web@x", "a" * 65, "web banking"])
def test_bad_business_ids(value: str) -> None:
    assert refused(inputs.business_id, value) == "invalid_field"


@pytest.mark.parametrize("value", ["demobank", "bank-1", "1", "a" * 64])
def test_slugs(value: str) -> None:
    assert inputs.slug(value) == value


@pytest.mark.parametrize("value", ["", "Bank", "-bank", "bank_1", "a" * 65])
def test_bad_slugs(value: str) -> None:
    assert refused(inputs.slug, value) == "invalid_field"


def test_a_line_up_to_its_limit() -> None:
    assert inputs.line("x" * inputs.MAX_LINE, what="name") == "x" * inputs.MAX_LINE
    assert inputs.line("x" * 10, what="name", max_length=10) == "x" * 10
    assert inputs.line("", what="name") == ""
    assert inputs.line("Zürich · 2 500 €", what="name") == "Zürich · 2 500 €"


@pytest.mark.parametrize(("value", "limit"), [("x" * 201, 200), ("x" * 11, 10)])
def test_a_line_over_its_limit(value: str, limit: int) -> None:
    assert refused(inputs.line, value, what="name", max_length=limit) == "invalid_field"


@pytest.mark.parametrize("value", ["a\nb", "a\tb", "\x00", "\x7f", "\x9f", "\x1b[31m"])
def test_a_line_refuses_control_characters(value: str) -> None:
    assert refused(inputs.line, value, what="name") == "invalid_field"


def test_identifiers_are_128_bit_lowercase_hex() -> None:
    assert inputs.identifier("0123456789abcdef" * 2, what="id") == "0123456789abcdef" * 2
    for value in ("0123456789ABCDEF" * 2, "0" * 31, "0" * 33, "g" * 32, ""):
        assert refused(inputs.identifier, value, what="id") == "invalid_field"


@pytest.mark.parametrize(("check", "what"), [
    (inputs.login, "login"), (inputs.business_id, "business id"),
    (inputs.slug, "organisation slug"),
])
def test_a_refusal_names_what_was_refused(check: object, what: str) -> None:
    with pytest.raises(QrgateError) as error:
        check("..")  # type: ignore[operator]
    assert error.value.detail == f"{what} has characters or a length that are not allowed"
    with pytest.raises(QrgateError) as error:
        inputs.line("\x00", what="demand")
    assert error.value.detail.startswith("demand has characters")
    with pytest.raises(QrgateError) as error:
        inputs.identifier("x", what="challenge id")
    assert error.value.detail.startswith("challenge id has characters")
