"""Text normalisation: each evasion trick is undone, and the form is stable.

Test words are mild stand-ins ("badword", "spamlink"), never slurs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustfeed.moderation.text import normalize, skeleton
from trustfeed.moderation.text._normalize import _HOMOGLYPHS

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u034f"]
#: Latin letter → the look-alikes our table folds into it.
LOOKALIKES: dict[str, list[str]] = {}
for _k, _v in _HOMOGLYPHS.items():
    if len(_v) == 1:
        LOOKALIKES.setdefault(_v, []).append(_k)


@pytest.mark.parametrize(
    ("tricked", "plain"),
    [
        ("bad\u200bword", "badword"),  # zero-width space
        ("b\u200ca\u200dd\u2060word", "badword"),  # joiners
        ("ЬаdwоrԀ", "badword"),  # Cyrillic look-alikes
        ("ΒΑDWΟRD", "badword"),  # Greek capitals
        ("ｂａｄｗｏｒｄ", "badword"),  # fullwidth (NFKC)
        ("𝐛𝐚𝐝𝐰𝐨𝐫𝐝", "badword"),  # mathematical bold (NFKC)
        ("bàdwörd", "badword"),  # accents
        ("b4dw0rd", "badword"),  # leet
        ("b@dw0rd", "badword"),
        ("$p4ml1nk", "spamlink"),
        ("b a d w o r d", "badword"),  # spacing
        ("b.a.d.w.o.r.d", "badword"),
        ("b-a-d-w-o-r-d", "badword"),
        ("b_a_d_w_o_r_d", "badword"),
        ("baaaaadwooooord", "badword"),  # repeated letters
        ("BADWORD", "badword"),  # case
    ],
)
def test_each_trick_normalises_to_the_plain_word(tricked: str, plain: str) -> None:
    assert normalize(tricked) == plain
    assert skeleton(tricked) == skeleton(plain)


def test_ordinary_text_keeps_numbers_punctuation_and_double_letters() -> None:
    assert normalize("Good food, 5 stars! See you at 10pm on the 1st.") == (
        "good food, 5 stars! see you at 10pm on the 1st."
    )


def test_one_means_i_or_l_in_the_skeleton() -> None:
    assert skeleton("spam1ink") == skeleton("spamlink") == skeleton("spamiink")


# Text that exercises every step: ASCII letters, digits, leet symbols,
# separators, some look-alikes, accents and zero-width characters.
_ALPHABET = st.sampled_from(
    [*"abcdeilostxyz0134579@$|!.-_* ,", "\u200b", "\u00e0", "а", "ο", "Ι", "\u0301", "ß"]
)
TEXTS = st.text(_ALPHABET, max_size=40) | st.text(max_size=30)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.data())
def test_an_inserted_zero_width_character_changes_nothing(text: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(text)))
    zw = data.draw(st.sampled_from(ZERO_WIDTH))
    tricked = text[:at] + zw + text[at:]
    assert normalize(tricked) == normalize(text)
    assert skeleton(tricked) == skeleton(text)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("abcdehijkmnopstwxyABCDEHKMOPTXY .0134!")), min_size=1))
def test_a_homoglyph_swap_changes_nothing(text: str) -> None:
    # Swap every Latin letter that has a look-alike for its first look-alike.
    swapped = "".join(LOOKALIKES.get(c.lower(), [c])[0] for c in text)
    assert normalize(swapped) == normalize(text)
    assert skeleton(swapped) == skeleton(text)
