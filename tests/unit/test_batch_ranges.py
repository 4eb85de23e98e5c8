"""The local batch transform's mini-batches: byte ranges of whole lines, read by the workers themselves."""

from __future__ import annotations

import random

import pytest

from airflow_autogluon_cloud.backends.local import batch_worker, transform


def _lines(text: bytes) -> list[bytes]:
    return [line for line in text.splitlines() if line.strip()]


def _random_csv(rng: random.Random) -> bytes:
    lines = [b"a,b\n"]
    for i in range(rng.randint(1, 300)):
        r = rng.random()
        if r < 0.05:
            lines.append(b"\n")  # blank lines are skipped, as before
        elif r < 0.08:
            lines.append(b"x" * rng.randint(50, 300) + b"\r\n")  # long lines, CRLF
        else:
            lines.append(b"%d,%d\n" % (i, rng.randint(0, 10 ** rng.randint(1, 8))))
    text = b"".join(lines)
    return text.rstrip(b"\n") if rng.random() < 0.3 else text  # with and without a final newline


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 24])
def test_ranges_cover_every_row_once_in_order_within_the_limits(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(transform, "_MIN_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(transform, "_FIRST_BLOCK_BYTES", block_bytes)
    rng = random.Random(block_bytes)
    for trial in range(150):
        text = _random_csv(rng)
        path = tmp_path / f"{trial}.csv"
        path.write_bytes(text)
        rows, max_bytes = rng.randint(1, 50), rng.randint(1, 400)
        first_rows = rng.choice([None, 1, rng.randint(1, 60)])
        ranges = list(transform.iter_ranges(path, rows, max_bytes, first_rows=first_rows))
        body_start = text.index(b"\n") + 1
        previous = body_start
        for start, end in ranges:
            piece = text[start:end]
            assert start >= previous
            assert start == body_start or text[start - 1 : start] == b"\n"
            assert piece.count(b"\n") <= (min(rows, first_rows) if first_rows and start == ranges[0][0] else rows)
            assert len(piece) <= max_bytes or piece.count(b"\n") <= 1  # a longer line is a batch of its own
            assert piece.strip()
            previous = end
        assert _lines(b"".join(text[s:e] for s, e in ranges)) == _lines(text[body_start:])
        assert sum(batch_worker.count_rows(text[s:e]) for s, e in ranges) == len(_lines(text[body_start:]))


def test_ranges_fill_mini_batches_up_to_the_row_limit(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a\n" + b"".join(b"%d\n" % i for i in range(10)))
    assert [batch_worker.count_rows(path.read_bytes()[s:e]) for s, e in transform.iter_ranges(path, 4, 1 << 20)] == [
        4,
        4,
        2,
    ]


def test_the_first_mini_batch_is_smaller_then_full_ones(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a\n" + b"".join(b"%d\n" % i for i in range(12)))
    counts = [batch_worker.count_rows(path.read_bytes()[s:e]) for s, e in transform.iter_ranges(path, 4, 1 << 20, 2)]
    assert counts == [2, 4, 4, 2]
    # a first mini-batch of blank lines only is skipped: the first scored one is still the small one
    path.write_bytes(b"a\n\n\n" + b"".join(b"%d\n" % i for i in range(12)))
    counts = [batch_worker.count_rows(path.read_bytes()[s:e]) for s, e in transform.iter_ranges(path, 4, 1 << 20, 2)]
    assert counts == [2, 4, 4, 2]


def test_count_rows_skips_blank_lines():
    assert batch_worker.count_rows(b"1\n2\n") == 2
    assert batch_worker.count_rows(b"1\n2") == 2
    assert batch_worker.count_rows(b"1\n\n2\r\n\r\n") == 2
    assert batch_worker.count_rows(b"") == 0


def test_read_range_reads_exactly_the_bytes(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"header\n" + b"x" * 100_000 + b"\n")
    assert batch_worker.read_range(str(path), 7, 100_008) == b"x" * 100_000 + b"\n"
    with pytest.raises(EOFError):
        batch_worker.read_range(str(path), 7, 200_000)
