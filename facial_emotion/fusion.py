"""Mood: a face's emotions and the speech's sentiment fused into one score in [-1, 1].

The rule
--------
1. Face valence. The seven emotion probabilities p_e are weighted by the constant
   table VALENCE (happy +1.0, surprise +0.1, neutral 0.0, fear -0.6, disgust -0.7,
   angry -0.8, sad -0.8)::

       v_face = sum_e p_e * VALENCE[e]                     (in [-1, 1])

   and the face's confidence is one minus the normalised entropy, 1 for a certain
   classifier and 0 for a uniform one::

       c_face = 1 - H(p) / ln 7,   H(p) = -sum_e p_e ln p_e

2. Smoothing. Per face track, v_face and c_face are smoothed by an exponential moving
   average with time constant FACE_TAU_MS: after dt ms, x += (1 - exp(-dt/tau)) * (new - x).
   The first sample of a track is taken as is.

3. Speech valence. Each final utterance i that started before t has its VADER compound
   s_i and a weight::

       w_i = conf_i * (0.25 + 0.75 * |s_i|) * 2 ** (-age_i / SPEECH_HALF_LIFE_MS)

   conf_i is the recogniser's mean word confidence, age_i = max(0, t - end_ms_i);
   neutral speech still counts a quarter, strongly felt speech fully. Then::

       v_speech = sum_i w_i s_i / sum_i w_i,   W_speech = min(1, sum_i w_i)

4. Fusion. The face's weight decays too, from its last update (a face that left the
   picture fades out)::

       W_face = c_face * 2 ** (-(t - t_face) / FACE_HALF_LIFE_MS)
       score  = (W_face * v_face + W_speech * v_speech) / (W_face + W_speech)

   (0 when both weights are 0). A track not updated for FACE_FORGET_MS (weight under
   one in a billion) is forgotten, and so is one updated more than FACE_AHEAD_MS after
   the time asked about: the source's clock went back (a video looped), and that face
   belongs to a pass that is over (it weighs 0 until it is forgotten); ``forget_faces``
   drops them all at once (the pipeline calls it at every new pass).

   Label: positive when score >= MOOD_POSITIVE_AT (0.1), negative when score <=
   MOOD_NEGATIVE_AT (-0.1), neutral in between. The scene uses the weight-averaged
   valence of all faces and the largest face weight, then the same speech and fusion
   steps.

Worked example
--------------
A face reads happy 0.7, neutral 0.2, surprise 0.1 (first sample, t = 10,000 ms):
v_face = 0.7 * 1.0 + 0.1 * 0.1 = 0.71; H = 0.802, so c_face = 1 - 0.802 / 1.946 = 0.588.
Someone said "I love it" (compound 0.637, word confidence 0.9) ending at 8,000 ms, so
2,000 ms old: w = 0.9 * (0.25 + 0.75 * 0.637) * 2 ** (-2000 / 5000) = 0.9 * 0.728 * 0.758
= 0.496, v_speech = 0.637. Mood at 10,000 ms: (0.588 * 0.71 + 0.496 * 0.637) / (0.588 +
0.496) = 0.677, positive. With no speech the score is the face's 0.71; had the words
ended 22,000 ms before t, w = 0.9 * 0.728 * 2 ** (-4.4) = 0.031 and the score is 0.706.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Final

from facial_emotion.types import EMOTIONS, EmotionScores, Sentiment, Utterance

VALENCE: Final[dict[str, float]] = {
    "angry": -0.8,
    "disgust": -0.7,
    "fear": -0.6,
    "happy": 1.0,
    "sad": -0.8,
    "surprise": 0.1,
    "neutral": 0.0,
}
"""Valence of each emotion class, in [-1, 1]."""
FACE_TAU_MS: Final[float] = 300.0
"""Time constant of the face's moving average."""
FACE_HALF_LIFE_MS: Final[float] = 1_000.0
"""A face not updated for this long counts half."""
FACE_FORGET_MS: Final[float] = 30_000.0
"""A track not updated for this long (30 half-lives) is dropped: memory stays flat in long sessions."""
FACE_AHEAD_MS: Final[float] = 2_000.0
"""A track updated this much later than the time asked about is from a pass that is over."""
SPEECH_HALF_LIFE_MS: Final[float] = 5_000.0
"""An utterance that ended this long ago counts half."""
SPEECH_NEUTRAL_WEIGHT: Final[float] = 0.25
"""The share of its weight that a fully neutral utterance keeps."""
SPEECH_HORIZON_HALF_LIVES: Final[float] = 6.0
"""Utterances older than this many half-lives (under 2% weight) are left out."""
MAX_UTTERANCES: Final[int] = 10_000
"""Utterances kept (a whole file's transcript may be added up front); the oldest go first."""
MOOD_POSITIVE_AT: Final[float] = 0.1
MOOD_NEGATIVE_AT: Final[float] = -0.1
_VALENCE_VECTOR: Final[tuple[float, ...]] = tuple(VALENCE[e] for e in EMOTIONS)


