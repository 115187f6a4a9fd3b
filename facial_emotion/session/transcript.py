"""transcript.jsonl: one final utterance per line; its one writer and its reader."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facial_emotion.session.appendfile import AppendOnlyFile
from facial_emotion.types import Sentiment, Utterance, Word

log = logging.getLogger(__name__)


def utterance_json(utterance: Utterance) -> dict[str, Any]:
    """One utterance as a transcript line: the speech package's form (``utterance_to_json``)."""
    from facial_emotion.speech.transcribe import utterance_to_json  # vaderSentiment only if unscored

    return utterance_to_json(utterance)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def utterance_from_json(item: Any) -> Utterance | None:
    """An utterance from one line's JSON; None when it is not one (a damaged line)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
        return None
    start_ms, end_ms = _number(item.get("start_ms")), _number(item.get("end_ms"))
    if start_ms is None or end_ms is None:
        return None
    words = []
    for w in item.get("words") or ():
        if isinstance(w, Mapping) and isinstance(w.get("text"), str):
            w_start, w_end = _number(w.get("start_ms")), _number(w.get("end_ms"))
            if w_start is not None and w_end is not None:
                conf = _number(w.get("conf"))
                words.append(Word(w["text"], w_start, w_end, 1.0 if conf is None else conf))
    compound = _number(item.get("sentiment"))
    label = item.get("label")
    sentiment = Sentiment(compound, label if isinstance(label, str) else "") if compound is not None else None
    final = item.get("final", True) if isinstance(item.get("final", True), bool) else True
    return Utterance(item["text"], final, start_ms, end_ms, tuple(words), sentiment)


def read_transcript(path: Path) -> tuple[Utterance, ...]:
    """The utterances of a transcript.jsonl, damaged lines skipped; empty when there is no file.

    Raises OSError when the file is there but cannot be read.
    """
    if not path.exists():
        return ()
    out = []
    skipped = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            utterance = utterance_from_json(json.loads(line))
        except ValueError:
            utterance = None
        if utterance is None:
            skipped += 1
        else:
            out.append(utterance)
    if skipped:
        log.info("%s: skipped %d damaged line(s)", path, skipped)
    return tuple(out)


class TranscriptWriter:
    """Appends final utterances to transcript.jsonl, a whole line at a time, unbuffered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = AppendOnlyFile(path)
        self.utterances = 0

    def write(self, utterance: Utterance) -> None:
        """Append one utterance as one line."""
        line = json.dumps(utterance_json(utterance), ensure_ascii=False) + "\n"
        self._file.append(line.encode("utf-8"))
        self.utterances += 1

    def flush(self) -> None:
        """Make the lines written so far durable (fsync)."""
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
