"""saynumber: hand-written expectations in zh and en, and every name exists.

Outputs are checked as the text the prompts say (the catalogue text of each
name, joined): "一千零五", "one thousand and five". The sweep at the end
renders a large range of inputs and checks that every produced name is in
the catalogue and has a WAV in each language.
"""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from prompts import PROMPTS_DIR, load_catalogue
from voiceserver.ivr.prompts import PromptLibrary
from voiceserver.ivr.saynumber import (
    MAX_NUMBER,
    say_amount,
    say_digits,
    say_duration_minutes,
    say_number,
    say_queue_position,
    say_time,
)

CAT = load_catalogue()


def zh(names: list[str]) -> str:
    return "".join(CAT.entries[n].text["zh"] for n in names)


def en(names: list[str]) -> str:
    return " ".join(CAT.entries[n].text["en"] for n in names)


ZH_NUMBERS = {
    0: "零", 1: "一", 2: "二", 7: "七", 10: "十", 11: "十一", 15: "十五", 20: "二十", 21: "二十一",
    22: "二十二", 99: "九十九", 100: "一百", 101: "一百零一", 110: "一百一十", 115: "一百一十五",
    200: "两百", 222: "两百二十二", 999: "九百九十九", 1000: "一千", 1005: "一千零五",
    1010: "一千零一十", 1050: "一千零五十", 1100: "一千一百", 1200: "一千二百", 1500: "一千五百",
    2000: "两千", 2002: "两千零二", 2222: "两千二百二十二", 10000: "一万", 10005: "一万零五",
    10010: "一万零一十", 10100: "一万零一百", 11000: "一万一千", 12000: "一万二千",
    15000: "一万五千", 20000: "两万", 22000: "两万二千", 100000: "十万", 100010: "十万零一十",
    110000: "十一万", 150000: "十五万", 200000: "二十万", 1000000: "一百万",
    2000000: "两百万", 10000000: "一千万", 20000000: "两千万", 100000000: "一亿",
    100000001: "一亿零一", 100010000: "一亿零一万", 101000000: "一亿零一百万",
    110000000: "一亿一千万", 123456789: "一亿二千三百四十五万六千七百八十九",
    200000000: "两亿", 1000000000: "十亿", 100000000000: "一千亿",
    999999999999: "九千九百九十九亿九千九百九十九万九千九百九十九",
}

EN_NUMBERS = {
    0: "zero", 7: "seven", 10: "ten", 11: "eleven", 15: "fifteen", 20: "twenty",
    21: "twenty one", 99: "ninety nine", 100: "one hundred", 101: "one hundred and one",
    110: "one hundred and ten", 115: "one hundred and fifteen", 1000: "one thousand",
    1005: "one thousand and five", 1010: "one thousand and ten",
    1205: "one thousand two hundred and five", 2000: "two thousand",
    10000: "ten thousand", 20000: "twenty thousand", 100000: "one hundred thousand",
    100010: "one hundred thousand and ten", 1000000: "one million",
    1000001: "one million and one", 2500000: "two million five hundred thousand",
    100000000: "one hundred million",
    123456789: "one hundred and twenty three million four hundred and fifty six thousand "
               "seven hundred and eighty nine",
    1000000000: "one billion",
    999999999999: "nine hundred and ninety nine billion nine hundred and ninety nine million "
                  "nine hundred and ninety nine thousand nine hundred and ninety nine",
}


@pytest.mark.parametrize("n, text", ZH_NUMBERS.items())
def test_zh_numbers(n: int, text: str):
    assert zh(say_number(n, "zh")) == text


@pytest.mark.parametrize("n, text", EN_NUMBERS.items())
def test_en_numbers(n: int, text: str):
    assert en(say_number(n, "en")) == text


def test_zh_number_uses_single_prompts_not_the_compound_ones():
    # 15 is 十 + 五, not the "n15" prompt: a site recording of the syllables is enough
    assert say_number(15, "zh") == ["n10", "n5"]
    assert say_number(2000, "zh") == ["liang", "thousand"]
    assert say_number(21, "en") == ["n20", "n1"]


