"""Text normalisation: undo the tricks people use to slip words past a filter.

Two forms come out of one deterministic pipeline:

* :func:`normalize` — a readable canonical form for classifiers and regex
  patterns: invisible characters dropped, Unicode NFKC, accents stripped,
  look-alike letters (Cyrillic, Greek, fullwidth…) folded to Latin, case
  folded, leetspeak decoded inside words, spaced-out letters joined
  ("b a d", "b.a.d") and runs of three or more of one letter cut to one
  ("baaaad" → "bad"; ordinary double letters are kept so "good" stays a word
  a classifier knows).
* :func:`skeleton` — the key exact bank phrases are matched on: the normal
  form with punctuation removed, every repeated letter collapsed and the
  i/l/1/| family merged into ``i`` (a leet "1" may stand for either). It is
  not meant to be read.

The output is part of what a bank entry means, so the tables here are fixed
and :data:`NORMALIZER_VERSION` changes whenever they do.

>>> normalize("ＢÀ\u200bD  W0rd!!")
'bad word!!'
>>> normalize("b a d w o r d and b.a.d and baaaad")
'badword and bad and bad'
>>> normalize("Тһіѕ іѕ ѕраm")  # Cyrillic look-alikes
'this is spam'
>>> normalize("sp4ml1nk in 2024, 1st place")
'spamlink in 2024, 1st place'
>>> skeleton("Spam-L1nk!!! spaaamlink")
'spam ink spamink'
"""

from __future__ import annotations

import re
import unicodedata

#: Bumped whenever a table or step below changes what a text normalises to.
NORMALIZER_VERSION = "1"

# Why a compact table rather than a library: Unicode's confusables.txt (TR39)
# maps to "skeletons" that are neither case-folded nor letters only (it turns
# "rn" into "m"), and the PyPI packages built on it (confusable-homoglyphs,
# confusables) detect mixed-script strings rather than fold them, and their
# data moves with their releases. What we need is a small, fixed, reviewable
# fold of the letters that look like Latin in the scripts abuse actually uses
# (Cyrillic, Greek, a few IPA/Latin-extended forms); NFKC already handles
# fullwidth, mathematical and circled letters. Both cases of each letter are
# listed because the fold runs before case folding (Greek capital eta "Η" looks
# like H, its lower case "η" like n).
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals
    "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "Ј": "j", "К": "k",
    "М": "m", "О": "o", "Р": "p", "Ѕ": "s", "Т": "t", "Х": "x", "У": "y", "Ԁ": "d",
    "Ԍ": "g", "Ԛ": "q", "Ԝ": "w", "Ү": "y", "Һ": "h", "Ӏ": "l", "Ь": "b",
    # Cyrillic small
    "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "м": "m", "о": "o", "р": "p", "ѕ": "s", "т": "t", "х": "x", "у": "y", "ԁ": "d",
    "ԍ": "g", "ԛ": "q", "ԝ": "w", "ү": "y", "ӏ": "l", "ь": "b", "п": "n", "г": "r",
    # Greek capitals
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
    "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Greek small
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin extensions and IPA that survive NFKC
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʏ": "y", "ᴀ": "a",
    "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k",
    "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ø": "o", "đ": "d", "ħ": "h", "ł": "l", "ß": "ss",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)

#: Leetspeak digits and symbols, decoded only inside a word that has a letter.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "8": "b", "9": "g", "@": "a", "$": "s", "|": "l", "!": "i"})  # fmt: skip
# A "word" for leet purposes: letters with digits or leet symbols among them.
# "!" counts only when a letter follows it, so "wow!" keeps its exclamation mark.
_LEET_WORD = re.compile(r"(?:[^\W_]|[@$|]|!(?=[^\W\d_]))+")
# Numbers with a unit or ordinal ("1st", "10k", "5pm") are not leet.
_NUMBER_WITH_UNIT = re.compile(r"\d+(?:st|nd|rd|th|s|k|m|x|h|am|pm|min|px|fps)", re.ASCII)

# Spaced-out letters: three or more single characters separated by spaces or
# light punctuation ("b a d", "b.a.d", "b-a-d", "b_a_d", "b*a*d").
_SINGLE = r"(?:[^\W_]|[@$])"
_SEP = r"[\s.\-_*·•,/\\~]+"
_SPACED = re.compile(rf"(?<![^\W_]){_SINGLE}(?![^\W_])(?:{_SEP}{_SINGLE}(?![^\W_])){{2,}}")
_SEP_RE = re.compile(_SEP)
_LONG_RUN = re.compile(r"([^\W\d_])\1{2,}")
_ANY_RUN = re.compile(r"([^\W_])\1+")
_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")
#: After leet decoding "1" became "i"; "l" and "i" merge so "spam1ink" meets "spamlink".
_I_FAMILY = str.maketrans({"l": "i"})

# Characters that render as nothing (or as blank space) and so hide inside
# words: zero-width spaces and joiners, bidi controls, the soft hyphen, the
# BOM (all of Unicode category Cf), plus blank letters that are not Cf.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")


def _visible(text: str) -> str:
    return "".join(
        c
        for c in text
        if c not in _BLANK_LETTERS and (unicodedata.category(c) not in ("Cf", "Cc") or c in "\t\n")
    )


def _strip_marks(text: str) -> str:
    """Drop combining marks (accents, "zalgo" stacks): "bàd" → "bad"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    )


def _decode_leet(match: re.Match[str]) -> str:
    word = match.group()
    if _NUMBER_WITH_UNIT.fullmatch(word) or not any(c.isalpha() for c in word):
        return word
    return word.translate(_LEET)


def _join_spaced(match: re.Match[str]) -> str:
    return _SEP_RE.sub("", match.group())


def _round(text: str) -> str:
    """One pass of the word-level steps; :func:`normalize` repeats it until stable."""
    text = _LONG_RUN.sub(r"\1", text)
    text = _SPACED.sub(_join_spaced, text)
    text = _LEET_WORD.sub(_decode_leet, text)
    text = _LONG_RUN.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def normalize(text: str) -> str:
    """The readable canonical form of ``text`` (see the module docstring).

    Idempotent: ``normalize(normalize(t)) == normalize(t)``. The character
    steps are idempotent by themselves; the word steps (joining, leet, runs)
    can enable one another, so they repeat until nothing changes. That ends:
    after the first pass no step lengthens the text, and a pass that leaves
    the length unchanged changed nothing joining or leet decoding depend on.

    >>> normalize("ＳＰＡＭ ｌｉｎｋ")
    'spam link'
    >>> normalize("f r e e  m o n e y")  # one run of spaced letters joins as one word
    'freemoney'
    """
    text = _visible(text)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_HOMOGLYPH_TABLE).casefold()  # before folding: "Η" is H, "η" is n
    # Case folding can add marks ("İ" → "i̇") and letters of the table ("Ø" → "ø").
    text = _visible(_strip_marks(text)).translate(_HOMOGLYPH_TABLE)
    for _ in range(len(text) + 2):
        again = _round(text)
        if again == text:
            break
        text = again
    return text


def skeleton(text: str) -> str:
    """The matching key of ``text``: words of the normal form, letters collapsed.

    >>> skeleton("B.A.D W0RD")
    'bad word'
    >>> skeleton("Bad, worrd!") == skeleton("bad word")
    True
    """
    words = _NOT_WORD.sub(" ", normalize(text)).translate(_I_FAMILY)
    return _SPACES.sub(" ", _ANY_RUN.sub(r"\1", words)).strip()
