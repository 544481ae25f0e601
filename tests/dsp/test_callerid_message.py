"""Caller ID message layer (SDMF/MDMF bytes) and DTMF caller ID framing, sans-I/O."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.callerid import (
    CallerId,
    CidTime,
    DecodeFailure,
    DtmfCidParser,
    checksum,
    decode_message,
    dtmf_cid_decode,
    dtmf_cid_encode,
    encode_message,
)

# Hand-assembled from GR-30 / EN 300 659-3: type, length, body, checksum.
SDMF_BYTES = bytes([0x04, 0x0F]) + b"01020304" + b"5551234"
SDMF_BYTES += bytes([(-sum(SDMF_BYTES)) & 0xFF])
MDMF_BYTES = bytes([0x80, 0x1C, 0x01, 0x08]) + b"11230905" + bytes([0x02, 0x0B]) + b"13912345678" \
    + bytes([0x07, 0x03]) + b"Wei"
MDMF_BYTES += bytes([(-sum(MDMF_BYTES)) & 0xFF])


def test_sdmf_vector():
    cid = CallerId(number="5551234", when=CidTime(1, 2, 3, 4), format="sdmf")
    assert encode_message(cid) == SDMF_BYTES
    assert decode_message(SDMF_BYTES) == cid


def test_mdmf_vector():
    cid = CallerId(number="13912345678", name="Wei", when=CidTime(11, 23, 9, 5))
    assert encode_message(cid) == MDMF_BYTES
    assert decode_message(MDMF_BYTES) == cid


def test_checksum_makes_the_sum_zero():
    assert (sum(MDMF_BYTES[:-1]) + checksum(MDMF_BYTES[:-1])) & 0xFF == 0


@pytest.mark.parametrize("data, reason", [
    (MDMF_BYTES[:-1] + bytes([MDMF_BYTES[-1] ^ 1]), "bad checksum"),
    (MDMF_BYTES[:10], "truncated"),
    (b"\x80", "too short"),
    (bytes([0x82, 0x03, 0x0B, 0x01, 0xFF]) + bytes([(-(0x82 + 3 + 0x0B + 1 + 0xFF)) & 0xFF]),
     "0x82 (MDMF message waiting) is not caller ID"),
    (bytes([0x04, 0x03]) + b"123" + bytes([(-(4 + 3 + 0x31 + 0x32 + 0x33)) & 0xFF]), "shorter than"),
])
def test_decode_failures_have_reasons(data, reason):
    res = decode_message(data)
    assert isinstance(res, DecodeFailure) and not res
    assert reason in res.reason


def _msg(mtype: int, body: bytes) -> bytes:
    m = bytes([mtype, len(body)]) + body
    return m + bytes([checksum(m)])


def test_mdmf_parameter_overrun_and_bad_values():
    assert "overruns" in decode_message(_msg(0x80, bytes([0x02, 0x09]) + b"123")).reason
    assert "out of range" in decode_message(_msg(0x80, bytes([0x01, 0x08]) + b"13320000")).reason
    assert "not 'O' or 'P'" in decode_message(_msg(0x80, bytes([0x04, 0x01]) + b"X")).reason
    both = bytes([0x02, 0x01]) + b"1" + bytes([0x04, 0x01]) + b"P"
    assert "both a number" in decode_message(_msg(0x80, both)).reason


def test_unknown_mdmf_parameters_are_skipped():
    body = bytes([0x11, 0x01, 0x01]) + bytes([0x02, 0x03]) + b"123" + bytes([0x03, 0x02]) + b"99"
    assert decode_message(_msg(0x80, body)) == CallerId(number="123")


def test_absence_reasons():
    cid = CallerId(number_absence="P", name_absence="O")
    assert encode_message(cid) == _msg(0x80, b"\x04\x01P\x08\x01O")
    assert decode_message(encode_message(cid)) == cid
    sdmf = CallerId(number_absence="O", when=CidTime(12, 31, 23, 59), format="sdmf")
    assert decode_message(encode_message(sdmf)) == sdmf


def test_extra_bytes_after_the_message_are_ignored():
    assert decode_message(MDMF_BYTES + b"\x55\x55") == decode_message(MDMF_BYTES)


@pytest.mark.parametrize("kwargs, match", [
    (dict(number="123", format="sdmf"), "needs the date"),
    (dict(number="123", name="X", when=CidTime(1, 1, 0, 0), format="sdmf"), "cannot carry a name"),
    (dict(number="12345678901", when=CidTime(1, 1, 0, 0), format="sdmf"), "longer than 10"),
    (dict(number="12A"), "only digits"),
    (dict(name="张三"), "latin-1"),
    (dict(), "no fields"),
])
def test_encode_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        encode_message(CallerId(**kwargs))


def test_callerid_validation():
    with pytest.raises(ValueError, match="absence reason"):
        CallerId(number_absence="X")
    with pytest.raises(ValueError, match="format"):
        CallerId(format="fsk")
    assert CallerId(when=(1, 2, 3, 4)).when == CidTime(1, 2, 3, 4)


names = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=50)
numbers = st.text(alphabet="0123456789", min_size=1, max_size=20)
times = st.builds(CidTime, st.integers(1, 12), st.integers(1, 31), st.integers(0, 23), st.integers(0, 59))


@given(number=st.none() | numbers, name=st.none() | names, when=st.none() | times,
       nabs=st.sampled_from(["O", "P"]))
def test_mdmf_round_trip(number, name, when, nabs):
    cid = CallerId(number=number, name=name, when=when,
                   number_absence=None if number else nabs)
    assert decode_message(encode_message(cid)) == cid


@given(data=st.binary(max_size=40))
def test_decode_never_raises(data):
    res = decode_message(data)
    assert isinstance(res, (CallerId, DecodeFailure))


# ------------------------------------------------------------------ DTMF caller ID


@pytest.mark.parametrize("digits, expect", [
    ("A13912345678C", CallerId(number="13912345678", format="dtmf")),
    ("D13912345678C", CallerId(number="13912345678", format="dtmf")),
    ("A5551234#", CallerId(number="5551234", format="dtmf")),
    ("A5551234D7654321C", CallerId(number="5551234", format="dtmf")),
    ("B00C", CallerId(number_absence="O", format="dtmf")),
    ("B10C", CallerId(number_absence="P", format="dtmf")),
    ("D1#", CallerId(number_absence="P", format="dtmf")),
    ("D2#", CallerId(number_absence="O", format="dtmf")),
    ("D3#", CallerId(number_absence="O", format="dtmf")),
])
def test_dtmf_decode(digits, expect):
    assert dtmf_cid_decode(digits) == expect


@pytest.mark.parametrize("digits, reason", [
    ("123C", "does not start"), ("A123", "no end code"), ("B77C", "unknown information code"),
    ("AC", "no number"), ("A12*3C", "unexpected"),
])
def test_dtmf_decode_failures(digits, reason):
    res = dtmf_cid_decode(digits)
    assert isinstance(res, DecodeFailure) and reason in res.reason


def test_dtmf_encode():
    assert dtmf_cid_encode(CallerId(number="13912345678")) == "A13912345678C"
    assert dtmf_cid_encode(CallerId(number="139"), start="D", end="#") == "D139#"
    assert dtmf_cid_encode(CallerId(number_absence="O")) == "B00C"
    assert dtmf_cid_encode(CallerId(number_absence="P")) == "B10C"
    with pytest.raises(ValueError, match="start A or D"):
        dtmf_cid_encode(CallerId(number="1"), start="B")
    with pytest.raises(ValueError, match="digits 0-9"):
        dtmf_cid_encode(CallerId(number="12#"))


def test_dtmf_parser_frames_a_digit_stream():
    p = DtmfCidParser(timeout=8000)
    out = []
    # ordinary digits before the frame, then a frame, then more digits
    for k, d in enumerate("12A139C45D2#"):
        r = p.feed(d, k * 1120)
        if r is not None:
            out.append(r)
    assert out == [(CallerId(number="139", format="dtmf"), 2 * 1120, 6 * 1120),
                   (CallerId(number_absence="O", format="dtmf"), 9 * 1120, 11 * 1120)]


def test_dtmf_parser_timeout_accepts_a_number_without_end_code():
    p = DtmfCidParser(timeout=8000)
    for k, d in enumerate("A139"):
        assert p.feed(d, k * 1000) is None
    assert p.open and p.poll(3000 + 8000) is None
    assert p.poll(3000 + 8001) == (CallerId(number="139", format="dtmf"), 0, 3000)
    assert not p.open
    p.feed("B", 0)
    res, _, _ = p.poll(10 ** 6)
    assert isinstance(res, DecodeFailure) and "without end code" in res.reason