@dataclass(frozen=True, slots=True)
class Mood:
    """A fused mood: score in [-1, 1], its label, each channel's valence (None: no data) and weights."""

    score: float
    label: str  # "positive" | "neutral" | "negative"
    face_valence: float | None
    speech_valence: float | None
    weights: tuple[float, float]
    """(face, speech) weights that produced score."""


def mood_label(score: float) -> str:
    """positive, neutral or negative for a mood score."""
    from facial_emotion.speech.sentiment import label_for

    return label_for(score, positive_at=MOOD_POSITIVE_AT, negative_at=MOOD_NEGATIVE_AT)


def face_valence(scores: EmotionScores) -> float:
    """Valence of one face's emotion probabilities (step 1)."""
    return max(-1.0, min(1.0, sum(p * v for p, v in zip(scores.probabilities, _VALENCE_VECTOR, strict=True))))


def face_confidence(scores: EmotionScores) -> float:
    """One minus the normalised entropy of the probabilities: 1 certain, 0 uniform."""
    entropy = -sum(p * math.log(p) for p in scores.probabilities if p > 0.0)
    return max(0.0, 1.0 - entropy / math.log(len(scores.probabilities)))


def decay(age_ms: float, half_life_ms: float) -> float:
    """2 ** (-age / half-life), 1 for ages up to 0."""
    return 2.0 ** (-max(0.0, age_ms) / half_life_ms)


def utterance_confidence(utterance: Utterance) -> float:
    """The recogniser's mean word confidence (1 when it gave none)."""
    if not utterance.words:
        return 1.0
    return sum(w.confidence for w in utterance.words) / len(utterance.words)


def fuse(face: tuple[float, float] | None, speech: tuple[float, float] | None) -> Mood:
    """Mood from (valence, weight) of each channel, None where a channel has no data (step 4)."""
    fw = face[1] if face else 0.0
    sw = speech[1] if speech else 0.0
    total = fw + sw
    score = ((face[0] * fw if face else 0.0) + (speech[0] * sw if speech else 0.0)) / total if total > 0 else 0.0
    return Mood(score, mood_label(score), face[0] if face else None, speech[0] if speech else None, (fw, sw))


@dataclass(slots=True)
class _Track:
    valence: float
    confidence: float
    t_ms: float


