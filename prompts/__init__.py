"""The default prompt set (zh, en) and music on hold, and its catalogue.

This package is mostly data: ``prompts/<lang>/<name>.wav`` and
``prompts/moh/*.wav``, generated from ``prompts/prompts.toml`` by
``prompts/make_prompts.py``. The code here only says where the set is and
reads the catalogue, so that the IVR config validator, the authoring script
and the tests all read the catalogue the same way (with the file/line/key
errors of :mod:`boarddrv.tomlconfig`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PROMPTS_DIR", "CATALOGUE", "MOH_DIR", "Entry", "Catalogue", "load_catalogue"]

PROMPTS_DIR = Path(__file__).resolve().parent
CATALOGUE = PROMPTS_DIR / "prompts.toml"
MOH_DIR = PROMPTS_DIR / "moh"

_NAME = re.compile(r"[a-z0-9][a-z0-9_]*\Z")
_LANG = re.compile(r"[a-z]{2,3}(-[a-z0-9]+)*\Z")
_RESERVED_DIRS = {"moh"}


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: what prompt ``name`` says in each language."""
    name: str
    group: str
    text: dict[str, str]
    tts: dict[str, str] = field(default_factory=dict)

    def spoken(self, lang: str) -> str:
        """What the synthesiser reads for ``lang`` (the tts override or the text)."""
        return self.tts.get(lang, self.text[lang])


@dataclass(frozen=True)
class Catalogue:
    """The parsed ``prompts.toml``: languages, synthesis settings and entries."""
    path: Path
    languages: tuple[str, ...]
    rate: int
    level_dbm0: float
    voices: dict[str, tuple[str, int]]       # lang -> (espeak-ng voice, words per minute)
    entries: dict[str, Entry]                # name -> entry, in file order

    def names(self) -> list[str]:
        return list(self.entries)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.entries.values():
            out.setdefault(e.group, []).append(e.name)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self.entries


def load_catalogue(path: str | Path = CATALOGUE) -> Catalogue:
    """Read and validate a prompt catalogue.

    Every entry must give a text for every language of ``[set].languages``,
    so that every prompt name exists in every language of the set; a
    problem is a ``ConfigError`` naming the file, line and key.
    """
    from boarddrv.tomlconfig import load

    cfg = load(path)
    st = cfg.section("set", required=True)
    st.check_keys({"languages", "rate", "level_dbm0"})
    languages = tuple(st.get_list("languages", item=str))
    if not languages:
        raise st.error("languages", "at least one language is needed")
    for lang in languages:
        if not _LANG.match(lang) or lang in _RESERVED_DIRS:
            raise st.error("languages", f"{lang!r} is not a language tag like 'zh' or 'en'")
    rate = st.get_int("rate", default=8000, min=8000, max=8000)
    level = st.get_float("level_dbm0", default=-16.0, min=-40.0, max=-3.0)

    tts = cfg.section("tts", required=True)
    tts.check_keys(set(languages))
    voices: dict[str, tuple[str, int]] = {}
    for lang in languages:
        v = tts.table(lang, required=True)
        v.check_keys({"voice", "speed"})
        voices[lang] = (v.get_str("voice"), v.get_int("speed", default=160, min=80, max=450))

    allowed = set(languages) | {f"{lang}_tts" for lang in languages}
    entries: dict[str, Entry] = {}
    for group in cfg.data:
        if group in ("set", "tts"):
            continue
        gnode = cfg.section(group)          # not a table -> ConfigError
        for name in gnode.data:
            if not _NAME.match(name):
                raise gnode.error(name, "a prompt name is lower case letters, digits and _")
            if name in entries:
                raise gnode.error(name, f"prompt name already used in group "
                                        f"'{entries[name].group}'")
            enode = gnode.table(name, required=True)
            enode.check_keys(allowed)
            text = {lang: enode.get_str(lang) for lang in languages}
            for lang, t in text.items():
                if not t.strip():
                    raise enode.error(lang, "empty text")
            over = {lang: enode.get_str(f"{lang}_tts") for lang in languages
                    if f"{lang}_tts" in enode.data}
            entries[name] = Entry(name=name, group=group, text=text, tts=over)
    if not entries:
        raise cfg.error(None, "no prompt entries")
    return Catalogue(path=Path(path), languages=languages, rate=rate, level_dbm0=level,
                     voices=voices, entries=entries)
