"""Say numbers, amounts, times and queue positions as lists of prompt names.

The voice server speaks a number by playing short prompts back to back, so
this module only decides WHICH prompts, in which order; it does no audio
and no I/O. Every name it returns is an entry of the default catalogue
(prompts/prompts.toml), so a site's replacement recordings work as long as
they keep the names.

Chinese (zh) rules, as a telephone service reads a number:
- groups of four digits: 万 (10^4) and 亿 (10^8); 123456789 = 一亿二千三百四十五万六千七百八十九
- 零 once for each gap of zeros between spoken digits, also across a
  group: 1005 一千零五, 1050 一千零五十, 10005 一万零五, 100000001 一亿零一;
  never for trailing zeros (1500 一千五百)
- 十 alone at the start of a number (10 十, 15 十五, 100000 十万), 一十
  inside one (115 一百一十五, 1010 一千零一十)
- 两 for a 2 that is the first digit of the number, before 百, 千, 万 or
  亿 (200 两百, 2000 两千, 20000 两万, 2000000 两百万, 200000000 两亿),
  and for the number 2 before a measure word (两元, 两点, 两分钟); 二
  inside a number (1200 一千二百, 12000 一万二千, 22000 两万二千: after
  万/亿 二 is the usual form) and never 两 in ordinals (第二位) or when
  reading digits.
- digit strings read 1 as 幺 (as telephone numbers are read).

English (en) rules: "one thousand two hundred and five": "and" before
the tens and units after a hundred, and before a last group below 100
after thousands (1005 "one thousand and five"); hyphenated tens are two
prompts (21 = twenty, one).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["LANGUAGES", "MAX_NUMBER", "say_digits", "say_number", "say_amount", "say_time",
           "say_queue_position", "say_duration_minutes"]

LANGUAGES = ("zh", "en")
MAX_NUMBER = 10**12 - 1          # up to 9999亿 / 999 billion
CURRENCIES = ("CNY", "USD")
_DIGIT_KEYS = {**{str(d): f"digit_{d}" for d in range(10)}, "*": "star", "#": "pound"}
_SEPARATORS = " -()."

Number = int | float | str | Decimal


def _check_lang(lang: str, what: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"{what}: no rules for language {lang!r} (have {', '.join(LANGUAGES)})")


def _check_int(n: object, what: str, lo: int, hi: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what}: expected an int, got {type(n).__name__} {n!r}")
    if not lo <= n <= hi:
        raise ValueError(f"{what}: {n} is out of range {lo}..{hi}")
    return n


def _decimal(value: Number, what: str) -> Decimal:
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a number, got bool {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    if abs(d) > MAX_NUMBER:
        raise ValueError(f"{what}: {value!r} is too large (at most {MAX_NUMBER})")
    return d


# ---------------------------------------------------------------- Chinese
def _zh_group(v: int, *, first: bool, liang: bool, before_unit: bool) -> list[str]:
    """One group of four digits (1..9999); ``first``: no group before it."""
    out: list[str] = []
    zero = False
    lead = True                       # nothing of this group said yet
    for d, place in ((v // 1000, 3), (v // 100 % 10, 2), (v // 10 % 10, 1), (v % 10, 0)):
        if d == 0:
            zero = zero or not lead
            continue
        if zero:
            out.append("n0")
            zero = False
        if place == 3:
            out += ["liang" if d == 2 and liang and first and lead else f"n{d}", "thousand"]
        elif place == 2:
            out += ["liang" if d == 2 and liang and first and lead else f"n{d}", "hundred"]
        elif place == 1:
            out += ["n10"] if d == 1 and first and lead else [f"n{d}", "n10"]
        else:
            out.append("liang" if d == 2 and liang and first and lead and before_unit else f"n{d}")
        lead = False
    return out


def _zh_int(n: int, *, liang: bool = True) -> list[str]:
    if n == 0:
        return ["n0"]
    out: list[str] = []
    started = False
    skipped = False                   # a whole group of zeros since the last spoken one
    for value, unit in ((n // 10**8, "yi"), (n // 10**4 % 10**4, "wan"), (n % 10**4, None)):
        if value == 0:
            skipped = skipped or started
            continue
        if started and (skipped or value < 1000):
            out.append("n0")
        out += _zh_group(value, first=not started, liang=liang, before_unit=unit is not None)
        if unit:
            out.append(unit)
        started, skipped = True, False
    return out


def _zh_measure(n: int) -> list[str]:
    """A count before a measure word (元, 点, 分钟): 2 is 两."""
    return ["liang"] if n == 2 else _zh_int(n)


# ---------------------------------------------------------------- English
def _en_below_100(n: int) -> list[str]:
    if n < 20:
        return [f"n{n}"]
    tens, units = divmod(n, 10)
    return [f"n{tens * 10}"] + ([f"n{units}"] if units else [])


def _en_below_1000(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [f"n{hundreds}", "hundred"] if hundreds else []
    if rest:
        out += (["and"] if hundreds else []) + _en_below_100(rest)
    return out


def _en_int(n: int) -> list[str]:
    if n == 0:
        return ["n0"]
    out: list[str] = []
    rest = n
    for size, word in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand")):
        q, rest = divmod(rest, size)
        if q:
            out += _en_below_1000(q) + [word]
    if rest:
        out += (["and"] if out and rest < 100 else []) + _en_below_1000(rest)
    return out


def _int_words(n: int, lang: str) -> list[str]:
    return _zh_int(n) if lang == "zh" else _en_int(n)


# ---------------------------------------------------------------- API
def say_digits(s: str, lang: str) -> list[str]:
    """Read a string digit by digit (account and phone numbers): "1057#".

    Spaces, hyphens, dots and brackets are skipped; anything else that is
    not 0-9, * or # is an error naming the character and its position.
    """
    _check_lang(lang, "say_digits")
    if not isinstance(s, str):
        raise TypeError(f"say_digits: expected a str, got {type(s).__name__}")
    out: list[str] = []
    for i, ch in enumerate(s):
        if ch in _DIGIT_KEYS:
            out.append(_DIGIT_KEYS[ch])
        elif ch not in _SEPARATORS:
            raise ValueError(f"say_digits: {ch!r} at position {i} of {s!r} is not a digit, * or #")
    return out


def say_number(n: Number, lang: str) -> list[str]:
    """A cardinal number: int, or a decimal (str/Decimal/float) read "three point one four".

    The digits after the point are read one by one, as written ("2.50" keeps
    its zero). Magnitude up to MAX_NUMBER.
    """
    _check_lang(lang, "say_number")
    d = _decimal(n, "say_number")
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    out = ["minus"] if sign and d != 0 else []
    if exp >= 0:
        return out + _int_words(int(abs(d)), lang)
    whole = int(abs(d))
    frac = "".join(map(str, digits))[exp:].rjust(-exp, "0")
    return out + _int_words(whole, lang) + ["point"] + [f"n{c}" for c in frac]


def say_amount(value: Number, lang: str, currency: str = "CNY") -> list[str]:
    """An amount of money, rounded half up to the cent/fen.

    zh CNY: 元/角/分 (12.50 十二元五角, 10.05 十元零五分, 2 两元);
    zh USD: 美元/美分. en: "twelve yuan and fifty cents",
    "one dollar and five cents". Negative amounts start with minus/负.
    """
    _check_lang(lang, "say_amount")
    if currency not in CURRENCIES:
        raise ValueError(f"say_amount: currency {currency!r} is not one of {', '.join(CURRENCIES)}")
    d = _decimal(value, "say_amount").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    out = ["minus"] if d < 0 else []
    cents_total = int(abs(d) * 100)
    whole, cents = divmod(cents_total, 100)
    if lang == "zh":
        if currency == "CNY":
            jiao, fen = divmod(cents, 10)
            if whole:
                out += _zh_measure(whole) + ["yuan"]
            if jiao:
                out += _zh_measure(jiao) + ["jiao"]
            if fen:
                out += (["n0"] if whole and not jiao else []) + _zh_measure(fen) + ["fen"]
            return out if cents_total else ["n0", "yuan"]
        if whole:
            out += _zh_measure(whole) + ["dollars"]
        if cents:
            out += _zh_measure(cents) + ["cents"]
        return out if cents_total else ["n0", "dollars"]
    one, many = ("yuan", "yuan") if currency == "CNY" else ("dollar", "dollars")
    if whole:
        out += _en_int(whole) + [one if whole == 1 else many]
    if cents:
        out += (["and"] if whole else []) + _en_int(cents) + ["cent" if cents == 1 else "cents"]
    return out if cents_total else ["n0", many]


def say_time(hh: int, mm: int, lang: str) -> list[str]:
    """A time of day from a 24-hour clock, read on a 12-hour clock.

    en: "nine a.m.", "nine oh five a.m.", "three fifteen p.m.", "twelve
    noon", "twelve midnight". zh: a period word, the hour with 点 and the
    minutes with 分: 凌晨 0-5 h, 上午 6-11, 中午 12, 下午 13-17, 晚上 18-23
    (下午两点十五分, 上午九点零五分, 凌晨零点三十分).
    """
    _check_lang(lang, "say_time")
    _check_int(hh, "say_time hour", 0, 23)
    _check_int(mm, "say_time minute", 0, 59)
    if lang == "en":
        h12 = hh % 12 or 12
        if mm == 0 and hh in (0, 12):
            return ["n12", "midnight" if hh == 0 else "noon"]
        out = [f"n{h12}"]
        if 0 < mm < 10:
            out += ["oh", f"n{mm}"]
        elif mm:
            out += _en_below_100(mm)
        return out + ["am" if hh < 12 else "pm"]
    if hh < 6:
        period = "early_morning"
    elif hh < 12:
        period = "am"
    elif hh == 12:
        period = "noon"
    elif hh < 18:
        period = "pm"
    else:
        period = "evening"
    hour = hh if hh in (0, 12) else hh % 12
    out = [period] + _zh_measure(hour) + ["oclock"]
    if 0 < mm < 10:
        out += ["n0", f"n{mm}", "minute_of_hour"]
    elif mm:
        out += _zh_int(mm, liang=False) + ["minute_of_hour"]
    return out


def say_queue_position(n: int, lang: str) -> list[str]:
    """"You are caller number three in the queue" / 您目前排在第三位."""
    _check_lang(lang, "say_queue_position")
    _check_int(n, "say_queue_position", 1, MAX_NUMBER)
    words = _zh_int(n, liang=False) if lang == "zh" else _en_int(n)
    return ["you_are_caller_number", *words, "in_the_queue"]


def say_duration_minutes(n: int, lang: str) -> list[str]:
    """A waiting time in whole minutes: "one hour and five minutes" / 一小时五分钟.

    0 is "less than one minute" / 不到一分钟 (an estimate rounded down to
    zero should not sound like "no wait").
    """
    _check_lang(lang, "say_duration_minutes")
    _check_int(n, "say_duration_minutes", 0, MAX_NUMBER)
    if n == 0:
        return ["less_than_a_minute"]
    hours, minutes = divmod(n, 60)
    out: list[str] = []
    if lang == "zh":
        if hours:
            out += _zh_measure(hours) + ["hours"]
        if minutes:
            out += _zh_measure(minutes) + ["minutes"]
        return out
    if hours:
        out += _en_int(hours) + ["hour" if hours == 1 else "hours"]
    if minutes:
        out += (["and"] if hours else []) + _en_int(minutes) + ["minute" if minutes == 1 else "minutes"]
    return out