def test_negative_and_decimal_numbers():
    assert zh(say_number(-5, "zh")) == "负五"
    assert en(say_number(-1005, "en")) == "minus one thousand and five"
    assert zh(say_number("3.14", "zh")) == "三点一四"
    assert zh(say_number(Decimal("0.5"), "zh")) == "零点五"
    assert zh(say_number(2.5, "zh")) == "二点五"
    assert en(say_number("-0.05", "en")) == "minus zero point zero five"
    assert en(say_number("12.50", "en")) == "twelve point five zero"
    assert say_number("-0", "en") == ["n0"]
    assert say_number("1E+3", "en") == say_number(1000, "en")


def test_bad_numbers_are_clear_errors():
    with pytest.raises(ValueError, match=r"say_number: 'abc' is not a number"):
        say_number("abc", "zh")
    with pytest.raises(ValueError, match="too large"):
        say_number(MAX_NUMBER + 1, "en")
    with pytest.raises(ValueError, match="not a finite number"):
        say_number(float("nan"), "en")
    with pytest.raises(TypeError, match="bool"):
        say_number(True, "en")
    with pytest.raises(ValueError, match=r"no rules for language 'fr' \(have zh, en\)"):
        say_number(1, "fr")


@pytest.mark.parametrize("value, zh_text, en_text", [
    ("0", "零元", "zero yuan"),
    ("0.05", "五分", "five cents"),
    ("0.5", "五角", "fifty cents"),
    ("0.55", "五角五分", "fifty five cents"),
    ("1", "一元", "one yuan"),
    ("2", "两元", "two yuan"),
    ("2.22", "两元两角两分", "two yuan and twenty two cents"),
    ("10.05", "十元零五分", "ten yuan and five cents"),
    ("12.50", "十二元五角", "twelve yuan and fifty cents"),
    ("12.34", "十二元三角四分", "twelve yuan and thirty four cents"),
    ("20", "二十元", "twenty yuan"),
    ("200", "两百元", "two hundred yuan"),
    ("1005.01", "一千零五元零一分", "one thousand and five yuan and one cent"),
    ("20000", "两万元", "twenty thousand yuan"),
    ("-3.2", "负三元两角", "minus three yuan and twenty cents"),
    ("0.125", "一角三分", "thirteen cents"),          # rounded half up to the fen
    (Decimal("99.999"), "一百元", "one hundred yuan"),
])
def test_amounts_cny(value, zh_text: str, en_text: str):
    assert zh(say_amount(value, "zh")) == zh_text
    assert en(say_amount(value, "en")) == en_text


def test_amounts_usd_and_errors():
    assert en(say_amount("1.01", "en", "USD")) == "one dollar and one cent"
    assert en(say_amount(42, "en", "USD")) == "forty two dollars"
    assert zh(say_amount("2.50", "zh", "USD")) == "两美元五十美分"
    assert en(say_amount(0, "en", "USD")) == "zero dollars"
    with pytest.raises(ValueError, match="currency 'EUR'"):
        say_amount(1, "en", "EUR")


@pytest.mark.parametrize("hh, mm, zh_text, en_text", [
    (0, 0, "凌晨零点", "twelve midnight"),
    (0, 30, "凌晨零点三十分", "twelve thirty a.m."),
    (2, 5, "凌晨两点零五分", "two oh five a.m."),
    (9, 0, "上午九点", "nine a.m."),
    (9, 5, "上午九点零五分", "nine oh five a.m."),
    (10, 10, "上午十点十分", "ten ten a.m."),
    (11, 2, "上午十一点零二分", "eleven oh two a.m."),
    (12, 0, "中午十二点", "twelve noon"),
    (12, 15, "中午十二点十五分", "twelve fifteen p.m."),
    (14, 22, "下午两点二十二分", "two twenty two p.m."),
    (17, 59, "下午五点五十九分", "five fifty nine p.m."),
    (18, 30, "晚上六点三十分", "six thirty p.m."),
    (23, 45, "晚上十一点四十五分", "eleven forty five p.m."),
])
def test_times(hh: int, mm: int, zh_text: str, en_text: str):
    assert zh(say_time(hh, mm, "zh")) == zh_text
    assert en(say_time(hh, mm, "en")) == en_text


