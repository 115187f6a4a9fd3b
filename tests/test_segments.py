"""Markers, study metadata and per-segment summaries: dropped live, edited in review, summarized and exported."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facial_emotion.cli import main
from facial_emotion.live import LiveSession
from facial_emotion.live.events import MarkerAdded
from facial_emotion.recording import SessionRecorder
from facial_emotion.session.load import SessionError, load_session
from facial_emotion.session.markers import ORIGIN_LIVE, ORIGIN_REVIEW, Marker, read_markers
from facial_emotion.session.report import build_report
from facial_emotion.session.review import (
    SessionBusyError,
    add_marker,
    delete_marker,
    rename_marker,
    set_study_info,
)
from facial_emotion.session.schema import SessionInfo
from facial_emotion.session.segments import SEGMENT_COLUMNS, segments
from facial_emotion.session.tables import FRAME_COLUMNS, frame_rows
from facial_emotion.settings import Settings, load_settings, save_settings
from facial_emotion.sources import VideoFileSource
from facial_emotion.types import EMOTIONS, Box, EmotionScores, Face, Frame, FrameResult, Sentiment, Utterance, Word

VIDEO_FPS = 23.976
MARK_AT = (100, 250, 400)
"""Frames of WolfgangLanger_Pexels.mp4 (472) at which markers are dropped."""
PRESETS = ("faces", "words")


@dataclass(frozen=True)
class Recorded:
    folder: Path
    markers: tuple[Marker, ...]
    """The markers dropped while recording, as add_marker returned them."""
    before: Marker
    """Dropped before the recording started."""
    events: tuple[MarkerAdded, ...]
    live_markers: tuple[Marker, ...]


@pytest.fixture(scope="module")
def recorded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The Pexels video recorded through a live session, markers dropped at MARK_AT, two utterances said."""
    root = tmp_path_factory.mktemp("sessions")
    live = LiveSession(Settings(marker_labels=PRESETS), realtime=False, record_dir=root)
    seen: list = []
    live.subscribe(seen.append)
    live.open(VideoFileSource(shared_data / "faces-pyfeat" / "WolfgangLanger_Pexels.mp4"))
    before = live.add_marker("before recording")
    folder = live.start_recording(lossless=True, fps=VIDEO_FPS, participant=" P07 ", condition="loud room")
    assert folder is not None
    dropped = []
    while (result := live.step()) is not None:
        index, t_ms = result.frame.index, result.frame.timestamp_ms
        if index == MARK_AT[0]:
            dropped.append(live.add_marker())
        elif index == MARK_AT[1]:
            dropped.append(live.add_preset_marker(2))
        elif index == MARK_AT[2]:
            dropped.append(live.add_marker("  a new\nscene  "))
        elif index == 120:  # three timed words in the second segment
            words = tuple(Word(w, t_ms + 300 * k, t_ms + 300 * k + 200) for k, w in enumerate(("so", "very", "nice")))
            said = Utterance("so very nice", True, t_ms, t_ms + 900, words, Sentiment(0.6, "positive"))
            live.recording.add_utterance(said)
        elif index == 420:  # no word times: counted where the utterance's middle is
            live.recording.add_utterance(Utterance("how sad", True, t_ms, t_ms + 500, (), Sentiment(-0.4, "negative")))
    live.stop_recording()
    live.poll()
    live.close(recording_timeout_s=120)
    events = tuple(e for e in seen if isinstance(e, MarkerAdded))
    return Recorded(folder, tuple(dropped), before, events, live.markers)


