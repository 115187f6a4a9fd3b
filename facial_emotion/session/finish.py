"""Finishing a session folder once its files are closed: after a normal stop, and after recovery.

Fixes the WAV header, remuxes the fragmented videos into normal mp4 (the sound muxed
into ``video.mp4``, the original kept until the new file is complete), builds the
report, writes ``session.json`` with ``finished: true`` and removes the ``.recording``
mark. Every step is tried even when an earlier one fails: a full disk must not cost
the files that are already there.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from facial_emotion.session.audio import fix_wav_header
from facial_emotion.session.files import AUDIO_FILE, CLEAN_VIDEO_FILE, REPORT_FILE, VIDEO_FILE
from facial_emotion.session.info import write_session_info
from facial_emotion.session.mark import remove_mark
from facial_emotion.session.schema import STOP_REQUESTED, SessionInfo
from facial_emotion.session.video import finish_video

log = logging.getLogger(__name__)


def finish_session(folder: Path, info: SessionInfo) -> SessionInfo:
    """Close out a session folder whose writer is closed; the info as written to session.json.

    A stop reason the info does not have yet is ``stopped`` (a recovery sets ``crashed``
    before it calls this).
    """
    errors = dict(info.finish_errors)
    audio_s = info.audio_s
    audio = folder / AUDIO_FILE
    if audio.is_file():
        try:
            audio_s = round(fix_wav_header(audio), 3)
        except OSError as exc:
            errors[AUDIO_FILE] = str(exc)
    offset_s = 0.0
    if info.first_audio_ms is not None and info.first_frame_ms is not None:
        offset_s = (info.first_audio_ms - info.first_frame_ms) / 1000.0
    videos = []
    for name, with_audio in ((VIDEO_FILE, True), (CLEAN_VIDEO_FILE, False)):
        if (folder / name).exists():
            try:
                videos.append(finish_video(folder / name, audio=audio if with_audio else None, audio_offset_s=offset_s))
            except OSError as exc:
                errors[name] = str(exc)
    info = dataclasses.replace(
        info, audio_s=audio_s, videos=tuple(videos), finished=True, stop_reason=info.stop_reason or STOP_REQUESTED
    )
    try:
        from facial_emotion.session.report import build_report

        info = dataclasses.replace(info, report=build_report(folder, info=info).name)
    except OSError as exc:  # a full disk or a read-only folder: say so in a line, keep the session
        log.error("cannot write the report of %s: %s", folder, exc.strerror or exc)
        errors[REPORT_FILE] = str(exc)
    except Exception as exc:  # a report that cannot be drawn must not lose the session
        log.exception("cannot build the report of %s", folder)
        errors[REPORT_FILE] = str(exc)
    info = dataclasses.replace(info, finish_errors=errors)
    write_session_info(folder, info)
    remove_mark(folder)
    return info
