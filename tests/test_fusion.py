"""The mood fusion rule on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from facial_emotion.fusion import VALENCE, Mood, MoodFuser, face_confidence, face_valence, mood_label
from facial_emotion.types import EMOTIONS, EmotionScores, Sentiment, Utterance, Word


def scores(**probabilities: float) -> EmotionScores:
    """EmotionScores from named probabilities (the rest 0)."""
    return EmotionScores(tuple(probabilities.get(e, 0.0) for e in EMOTIONS))


def said(compound: float, start_ms: float, end_ms: float, conf: float = 1.0, final: bool = True) -> Utterance:
    """An utterance of two words with a given compound and word confidence."""
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    words = (
        Word("some", start_ms, (start_ms + end_ms) / 2, conf),
        Word("words", (start_ms + end_ms) / 2, end_ms, conf),
    )
    return Utterance("some words", final, start_ms, end_ms, words, Sentiment(compound, label))


HAPPY = scores(happy=1.0)
SAD = scores(sad=1.0)


def test_valence_table() -> None:
    """Each emotion has a valence in [-1, 1]: happy +1, negative ones below 0, surprise and neutral near 0."""
    assert set(VALENCE) == set(EMOTIONS)
    assert VALENCE["happy"] == 1.0
    assert all(VALENCE[e] < 0 for e in ("angry", "disgust", "fear", "sad"))
    assert abs(VALENCE["surprise"]) <= 0.2 and VALENCE["neutral"] == 0.0


def test_worked_example_of_the_docstring() -> None:
    """happy .7 / neutral .2 / surprise .1 with "I love it" said 2 s before: 0.677, positive."""
    face = scores(happy=0.7, neutral=0.2, surprise=0.1)
    assert face_valence(face) == pytest.approx(0.71)
    assert face_confidence(face) == pytest.approx(0.587947, abs=1e-6)
    fuser = MoodFuser()
    fuser.update_face(1, face, 10_000)
    fuser.add_utterance(said(0.6369, 7_000, 8_000, conf=0.9))
    mood = fuser.mood(1, 10_000)
    assert mood.weights == pytest.approx((0.587947, 0.496327), abs=1e-6)
    assert mood.score == pytest.approx(0.676538, abs=1e-6)
    assert (mood.label, mood.face_valence, mood.speech_valence) == ("positive", pytest.approx(0.71), 0.6369)


def test_happy_face_and_positive_speech_is_positive() -> None:
    """Both channels positive: the mood is positive and lies between them."""
    fuser = MoodFuser()
    fuser.update_face(3, HAPPY, 1_000)
    fuser.add_utterance(said(0.8, 0, 900))
    mood = fuser.mood(3, 1_000)
    assert mood.label == "positive" and 0.8 < mood.score < 1.0


def test_no_speech_is_face_only() -> None:
    """Without utterances the mood is the face's valence, speech weight 0."""
    fuser = MoodFuser()
    fuser.update_face(1, scores(sad=0.5, neutral=0.5), 0)
    mood = fuser.mood(1, 0)
    assert mood == Mood(-0.4, "negative", -0.4, None, (pytest.approx(1 - math.log(2) / math.log(7)), 0.0))


def test_old_speech_counts_less() -> None:
    """Negative speech (-0.8) against a certain happy face: weight 0.85 fresh, a quarter of it 10 s later."""
    fresh, old = MoodFuser(), MoodFuser()
    for fuser in (fresh, old):
        fuser.update_face(1, HAPPY, 20_000)
    fresh.add_utterance(said(-0.8, 19_000, 20_000))
    old.add_utterance(said(-0.8, 9_000, 10_000))
    assert fresh.mood(1, 20_000).score == pytest.approx((1.0 - 0.85 * 0.8) / 1.85)  # 0.173
    assert old.mood(1, 20_000).score == pytest.approx((1.0 - 0.2125 * 0.8) / 1.2125)  # 0.685
    assert old.mood(1, 20_000).weights[1] == pytest.approx(0.2125)


