"""Text screening of captions and comments: normalisation, text banks, classifier scores.

:func:`normalize` undoes evasion tricks (look-alike letters, leetspeak,
zero-width characters, spaced-out letters); :class:`TextBanks` hold exact
phrases and guarded regular expressions in SQL; classifiers whose models ship
inside their PyPI packages score each text (:class:`ProfanityClassifier`,
and :class:`EmbeddingSimilarity` with the ``text`` extra), every
:class:`Score` naming its model and version. :class:`TextScreener` combines
them, bank matches first, and is a gate screening step for captions.
"""

from trustfeed.moderation.text._banks import (
    PATTERN_TIMEOUT,
    SUBSTRING_MIN,
    TextBank,
    TextBanks,
    TextEntry,
    TextMatch,
    compile_pattern,
)
from trustfeed.moderation.text._classifiers import (
    EMBEDDINGS_AVAILABLE,
    EmbeddingSimilarity,
    ProfanityClassifier,
    Score,
    TextClassifier,
    default_classifiers,
    load_policy_examples,
)
from trustfeed.moderation.text._errors import (
    ClassifierUnavailable,
    InvalidPattern,
    PatternTimeout,
    TextScreeningError,
)
from trustfeed.moderation.text._normalize import NORMALIZER_VERSION, normalize, skeleton
from trustfeed.moderation.text._screen import (
    DEFAULT_RULES,
    ClassifierRule,
    TextReport,
    TextScoreLog,
    TextScreener,
    screen_text,
)

__all__ = [
    "DEFAULT_RULES",
    "EMBEDDINGS_AVAILABLE",
    "NORMALIZER_VERSION",
    "PATTERN_TIMEOUT",
    "SUBSTRING_MIN",
    "ClassifierRule",
    "ClassifierUnavailable",
    "EmbeddingSimilarity",
    "InvalidPattern",
    "PatternTimeout",
    "ProfanityClassifier",
    "Score",
    "TextBank",
    "TextBanks",
    "TextClassifier",
    "TextEntry",
    "TextMatch",
    "TextReport",
    "TextScoreLog",
    "TextScreener",
    "TextScreeningError",
    "compile_pattern",
    "default_classifiers",
    "load_policy_examples",
    "normalize",
    "screen_text",
    "skeleton",
]