def test_bad_times():
    with pytest.raises(ValueError, match=r"say_time hour: 24 is out of range 0\.\.23"):
        say_time(24, 0, "en")
    with pytest.raises(ValueError, match=r"say_time minute: 60"):
        say_time(1, 60, "zh")
    with pytest.raises(TypeError, match="expected an int"):
        say_time(1.5, 0, "zh")


def test_queue_positions_and_waits():
    assert zh(say_queue_position(2, "zh")) == "您目前排在第二位。"          # ordinal: 二, not 两
    assert zh(say_queue_position(12, "zh")) == "您目前排在第十二位。"
    assert zh(say_queue_position(200, "zh")) == "您目前排在第二百位。"
    assert en(say_queue_position(3, "en")) == "You are caller number three in the queue."
    with pytest.raises(ValueError, match="out of range 1"):
        say_queue_position(0, "en")
    assert zh(say_duration_minutes(0, "zh")) == "不到一分钟"
    assert zh(say_duration_minutes(2, "zh")) == "两分钟"
    assert zh(say_duration_minutes(12, "zh")) == "十二分钟"
    assert zh(say_duration_minutes(65, "zh")) == "一小时五分钟"
    assert zh(say_duration_minutes(120, "zh")) == "两小时"
    assert en(say_duration_minutes(0, "en")) == "less than one minute"
    assert en(say_duration_minutes(1, "en")) == "one minute"
    assert en(say_duration_minutes(5, "en")) == "five minutes"
    assert en(say_duration_minutes(61, "en")) == "one hour and one minute"
    assert en(say_duration_minutes(150, "en")) == "two hours and thirty minutes"


def test_digits():
    assert zh(say_digits("0101", "zh")) == "零幺零幺"             # 幺 for 1 in digit strings
    assert zh(say_digits("2*#", "zh")) == "二星号井号"
    assert en(say_digits("(010) 555-12#", "en")) == "zero one zero five five five one two pound"
    with pytest.raises(ValueError, match=r"'x' at position 2 of '12x' is not a digit"):
        say_digits("12x", "en")


def test_every_name_produced_exists_in_the_catalogue_and_the_wav_set():
    rng = random.Random(4)
    numbers = set(range(0, 20001)) | {rng.randrange(0, MAX_NUMBER + 1) for _ in range(3000)}
    numbers |= {d * 10**k for d in range(1, 10) for k in range(12)}
    produced: set[str] = set()
    for lang in CAT.languages:
        for n in numbers:
            produced.update(say_number(n, lang))
            produced.update(say_number(-n, lang))
        for _ in range(2000):
            produced.update(say_number(f"{rng.randrange(-10**6, 10**6)}.{rng.randrange(1000)}", lang))
        for cents in range(0, 100001, 7):
            for cur in ("CNY", "USD"):
                produced.update(say_amount(Decimal(cents) / 100, lang, cur))
        for hh in range(24):
            for mm in range(60):
                produced.update(say_time(hh, mm, lang))
        for n in range(1, 1001):
            produced.update(say_queue_position(n, lang))
        for n in range(0, 1500):
            produced.update(say_duration_minutes(n, lang))
        produced.update(say_digits("0123456789*#", lang))
    unknown = produced - set(CAT.names())
    assert unknown == set()
    # and the committed audio has them all, in every language, without fallback
    PromptLibrary(PROMPTS_DIR, level_dbm0=None).check(sorted(produced), fallback=False)
