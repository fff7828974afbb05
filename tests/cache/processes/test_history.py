"""The checker itself, on hand-made histories (no servers involved)."""

from __future__ import annotations

import pytest

from tests.cache.processes.history import ABSENT, Read, Write, check

E = "e" * 24
F = "f" * 24


def created(event: str = E) -> Write:
    return Write(event, 0, "A", sent=0.0, received=0.1, status=201)


def write(version: int, sent: float, received: float, status: int = 200, via: str = "A") -> Write:
    return Write(E, version, via, sent, received, status)


def read(
    version: int | None,
    sent: float,
    received: float | None = None,
    *,
    via: str = "B",
    cache: str = "HIT",
    status: int = 200,
    event: str = E,
) -> Read:
    done = sent + 0.01 if received is None else received
    return Read(event, version, via, "item", sent, done, status, cache)


def test_old_version_read_sent_after_a_newer_write_was_acknowledged_is_stale() -> None:
    writes = [created(), write(1, 1.0, 1.2), write(2, 2.0, 2.1)]
    reads = [read(1, sent=2.5)]  # v2 was acknowledged at 2.1

    report = check(writes, reads)

    assert len(report.stale) == 1
    (stale,) = report.stale
    assert stale.newer.version == 2
    assert stale.latest == 2
    assert stale.age == pytest.approx(0.4)
    assert report.stale_hits == 1
    assert report.max_staleness == pytest.approx(0.4)
    assert not report.ok
    assert "stale reads: 1" in report.summary()


def test_age_counts_from_the_first_newer_acknowledgement() -> None:
    writes = [created(), write(1, 1.0, 1.1), write(2, 1.5, 1.6)]
    report = check(writes, [read(0, sent=2.0, cache="MISS")])

    (stale,) = report.stale
    assert stale.newer.version == 1
    assert stale.latest == 2
    assert stale.age == pytest.approx(0.9)
    assert report.stale_hits == 0


def test_reads_overlapping_the_write_or_seeing_newer_versions_are_not_stale() -> None:
    writes = [created(), created(F), write(1, 1.0, 1.2), write(2, 2.0, 2.4)]
    reads = [
        read(0, sent=1.1, received=1.3),  # sent before v1's acknowledgement arrived
        read(1, sent=1.19),  # sent just before the ack was received
        read(1, sent=2.1, received=2.5),  # concurrent with v2: old or new are both fine
        read(2, sent=2.2, received=2.3),  # v2 committed before its ack: fine too
        read(2, sent=3.0),
        read(0, sent=0.05, event=F),  # another event, read before its creation was acked
    ]

    report = check(writes, reads)

    assert report.stale == ()
    assert report.ok, report.summary()


def test_a_failed_write_may_have_committed_so_its_version_is_no_phantom() -> None:
    writes = [created(), write(1, 1.0, 1.2, status=503), write(2, 2.0, 2.1)]
    reads = [read(1, sent=1.5), read(2, sent=2.2), read(7, sent=2.3)]

    report = check(writes, reads)

    assert report.stale == ()
    assert [w.version for w in report.write_errors] == [1]
    assert [r.version for r in report.phantoms] == [7]


def test_a_failed_write_does_not_make_older_reads_stale() -> None:
    writes = [created(), write(1, 1.0, 1.2, status=503)]
    report = check(writes, [read(0, sent=1.5)])

    assert report.stale == ()


def test_an_event_missing_from_a_list_after_its_creation_is_stale() -> None:
    listed = Read(E, ABSENT, "B", "list", 0.5, 0.6, 200, "HIT")

    report = check([created()], [listed])

    assert len(report.stale) == 1
    assert report.stale[0].newer.version == 0


def test_error_responses_are_counted_not_judged() -> None:
    report = check([created()], [read(None, sent=1.0, status=503)])

    assert report.stale == ()
    assert len(report.read_errors) == 1
    assert not report.ok
