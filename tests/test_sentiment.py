"""VADER sentiment of recognised text: compound, labels at VADER's thresholds, utterances scored."""

from __future__ import annotations

import pytest

from facial_emotion.speech.sentiment import label_for, score_text, with_sentiment
from facial_emotion.types import Sentiment, Utterance


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("i am very happy this is a wonderful day and i love it", "positive"),
        ("i am very sad and angry this is a terrible day", "negative"),
        ("the train leaves from the station at noon", "neutral"),
        ("this is not good at all", "negative"),  # VADER handles negation
    ],
)
def test_labels_of_sentences(text: str, label: str) -> None:
    """Clear sentences get the expected label and a compound of the matching sign."""
    sentiment = score_text(text)
    assert sentiment.label == label
    assert -1.0 <= sentiment.compound <= 1.0
    assert {
        "positive": sentiment.compound >= 0.05,
        "negative": sentiment.compound <= -0.05,
        "neutral": abs(sentiment.compound) < 0.05,
    }[label]


def test_thresholds() -> None:
    """0.05 and -0.05 belong to positive and negative; between is neutral."""
    assert label_for(0.05) == "positive"
    assert label_for(0.0499) == "neutral"
    assert label_for(-0.05) == "negative"
    assert label_for(-0.0499) == "neutral"


def test_empty_text_is_neutral() -> None:
    """Nothing said is neutral zero, without calling VADER on nothing."""
    assert score_text("  ") == Sentiment(0.0, "neutral")


def test_with_sentiment_keeps_the_utterance() -> None:
    """Scoring an utterance adds its sentiment and changes nothing else."""
    utterance = Utterance("i hate this awful thing", True, 100.0, 900.0)
    scored = with_sentiment(utterance)
    assert scored.sentiment is not None and scored.sentiment.label == "negative"
    assert (scored.text, scored.final, scored.start_ms, scored.end_ms) == (
        "i hate this awful thing",
        True,
        100.0,
        900.0,
    )
