"""The one-line report of an error: never an IndexError, whatever the message."""

from __future__ import annotations

import pytest

from churnclv.contract.errors import ChurnclvError, first_line


class Silent(Exception):
    def __str__(self) -> str:
        return ""


@pytest.mark.parametrize("exc, expected", [
    (ValueError("bad value"), "bad value"),
    (ValueError("  first  \nsecond\nthird"), "first"),
    (ValueError("\n\n  after blank lines\nmore"), "after blank lines"),
    (ValueError(), "ValueError"),
    (ValueError(""), "ValueError"),
    (ValueError("   \n \t\n"), "ValueError"),
    (Silent("ignored"), "Silent"),
    (KeyError("quantity"), "'quantity'"),
    (ChurnclvError("the store is locked"), "the store is locked"),
])
def test_first_line_is_one_non_blank_line_or_the_type_name(exc, expected):
    assert first_line(exc) == expected


def test_first_line_never_returns_a_line_break():
    assert "\n" not in first_line(RuntimeError("a\r\nb")) and first_line(RuntimeError("a\r\nb")) == "a"
