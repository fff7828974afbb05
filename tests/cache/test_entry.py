"""The cached response entry: byte layout round trip and strong ETags."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventapi.cache.entry import Entry, strong_etag

# A header line may hold any text except a newline (the layout's separator).
header = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=200)
status = st.integers(min_value=100, max_value=599)
quick = settings(max_examples=300, deadline=None, database=None)


# A page has a total and a Link; an event may have a Last-Modified instead.
totals = st.text(alphabet="0123456789", min_size=1, max_size=12)


@quick
@given(status=status, body=st.binary(max_size=2000), total=totals, link=header, at=header)
def test_built_page_round_trips(status: int, body: bytes, total: str, link: str, at: str) -> None:
    entry = Entry.build(status, body, total=total, link=link, cursor=at)

    assert Entry.decode(entry.encode()) == entry


@quick
@given(status=status, body=st.binary(max_size=2000), modified=header, at=header)
def test_built_item_round_trips(status: int, body: bytes, modified: str, at: str) -> None:
    entry = Entry.build(status, body, modified=modified, cursor=at)

    assert Entry.decode(entry.encode()) == entry


@quick
@given(status=status, etag=header, body=st.binary(max_size=2000), total=totals, link=header)
def test_any_entry_round_trips(status: int, etag: str, body: bytes, total: str, link: str) -> None:
    entry = Entry(status, etag, body, total, link)

    decoded = Entry.decode(entry.encode())

    assert decoded == entry
    assert decoded is not None
    assert type(decoded.body) is bytes


def test_an_entry_of_the_formats_before_is_read_as_none() -> None:
    """What the releases before wrote (no format mark, then ``+`` and no change cursor):
    never served by this one."""
    assert Entry.decode(b'200\n"abc"\n\n\n{"id": "x"}') is None
    assert Entry.decode(b'+200\n"abc"\n\nTue, 02 Dec 2025 10:00:00 GMT\n{"id": "x"}') is None
    assert Entry.decode(b"404\n\n\n\n{}") is None


def test_round_trip_of_bodies_full_of_separators() -> None:
    body = b"\n\n\x00{}\n\r\n" + bytes(range(256))
    entry = Entry.build(200, body, total="3", link='</events?page=2>; rel="next"')

    decoded = Entry.decode(entry.encode())

    assert decoded == entry
    assert decoded is not None
    assert decoded.body == body


def test_the_layout_is_the_mark_five_header_lines_then_the_body() -> None:
    entry = Entry(404, "", b'{"detail": "x"}', "", "", cursor="2a.0badcafe")
    item = Entry(200, '"e"', b"{}", modified="Tue, 02 Dec 2025 10:00:00 GMT", cursor="1.abc")

    assert entry.encode() == b'*404\n\n\n\n2a.0badcafe\n{"detail": "x"}'
    assert item.encode() == b'*200\n"e"\n\nTue, 02 Dec 2025 10:00:00 GMT\n1.abc\n{}'


def test_only_a_200_gets_an_etag() -> None:
    assert Entry.build(200, b"{}").etag == strong_etag(b"{}")
    assert Entry.build(404, b"{}").etag == ""


@quick
@given(body=st.binary(max_size=2000))
def test_the_etag_is_strong_and_quoted(body: bytes) -> None:
    etag = Entry.build(200, body).etag

    assert not etag.startswith("W/")
    assert len(etag) >= 3
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert '"' not in etag[1:-1]
    assert etag.isascii()
    assert etag.isprintable()


@quick
@given(body=st.binary(max_size=2000))
def test_equal_bodies_get_equal_etags(body: bytes) -> None:
    assert Entry.build(200, body).etag == Entry.build(200, bytes(body), total="9").etag


@quick
@given(one=st.binary(max_size=200), two=st.binary(max_size=200))
def test_different_bodies_get_different_etags(one: bytes, two: bytes) -> None:
    assume(one != two)

    assert strong_etag(one) != strong_etag(two)


def test_bodies_differing_in_one_byte_get_different_etags() -> None:
    body = b'{"title": "Jazz Night", "n": 1}'
    etags = {strong_etag(body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]) for i in range(len(body))}

    assert len(etags) == len(body)
    assert strong_etag(body) not in etags