def _rows(folder: Path) -> dict[str, np.ndarray]:
    """frames.csv read here with the csv module, independently of the session package."""
    with open(folder / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = {}
    for name in ("frame", "timestamp_ms", "track_id", "blinks", "mood", *(f"p_{e}" for e in EMOTIONS)):
        out[name] = np.array([float(r[name]) if r[name] != "" else np.nan for r in rows])
    out["emotion"] = np.array([r["emotion"] for r in rows])
    return out


def _markers_csv(folder: Path) -> list[dict[str, str]]:
    with open(folder / "markers.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# -- markers while recording ------------------------------------------------------------------


def test_markers_dropped_live_are_in_markers_csv_at_their_frames_session_times(recorded: Recorded) -> None:
    rows = _rows(recorded.folder)
    times = [float(rows["timestamp_ms"][rows["frame"] == k][0]) for k in MARK_AT]
    on_disk = _markers_csv(recorded.folder)
    assert [float(r["time_ms"]) for r in on_disk] == times
    assert [r["label"] for r in on_disk] == ["", PRESETS[1], "a new scene"]
    assert {r["origin"] for r in on_disk} == {ORIGIN_LIVE}
    assert load_session(recorded.folder).markers == recorded.markers
    assert [m.time_ms for m in recorded.markers] == times
    # one dropped before recording: published and kept, but in no folder
    assert recorded.before == Marker(0.0, "before recording", ORIGIN_LIVE)
    assert recorded.live_markers == (recorded.before, *recorded.markers)
    assert [(e.marker, e.folder) for e in recorded.events] == [
        (recorded.before, None),
        *((m, recorded.folder) for m in recorded.markers),
    ]


def test_preset_markers_are_checked() -> None:
    live = LiveSession(Settings(emotion=None, marker_labels=("one",)), realtime=False)
    assert live.add_preset_marker(1).label == "one"
    assert live.add_preset_marker(3).label == "3", "a key without a preset drops its number"
    for bad in (0, 10, True):
        with pytest.raises(ValueError):
            live.add_preset_marker(bad)
    with pytest.raises(ValueError, match="80"):
        live.add_marker("x" * 81)
    live.close()


def test_marker_labels_setting_is_validated_and_kept_in_the_file(tmp_path: Path) -> None:
    for bad in (("a",) * 10, ("",), ("x" * 81,), ("two\nlines",), ["a"]):
        with pytest.raises(ValueError, match="marker_labels"):
            Settings(marker_labels=bad)  # type: ignore[arg-type]
    path = tmp_path / "settings.json"
    save_settings(Settings(marker_labels=("faces", "words")), path)
    assert json.loads(path.read_text())["marker_labels"] == ["faces", "words"]
    assert load_settings(path) == (Settings(marker_labels=("faces", "words")), None)
    path.write_text(json.dumps({"marker_labels": ["ok", ""], "loop_video": True}))
    settings, message = load_settings(path)
    assert settings.marker_labels == () and settings.loop_video and message and "marker_labels" in message


# -- segments of the recording --------------------------------------------------------------


def test_segments_add_up_and_their_means_are_the_rows_means(recorded: Recorded) -> None:
    session = load_session(recorded.folder)
    table = segments(session)
    rows = _rows(recorded.folder)
    assert [s.label for s in table.segments] == ["start", "", PRESETS[1], "a new scene"]
    assert sum(f.frames for s in table.segments for f in s.faces) == len(rows["frame"]) == len(session.frames)
    cuts = [-np.inf, *(m.time_ms for m in recorded.markers), np.inf]
    for seg, lo, hi in zip(table.segments, cuts[:-1], cuts[1:], strict=True):
        in_span = (rows["timestamp_ms"] >= lo) & (rows["timestamp_ms"] < hi)
        assert [f.track_id for f in seg.faces] == sorted(set(rows["track_id"][in_span].astype(int).tolist()))
        for face in seg.faces:
            mine = in_span & (rows["track_id"] == face.track_id)
            assert face.frames == mine.sum() > 0
            expected = [float(np.mean(rows[f"p_{e}"][mine])) for e in EMOTIONS]
            assert face.emotion_means == pytest.approx(expected, abs=1e-9)
            assert face.top_shares == pytest.approx([float(np.mean(rows["emotion"][mine] == e)) for e in EMOTIONS])
            assert face.mood == pytest.approx(float(np.mean(rows["mood"][mine])))
            # blinks: the counter at the face's last row here minus at its last row before
            earlier = (rows["timestamp_ms"] < lo) & (rows["track_id"] == face.track_id)
            base = rows["blinks"][earlier][-1] if earlier.any() else rows["blinks"][mine][0]
            assert face.blinks == rows["blinks"][mine][-1] - base
            span_s = (rows["timestamp_ms"][mine][-1] - rows["timestamp_ms"][mine][0]) / 1000 + 1 / VIDEO_FPS
            assert face.seconds == pytest.approx(span_s)
            assert face.blinks_per_min == pytest.approx(face.blinks / span_s * 60)
    assert sum(f.blinks for s in table.segments for f in s.faces) == rows["blinks"].max() > 0, "the video has blinks"
    assert [(s.words, s.sentiment) for s in table.segments] == [(0, None), (3, 0.6), (0, None), (2, -0.4)]


def test_rows_carry_the_session_participant_and_condition(recorded: Recorded) -> None:
    info = load_session(recorded.folder).info
    assert (info.participant, info.condition) == ("P07", "loud room")
    rows = segments(load_session(recorded.folder)).to_rows()
    assert len(rows) == 4 and all(tuple(r) == SEGMENT_COLUMNS for r in rows)
    assert {(r["session"], r["participant"], r["condition"]) for r in rows} == {
        (recorded.folder.name, "P07", "loud room")
    }


def test_the_report_has_a_section_per_segment_and_the_study(recorded: Recorded) -> None:
    html = (recorded.folder / "report.html").read_text()
    assert html.count('<section class="segment">') == 4
    assert "Segment 3: words" in html and "Segment 4: a new scene" in html
    assert "<th>Participant</th><td>P07</td>" in html and "<th>Condition</th><td>loud room</td>" in html
    for title in ("Emotion timeline per face", "Blink rate over time", "Transcript"):
        assert title in html, "the report keeps what it had"


# -- review -----------------------------------------------------------------------------------


def test_markers_are_renamed_deleted_and_added_in_review(recorded: Recorded, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(recorded.folder, folder)
    first, second, third = load_session(folder).markers
    renamed = rename_marker(folder, second, "faces again")
    assert renamed == dataclasses.replace(second, label="faces again")
    delete_marker(folder, first)
    added = add_marker(folder, 1234.56, "late idea")
    assert added == Marker(1234.6, "late idea", ORIGIN_REVIEW)
    assert read_markers(folder / "markers.csv") == (added, renamed, third)
    assert [r["origin"] for r in _markers_csv(folder)] == [ORIGIN_REVIEW, ORIGIN_LIVE, ORIGIN_LIVE]
    assert [s.label for s in segments(load_session(folder)).segments] == [
        "start",
        "late idea",
        "faces again",
        third.label,
    ]
    with pytest.raises(SessionError, match="no marker"):
        delete_marker(folder, first)  # gone already
    with pytest.raises(ValueError):
        rename_marker(folder, renamed, "x" * 200)
    assert read_markers(folder / "markers.csv") == (added, renamed, third), "a refused change changes nothing"
    assert not list(folder.glob(".markers.csv*")), "no temporary file is left"


def test_a_folder_still_being_recorded_is_refused(tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path)
    folder = recorder.start()
    try:
        with pytest.raises(SessionBusyError, match="being recorded"):
            add_marker(folder, 0.0, "too early")
        with pytest.raises(SessionBusyError):
            set_study_info(folder, participant="P1")
        assert main(["session-info", str(folder), "--participant", "P1"]) == 2
    finally:
        recorder.stop()
    add_marker(folder, 0.0, "now")
    assert set_study_info(folder, participant="P1").participant == "P1"


def test_study_metadata_is_edited_and_old_files_read_without_it(recorded: Recorded, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(recorded.folder, folder)
    assert main(["session-info", str(folder), "--condition", "quiet room"]) == 0
    assert capsys.readouterr().out.splitlines() == ["participant: P07", "condition: quiet room"]
    info = load_session(folder).info
    assert (info.participant, info.condition, info.frames_written) == ("P07", "quiet room", 472)
    assert "<td>quiet room</td>" in (folder / "report.html").read_text(), "the report follows"
    assert set_study_info(folder, participant="").participant is None, "'' clears it"
    old = json.loads((folder / "session.json").read_text())
    del old["participant"], old["condition"]
    assert SessionInfo.from_json(old).participant is None
    assert SessionInfo.from_json({**old, "participant": 7}).participant is None, "a damaged value is no value"


# -- the command ------------------------------------------------------------------------------


def test_summarize_prints_the_table_and_writes_csv(recorded: Recorded, tmp_path: Path, capsys) -> None:
    out = tmp_path / "summary.csv"
    assert main(["summarize", str(recorded.folder), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert "P07" in lines[0] and "loud room" in lines[0] and "by markers" in lines[0]
    assert lines[1].split()[:5] == ["seg", "label", "face", "frames", "seconds"]
    assert len(lines) == 2 + 4 and "a new scene" in lines[-1]
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == segments(load_session(recorded.folder)).to_rows()
    assert {(r["participant"], r["condition"]) for r in rows} == {("P07", "loud room")}
    assert main(["summarize", str(recorded.folder), "--by", "passes", "--csv", "-"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["label"] for r in rows] == ["pass 0"] and int(rows[0]["frames"]) == 472


@pytest.mark.parametrize("case", ["no folder", "a file", "no frames.csv", "damaged session.json", "unwritable csv"])
def test_summarize_bad_inputs_give_one_line_and_a_code(recorded: Recorded, tmp_path: Path, capsys, case: str) -> None:
    folder, extra, code = tmp_path / "missing", [], 2
    if case == "a file":
        folder.write_text("x")
    elif case == "no frames.csv":
        folder.mkdir()
        (folder / "session.json").write_text("{}")
    elif case == "damaged session.json":
        shutil.copytree(recorded.folder, folder)
        (folder / "session.json").write_text("{cut")
    elif case == "unwritable csv":
        (tmp_path / "file").write_text("x")
        folder, extra, code = recorded.folder, ["--csv", str(tmp_path / "file" / "out.csv")], 3
    assert main(["summarize", str(folder), *extra]) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err


def test_record_refuses_a_participant_id_too_long(shared_data: Path, tmp_path: Path, capsys) -> None:
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    assert main(["record", str(video), "--out", str(tmp_path), "--participant", "p" * 300]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--participant" in err and not list(tmp_path.iterdir())


def test_record_command_keeps_participant_and_condition(shared_data: Path, tmp_path: Path, capsys) -> None:
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    args = ["record", str(video), "--out", str(tmp_path), "--participant", "P2", "--condition", "B", "--no-emotion"]
    assert main(args) == 0
    (folder,) = tmp_path.iterdir()
    info = load_session(folder).info
    assert (info.participant, info.condition, info.frames_written) == ("P2", "B", 72)


# -- segments of a small table made by hand ----------------------------------------------------

SAD = (0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.1)
HAPPY = (0.02, 0.02, 0.02, 0.8, 0.04, 0.05, 0.05)
NEUTRAL = (0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.9)


def _hand_made(folder: Path) -> Path:
    """200 frames at 10 fps: face 1 sad then happy (blinks at frames 50, 100, 150), face 2 in frames 50-149."""
    image = np.zeros((4, 4, 3), np.uint8)
    lines = [",".join(FRAME_COLUMNS)]
    for i in range(200):
        faces = [Face(Box(0, 0, 9, 9), 1, emotion=EmotionScores(SAD if i < 100 else HAPPY), blinks=i // 50)]
        faces[0] = dataclasses.replace(faces[0], mood=-0.5 if i < 100 else 0.5)
        if 50 <= i < 150:
            faces.append(Face(Box(20, 0, 29, 9), 2, emotion=EmotionScores(NEUTRAL)))
        frame = Frame(image, i, i * 100.0, pass_index=0 if i < 150 else 1)
        for row in frame_rows(FrameResult(frame, tuple(faces))):
            lines.append(",".join(str(row[c]) for c in FRAME_COLUMNS))
    (folder / "frames.csv").write_text("\n".join(lines) + "\n")
    words = (("hello", 1000), ("there", 1500), ("you", 5200))
    timed = [{"text": w, "start_ms": a, "end_ms": a + 200} for w, a in words]
    said = [
        {"text": "hello there you", "start_ms": 1000, "end_ms": 5400, "sentiment": 0.5, "label": "positive",
         "words": timed},
        {"text": "so sad", "start_ms": 13000, "end_ms": 14000, "sentiment": -0.6, "label": "negative"},
        {"text": "", "start_ms": 15000, "end_ms": 15100},
    ]  # fmt: skip
    (folder / "transcript.jsonl").write_text("".join(json.dumps(u) + "\n" for u in said))
    (folder / "markers.csv").write_text(
        "time_ms,label,origin\r\n5000.0,A,live\r\n12000.0,B,review\r\n30000.0,C,review\r\n"
    )
    info = {"name": "hand", "fps": 10.0, "first_frame_ms": 0.0, "participant": "P9", "condition": "calm"}
    (folder / "session.json").write_text(json.dumps(info))
    return folder


def test_segments_of_a_small_hand_made_table(tmp_path: Path) -> None:
    session = load_session(_hand_made(tmp_path))
    table = segments(session)
    got = [(s.label, s.origin, s.start_ms, s.end_ms, s.words, s.sentiment) for s in table.segments]
    assert got == [
        ("start", "start", 0.0, 5000.0, 2, 0.5),
        ("A", "live", 5000.0, 12000.0, 1, 0.5),
        ("B", "review", 12000.0, 30000.0, 2, -0.6),
        ("C", "review", 30000.0, 30000.0, 0, None),
    ]
    start, a, b, c = table.segments
    (one,) = start.faces
    assert (one.track_id, one.frames, one.seconds, one.blinks, one.mood) == (1, 50, 5.0, 0, -0.5)
    assert one.emotion_means == pytest.approx(SAD) and one.top_shares == pytest.approx([0, 0, 0, 0, 1, 0, 0])
    one, two = a.faces
    assert (one.frames, one.seconds, one.blinks) == (70, 7.0, 2)
    assert one.blinks_per_min == pytest.approx(2 / 7 * 60)
    assert one.emotion_means[3] == pytest.approx((50 * 0.05 + 20 * 0.8) / 70)
    assert one.top_shares[4] == pytest.approx(50 / 70) and one.top_shares[3] == pytest.approx(20 / 70)
    assert one.mood == pytest.approx((50 * -0.5 + 20 * 0.5) / 70)
    assert (two.track_id, two.frames, two.seconds, two.mood, two.top_shares[6]) == (2, 70, 7.0, None, 1.0)
    one, two = b.faces
    assert (one.frames, one.seconds, one.blinks, one.blinks_per_min) == (80, 8.0, 1, 7.5)
    assert (two.frames, two.seconds) == (30, 3.0)
    (none,) = c.faces
    assert (none.track_id, none.frames, none.emotion_means, none.blinks_per_min) == (None, 0, None, None)

    rows = table.to_rows()
    assert len(rows) == 6 and all(tuple(r) == SEGMENT_COLUMNS for r in rows)
    assert {(r["session"], r["participant"], r["condition"]) for r in rows} == {("hand", "P9", "calm")}
    assert rows[-1]["track_id"] == "" and rows[-1]["p_happy"] == "" and rows[0]["p_sad"] == "0.6000"
    assert rows[0]["blinks_per_min"] == "0.00" and rows[1]["blinks_per_min"] == "17.14" and rows[2]["mood"] == ""

    by_pass = segments(session, "passes")
    assert [(s.label, s.start_ms, s.end_ms) for s in by_pass.segments] == [
        ("pass 0", 0.0, 15000.0),
        ("pass 1", 15000.0, 20000.0),
    ]
    assert [f.frames for f in by_pass.segments[0].faces] == [150, 100]
    (whole,) = segments(session, None).segments
    assert (whole.label, whole.words, whole.faces[0].frames, whole.faces[0].blinks_per_min) == ("session", 5, 200, 9.0)

    picked = segments(session, start_ms=4000.0, end_ms=6000.0)
    assert [(s.label, s.start_ms, s.end_ms, [f.frames for f in s.faces]) for s in picked.segments] == [
        ("start", 4000.0, 5000.0, [10]),
        ("A", 5000.0, 6000.0, [10, 10]),
    ]
    (sel,) = segments(session, None, start_ms=4000.0, end_ms=6000.0).segments
    assert (sel.label, sel.origin, sel.words, [f.frames for f in sel.faces]) == ("selection", "selection", 1, [20, 10])
    with pytest.raises(ValueError):
        segments(session, "faces")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        segments(session, start_ms=5.0, end_ms=1.0)


def test_the_report_of_the_hand_made_table_has_a_section_per_marker_segment(tmp_path: Path) -> None:
    html = build_report(_hand_made(tmp_path)).read_text()
    assert html.count('<section class="segment">') == 4
    assert "Segment 2: A (5.0-12.0 s, live)" in html and "no face" in html
