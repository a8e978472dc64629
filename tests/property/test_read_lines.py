"""The bounded line reader (`riskwatch.lines.read_lines`) gives exactly
what reading the whole input and splitting it would, with lines over the
limit reported by number and size instead of held, plain or gzip."""

from __future__ import annotations

import gzip
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.lines import UTF8_BOM, read_lines

LIMIT = 16
# No 0x1f: a plain input starting with the gzip magic bytes is read as gzip
# (a JSON line never starts with that control character).
line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"").replace(b"\x1f", b""))
line_end = st.sampled_from([b"\n", b"\r\n"])


def _expected(data: bytes) -> tuple[list, list]:
    kept, large = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        line = raw.strip()
        if len(raw.rstrip(b"\r")) > LIMIT + 1 or len(line) > LIMIT:
            large.append((number, len(raw.rstrip(b"\r"))))
        elif line:
            kept.append((number, line))
    return kept, large


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.tuples(line_text, line_end), max_size=12), bom=st.booleans(), last_end=st.booleans(),
       zipped=st.booleans())
def test_the_reader_is_splitting_with_a_bound(lines, bom, last_end, zipped):
    data = (UTF8_BOM if bom else b"") + b"".join(text + end for text, end in lines)
    if lines and not last_end:
        data = data.rstrip(b"\r\n")
    stream = io.BytesIO(gzip.compress(data) if zipped else data)
    large: list = []
    kept = list(read_lines(io.BufferedReader(stream), max_bytes=LIMIT,
                           too_large=lambda number, size: large.append((number, size))))
    expected_kept, expected_large = _expected(data)
    assert kept == expected_kept
    assert [number for number, _ in large] == [number for number, _ in expected_large]
