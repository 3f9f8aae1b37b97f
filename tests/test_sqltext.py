"""``:name`` placeholders found as PostgreSQL reads SQL (``promptlake.db.sqltext``)."""

from __future__ import annotations

import pytest

from promptlake import ValidationError
from promptlake.db.sqltext import placeholders, to_driver


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("SELECT :a, :b_2", ["a", "b_2"]),
        ("SELECT ':a', \"x:b\", $$:c$$, $t$ :d $t$ -- :e\n, :f", ["f"]),
        ("SELECT E'it\\'s :a', 'it''s :b', :c", ["c"]),
        ("SELECT x::int, :y::text, a[1:2], a[lo:hi]", ["y"]),
        ("SELECT /* :a /* :b */ :c */ :d", ["d"]),
        ("SELECT $1, f(a := 1), :0", []),
        ("SELECT '{\"a\":1}'::jsonb", []),
    ],
)
def test_placeholders(query: str, names: list[str]) -> None:
    assert [name for _, _, name in placeholders(query)] == names


def test_driver_form_doubles_percent_and_only_when_bound() -> None:
    assert to_driver("SELECT '100%'", None) == ("SELECT '100%%'", {})
    assert to_driver("SELECT '5%', :a, :a", {"a": 1, "b": 2}) == (
        "SELECT '5%%', %(a)s, %(a)s",
        {"a": 1},
    )
    with pytest.raises(ValidationError, match=r"query: :b has no value") as caught:
        to_driver("SELECT :a, :b, :c", {"a": 1})
    assert [p.field for p in caught.value.problems] == ["query", "query"]
