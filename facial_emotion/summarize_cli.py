"""Subcommands ``summarize`` (a session's table by segment and face) and ``session-info`` (study metadata).

Exit codes as ``record``'s: 0 done; 2 the input cannot be used (not a folder, no
frames.csv, a damaged session, a folder still being recorded, a value too long); 3 the
output cannot be written (the CSV, session.json, report.html). Every error is one line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from facial_emotion.session.segments import SegmentTable

EXIT_INPUT: Final = 2
EXIT_OUTPUT: Final = 3
LABEL_WIDTH: Final = 24
BY_CHOICES: Final = ("markers", "passes", "none")
"""As ``session.segments.BY_CHOICES``, without importing numpy to build the parser."""


def register(subparsers: Any) -> None:
    """Add ``summarize`` and ``session-info`` to the ``facial-emotion`` command."""
    s = subparsers.add_parser(
        "summarize", help="print a session's summary per segment (between markers) and face; --csv writes it"
    )
    s.add_argument("folder", metavar="SESSION_DIR", help="a session folder (or an analyze --out folder)")
    s.add_argument(
        "--by", choices=BY_CHOICES, default="markers", help="segments: between markers (default), per pass, or none"
    )
    s.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT ('-': CSV on stdout instead)")
    s.set_defaults(func=run_summarize)

    i = subparsers.add_parser("session-info", help="show or change a session's participant id and condition")
    i.add_argument("folder", metavar="SESSION_DIR", help="a finished session folder")
    i.add_argument("--participant", metavar="P", help="the participant id ('' clears it)")
    i.add_argument("--condition", metavar="C", help="the study condition ('' clears it)")
    i.set_defaults(func=run_session_info)


def _reason(exc: OSError) -> str:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _session_folder(path: str) -> Path | None:
    """The folder when it can be summarized; else None after saying why in a line."""
    from facial_emotion.session.files import FRAMES_FILE

    folder = Path(path).expanduser()
    try:
        if not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return None
        if not (folder / FRAMES_FILE).is_file():
            print(f"error: {folder} holds no {FRAMES_FILE} (not a session folder)", file=sys.stderr)
            return None
    except OSError as exc:
        print(f"error: cannot read {_reason(exc)}", file=sys.stderr)
        return None
    return folder


def format_table(table: SegmentTable) -> str:
    """The table as aligned text: a line about the session, then a line per face per segment."""
    from facial_emotion.types import EMOTIONS

    study = f"participant {table.participant or '-'}, condition {table.condition or '-'}"
    head = ["seg", "label", "face", "frames", "seconds", *EMOTIONS]
    head += ["on top", "blinks/min", "mood", "words", "sentiment"]
    lines = [head]
    for seg in table.segments:
        label = seg.label if len(seg.label) <= LABEL_WIDTH else seg.label[: LABEL_WIDTH - 1] + "…"
        for face in seg.faces:
            means = face.emotion_means or (None,) * len(EMOTIONS)
            top = "-"
            if face.top_shares:
                share, name = max(zip(face.top_shares, EMOTIONS, strict=True))
                top = f"{name} {share:.0%}"
            lines.append(
                [
                    str(seg.number),
                    label or "-",
                    "-" if face.track_id is None else str(face.track_id),
                    str(face.frames),
                    f"{face.seconds:.1f}",
                    *(_num(m) for m in means),
                    top,
                    _num(face.blinks_per_min, 1),
                    _num(face.mood),
                    str(seg.words),
                    _num(seg.sentiment),
                ]
            )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    return "\n".join([f"session {table.session} ({study}), by {table.by or 'none'}", *text])


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_summarize(args: argparse.Namespace) -> int:
    """Print a session's summary table; write it as CSV with --csv."""
    from facial_emotion.atomic import write_text_atomic
    from facial_emotion.session.load import SessionError, load_session
    from facial_emotion.session.segments import by_choice, segments

    folder = _session_folder(args.folder)
    if folder is None:
        return EXIT_INPUT
    try:
        table = segments(load_session(folder), by_choice(args.by))
    except SessionError as exc:
        print(f"error: cannot read the session: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: cannot read {_reason(exc)}", file=sys.stderr)
        return EXIT_INPUT
    if args.csv == "-":
        sys.stdout.write(table.to_csv())
        return 0
    print(format_table(table))
    if args.csv:
        out = Path(args.csv).expanduser()
        try:
            write_text_atomic(out, table.to_csv(), mode=0o644)
        except OSError as exc:
            print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_OUTPUT
        print(f"wrote {out}", file=sys.stderr)
    return 0


def run_session_info(args: argparse.Namespace) -> int:
    """Show the participant and condition; with --participant/--condition, change them (and the report)."""
    from facial_emotion.session.files import REPORT_FILE
    from facial_emotion.session.load import SessionError
    from facial_emotion.session.report import build_report
    from facial_emotion.session.review import read_session_info, set_study_info

    folder = Path(args.folder).expanduser()
    changing = args.participant is not None or args.condition is not None
    try:
        if changing:
            info = set_study_info(folder, participant=args.participant, condition=args.condition)
        elif not folder.is_dir():
            print(f"error: {folder} is not a folder", file=sys.stderr)
            return EXIT_INPUT
        else:
            info = read_session_info(folder)
    except (SessionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: cannot change {folder}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_OUTPUT
    print(f"participant: {info.participant or '-'}")
    print(f"condition: {info.condition or '-'}")
    if changing and (folder / REPORT_FILE).is_file():
        try:
            build_report(folder, info=info)
        except (SessionError, OSError) as exc:
            print(f"error: session.json is changed but not its report: {exc}", file=sys.stderr)
            return EXIT_OUTPUT
    return 0