def test_face_is_smoothed_over_time() -> None:
    """Happy then sad one time constant later: 1 + (1 - 1/e) * (-0.8 - 1) = -0.138."""
    fuser = MoodFuser(face_tau_ms=300)
    fuser.update_face(1, HAPPY, 0)
    fuser.update_face(1, SAD, 300)
    assert fuser.mood(1, 300).face_valence == pytest.approx(1 - (1 - math.exp(-1)) * 1.8)


def test_a_face_that_stopped_updating_fades() -> None:
    """One face half-life after its last update the face weight has halved."""
    fuser = MoodFuser(face_half_life_ms=1_000)
    fuser.update_face(1, HAPPY, 0)
    assert fuser.mood(1, 1_000).weights[0] == pytest.approx(0.5)


def test_scene_mood_averages_faces_by_weight() -> None:
    """A certain happy face and an unsure sad one: valence (1 - 0.644 * 0.4) / 1.644 = 0.452."""
    fuser = MoodFuser()
    fuser.update_face(1, HAPPY, 0)
    fuser.update_face(2, scores(sad=0.5, neutral=0.5), 0)
    c2 = 1 - math.log(2) / math.log(7)
    mood = fuser.scene_mood(0)
    assert mood.score == pytest.approx((1.0 - 0.4 * c2) / (1.0 + c2))
    assert mood.weights == (pytest.approx(1.0), 0.0)
    fuser.forget_face(1)
    assert fuser.track_ids() == (2,)


def test_speech_alone_and_nothing() -> None:
    """An unknown track gets the speech's mood; with nothing at all the mood is neutral 0."""
    fuser = MoodFuser()
    assert fuser.scene_mood(0) == Mood(0.0, "neutral", None, None, (0.0, 0.0))
    fuser.add_utterance(said(-0.6, 0, 1_000))
    mood = fuser.mood(42, 1_000)
    assert (mood.score, mood.label, mood.face_valence) == (pytest.approx(-0.6), "negative", None)


def test_partials_and_future_utterances_are_ignored() -> None:
    """A partial result does not count, nor an utterance that starts after the time asked."""
    fuser = MoodFuser()
    fuser.add_utterance(said(0.9, 0, 500, final=False))
    fuser.add_utterance(said(0.9, 5_000, 6_000))
    assert fuser.scene_mood(1_000).speech_valence is None
    assert fuser.scene_mood(6_000).speech_valence == pytest.approx(0.9)


def test_labels() -> None:
    """Mood labels switch at +-0.1."""
    assert [mood_label(x) for x in (0.1, 0.09, -0.09, -0.1)] == ["positive", "neutral", "neutral", "negative"]


def test_whole_transcript_added_up_front() -> None:
    """For a file: a later utterance added first does not push out an early one still in effect."""
    fuser = MoodFuser()
    fuser.add_utterance(said(0.8, 0, 1_000))
    fuser.add_utterance(said(-0.8, 120_000, 121_000))
    assert fuser.scene_mood(1_000).speech_valence == pytest.approx(0.8)
    assert fuser.scene_mood(121_000).speech_valence == pytest.approx(-0.8)  # the first is long faded


def test_a_looped_video_restarts_the_face_average() -> None:
    from facial_emotion.fusion import MoodFuser
    from facial_emotion.types import EmotionScores

    happy = EmotionScores((0.0, 0.0, 0.0, 0.94, 0.0, 0.0, 0.06))
    afraid = EmotionScores((0.0, 0.0, 0.94, 0.0, 0.0, 0.0, 0.06))
    fuser = MoodFuser()
    for t in range(0, 20_000, 40):
        fuser.update_face(1, happy, float(t))
    assert fuser.mood(1, 19_960.0).score > 0.8
    for t in range(0, 2_000, 40):  # the video starts again at 0 ms, and the face is now afraid
        fuser.update_face(1, afraid, float(t))
    assert fuser.mood(1, 1_960.0).score < -0.4


def test_forget_faces_keeps_the_speech() -> None:
    """A new pass drops the faces of the last one; a file's transcript stays for the next loop."""
    fuser = MoodFuser()
    fuser.update_face(1, HAPPY, 1_000)
    fuser.add_utterance(said(0.8, 0, 1_000))
    fuser.forget_faces()
    assert fuser.track_ids() == ()
    assert fuser.scene_mood(1_000).speech_valence == pytest.approx(0.8)