class MoodFuser:
    """Keeps smoothed face valence per track and the utterances; answers mood per track and scene.

    Thread-safe: the inference thread updates faces while the speech thread adds utterances.
    For a file, all utterances of its transcript may be added first: ``mood(t)`` only counts
    those that started by t. Faces must be updated in time order per track, on the
    source's clock (the transcript's); tracks that are gone are forgotten by themselves
    (``FACE_FORGET_MS``), so a session of any length keeps only the faces of the last
    half a minute.
    """

    def __init__(
        self,
        *,
        face_tau_ms: float = FACE_TAU_MS,
        face_half_life_ms: float = FACE_HALF_LIFE_MS,
        speech_half_life_ms: float = SPEECH_HALF_LIFE_MS,
    ) -> None:
        self.face_tau_ms = face_tau_ms
        self.face_half_life_ms = face_half_life_ms
        self.speech_half_life_ms = speech_half_life_ms
        self._tracks: dict[int, _Track] = {}
        self._utterances: list[tuple[Utterance, Sentiment, float]] = []
        self._lock = threading.Lock()
        self._pruned_at_ms: float | None = None

    def update_face(self, track_id: int, scores: EmotionScores, t_ms: float) -> None:
        """Add one classification of a face track at time t_ms (steps 1 and 2)."""
        valence, confidence = face_valence(scores), face_confidence(scores)
        with self._lock:
            self._prune(t_ms)
            track = self._tracks.get(track_id)
            if track is None or t_ms < track.t_ms - self.face_tau_ms:
                # new track, or the clock went back (a looped or re-opened video): start afresh
                self._tracks[track_id] = _Track(valence, confidence, t_ms)
                return
            alpha = 1.0 - math.exp(-max(0.0, t_ms - track.t_ms) / self.face_tau_ms)
            track.valence += alpha * (valence - track.valence)
            track.confidence += alpha * (confidence - track.confidence)
            track.t_ms = max(track.t_ms, t_ms)

    def _prune(self, t_ms: float) -> None:
        """Drop the tracks gone for FACE_FORGET_MS or ahead of t_ms (at most once a second of t)."""
        last = self._pruned_at_ms
        if last is not None and 0.0 <= t_ms - last < 1_000.0:
            return
        self._pruned_at_ms = t_ms
        for tid, track in list(self._tracks.items()):
            if track.t_ms < t_ms - FACE_FORGET_MS or track.t_ms > t_ms + FACE_AHEAD_MS:
                del self._tracks[tid]

    def clear(self) -> None:
        """Forget every face and utterance (a new source starts a new clock)."""
        with self._lock:
            self._tracks.clear()
            self._utterances.clear()
            self._pruned_at_ms = None

    def forget_faces(self) -> None:
        """Forget every face but keep the utterances (a new pass: a loop or another source)."""
        with self._lock:
            self._tracks.clear()
            self._pruned_at_ms = None

    def forget_face(self, track_id: int) -> None:
        """Drop a track that ended."""
        with self._lock:
            self._tracks.pop(track_id, None)

    def add_utterance(self, utterance: Utterance) -> None:
        """Add a final utterance (partials are ignored; one without sentiment is scored here)."""
        if not utterance.final:
            return
        sentiment = utterance.sentiment
        if sentiment is None:
            from facial_emotion.speech.sentiment import score_text

            sentiment = score_text(utterance.text)
        with self._lock:
            self._utterances.append((utterance, sentiment, utterance_confidence(utterance)))
            if len(self._utterances) > MAX_UTTERANCES:
                del self._utterances[: len(self._utterances) - MAX_UTTERANCES]

    def _speech(self, t_ms: float) -> tuple[float, float] | None:
        weighted, total = 0.0, 0.0
        horizon = t_ms - SPEECH_HORIZON_HALF_LIVES * self.speech_half_life_ms
        for utterance, sentiment, conf in self._utterances:
            if utterance.start_ms > t_ms or utterance.end_ms < horizon:
                continue
            share = SPEECH_NEUTRAL_WEIGHT + (1.0 - SPEECH_NEUTRAL_WEIGHT) * abs(sentiment.compound)
            w = conf * share * decay(t_ms - utterance.end_ms, self.speech_half_life_ms)
            weighted += w * sentiment.compound
            total += w
        return (weighted / total, min(1.0, total)) if total > 0 else None

    def _face(self, track: _Track, t_ms: float) -> tuple[float, float]:
        if track.t_ms > t_ms + FACE_AHEAD_MS:  # from a pass that is over
            return track.valence, 0.0
        return track.valence, track.confidence * decay(t_ms - track.t_ms, self.face_half_life_ms)

    def mood(self, track_id: int, t_ms: float) -> Mood:
        """The fused mood of one face track at t_ms (speech only when the track is unknown)."""
        with self._lock:
            track = self._tracks.get(track_id)
            return fuse(self._face(track, t_ms) if track else None, self._speech(t_ms))

    def scene_mood(self, t_ms: float) -> Mood:
        """The fused mood of everyone in view and the speech at t_ms."""
        with self._lock:
            faces = [self._face(track, t_ms) for track in self._tracks.values()]
            speech = self._speech(t_ms)
        total = sum(w for _, w in faces)
        face = (sum(v * w for v, w in faces) / total, max(w for _, w in faces)) if total > 0 else None
        return fuse(face, speech)

    def track_ids(self) -> tuple[int, ...]:
        """The tracks known."""
        with self._lock:
            return tuple(self._tracks)
