"""Sentiment of recognised text with VADER: a compound score in [-1, 1] and a label."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Final

from facial_emotion.types import Sentiment, Utterance

POSITIVE_AT: Final[float] = 0.05
NEGATIVE_AT: Final[float] = -0.05
"""VADER's own thresholds: compound >= 0.05 is positive, <= -0.05 negative, neutral between."""

_analyzer: Any = None
_lock = threading.Lock()


def label_for(score: float, *, positive_at: float = POSITIVE_AT, negative_at: float = NEGATIVE_AT) -> str:
    """positive, neutral or negative for a score in [-1, 1] (VADER's thresholds by default)."""
    if score >= positive_at:
        return "positive"
    if score <= negative_at:
        return "negative"
    return "neutral"


def _vader() -> Any:
    global _analyzer
    with _lock:
        if _analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _analyzer = SentimentIntensityAnalyzer()
        return _analyzer


def score_text(text: str) -> Sentiment:
    """VADER sentiment of text (an empty text is neutral, 0.0)."""
    if not text.strip():
        return Sentiment(0.0, "neutral")
    compound = float(_vader().polarity_scores(text)["compound"])
    return Sentiment(compound, label_for(compound))


def with_sentiment(utterance: Utterance) -> Utterance:
    """The utterance with its text scored."""
    return dataclasses.replace(utterance, sentiment=score_text(utterance.text))
