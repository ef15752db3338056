"""Text the ledger can store as given on SQLite and PostgreSQL, or a ValueError saying why not."""

from __future__ import annotations

NUL = "\x00"


def storable_text_problem(value: str) -> str | None:
    """Why `value` cannot be stored intact, or None. PostgreSQL refuses NUL in text, and a lone UTF-16
    surrogate (which JSON's \\ud800 escapes produce) has no UTF-8 encoding on either database."""
    if NUL in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (it contains a lone surrogate)"
    return None


def check_storable(value: object) -> object:
    """`value` unchanged when every string in it (a string, or a list of strings) is storable."""
    texts = value if isinstance(value, list) else [value]
    for text in texts:
        if isinstance(text, str) and (problem := storable_text_problem(text)) is not None:
            raise ValueError(problem)
    return value
