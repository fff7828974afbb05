"""The text fields' whitespace rule reads the same in the OpenAPI document (a JSON Schema
pattern) and in the API (Python): one set of whitespace characters for both."""

from __future__ import annotations

import re
import sys

from eventapi.events.schemas import NOT_BLANK, WHITESPACE


def test_the_documented_pattern_refuses_exactly_the_whitespace_the_api_trims() -> None:
    pattern = re.compile(NOT_BLANK)
    refused = {
        chr(code)
        for code in range(sys.maxunicode + 1)
        if not 0xD800 <= code <= 0xDFFF and pattern.fullmatch(chr(code)) is None
    }

    assert refused == set(WHITESPACE)


def test_every_character_python_calls_whitespace_is_trimmed() -> None:
    spaces = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}

    assert spaces <= set(WHITESPACE)
