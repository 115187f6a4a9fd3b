"""What a user sees from bad command-line input: bad --model files, out-of-range numbers, log noise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facial_emotion.cli import build_parser, main
from facial_emotion.cli_settings import INT_OPTION_BOUNDS
from facial_emotion.settings import DETECT_EVERY_RANGE, DETECT_WIDTH_RANGE, UPSAMPLE_RANGE

from .test_align_classify import make_bad_models

ROOT = Path(__file__).resolve().parents[1]
TF_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN|cpu_feature_guard|TF_ENABLE_ONEDNN_OPTS|XNNPACK|"
    r"This TensorFlow binary|^[IW]\d{4} |tf\.lite|LiteRT",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """Empty, random, truncated, wrong input, 5 outputs, no softmax, a folder: each with its reason."""
    return make_bad_models(tmp_path_factory.mktemp("bad_models"))


def _face(shared_data: Path) -> Path:
    return shared_data / "faces-pyfeat" / "single_face.jpg"


def test_analyze_with_a_bad_model_is_an_error_naming_the_file(
    shared_data: Path, bad_models: list[tuple[Path, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2, one line with the user's path and the real reason, and nothing analysed with emotions off."""
    for path, reason in bad_models:
        out = tmp_path / path.stem
        code = main(["analyze", str(_face(shared_data)), "--no-speech", "--out", str(out), "--model", str(path)])
        err = capsys.readouterr().err
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: cannot load emotion model {path} (given with --model)")
        assert re.search(reason, lines[0]), lines[0]
        assert "not found" not in err.lower() and "fer2013" not in err, err
        assert not out.exists(), "nothing is written for a model that cannot load"


def test_analyze_with_a_missing_model_says_not_found(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a file that is really absent is "not found"."""
    missing = tmp_path / "nope.keras"
    assert main(["analyze", str(_face(shared_data)), "--no-speech", "--model", str(missing)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: cannot load emotion model {missing} (given with --model): file not found"
    )


def test_a_bad_model_in_the_settings_file_is_named_too(
    shared_data: Path, bad_models: list[tuple[Path, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model chosen in --settings is as explicit as --model: the error names the settings file."""
    from facial_emotion.settings import Settings, save_settings

    path, _ = bad_models[0]
    settings_file = save_settings(Settings(emotion_model_path=str(path)), tmp_path / "settings.json")
    argv = ["--settings", str(settings_file), "analyze", str(_face(shared_data)), "--no-speech"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert f"(given with the settings file {settings_file})" in capsys.readouterr().err
    # --no-emotion runs without it
    assert main([*argv, "--no-emotion", "--no-video", "--out", str(tmp_path / "b")]) == 0


def test_record_with_a_bad_model_is_an_error_before_recording(
    shared_data: Path, bad_models: list[tuple[Path, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record --model` checks the file before any session folder or thread exists."""
    path, reason = bad_models[1]  # random bytes
    sessions = tmp_path / "sessions"
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    code = main(["record", str(video), "--out", str(sessions), "--seconds", "1", "--model", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: cannot load emotion model {path} (given with --model): ") and reason in err
    assert not sessions.exists() or not any(sessions.iterdir())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--upsample", "50"),
        ("--upsample", "-1"),
        ("--detect-width", "-100"),
        ("--detect-width", "10"),
        ("--detect-width", "100000"),
        ("--detect-every", "0"),
        ("--detect-every", "100000"),
        ("--upsample", str(UPSAMPLE_RANGE[1] + 1)),
        ("--detect-width", str(DETECT_WIDTH_RANGE[0] - 1)),
        ("--detect-every", str(DETECT_EVERY_RANGE[1] + 1)),
        ("--detect-every", "five"),
    ],
)
def test_numeric_options_out_of_range_are_usage_errors(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses them (exit 2) with the allowed range, before anything is loaded or allocated."""
    with pytest.raises(SystemExit) as caught:
        main(["analyze", "any.mp4", option, value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be" in err, err
    assert "Traceback" not in err


def test_numeric_options_accept_their_whole_range() -> None:
    """The bounds themselves, and 0 for a full-size detection width, parse."""
    parser = build_parser()
    for name, (low, high, _) in INT_OPTION_BOUNDS.items():
        flag = "--" + name.replace("_", "-")
        for value in (low, high):
            assert getattr(parser.parse_args(["analyze", "x", flag, str(value)]), name) == value
    assert parser.parse_args(["analyze", "x", "--detect-width", "0"]).detect_width == 0


def test_every_help_reads(capsys: pytest.CaptureFixture[str]) -> None:
    """The command and each subcommand print their help (exit 0); analyze's help gives the ranges."""
    commands = [[], ["analyze"], ["gui"], ["record"], ["report"], ["transcribe"], ["listen"]]
    commands += [["models"], ["models", "list"], ["models", "download"]]
    helps = {}
    for command in commands:
        with pytest.raises(SystemExit) as caught:
            main([*command, "--help"])
        assert caught.value.code == 0
        helps[" ".join(command)] = out = capsys.readouterr().out
        assert out.startswith("usage: facial-emotion"), command
    text = " ".join(helps["analyze"].split())
    for name, (low, high, _) in INT_OPTION_BOUNDS.items():
        assert f"{low}-{high}" in text, name
    assert "or 0 for full size" in text
    assert "--timeout SECONDS" in helps["models download"]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh interpreter, with none of the test run's TensorFlow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    return subprocess.run(
        [sys.executable, "-m", "facial_emotion", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_analyze_prints_no_tensorflow_noise(shared_data: Path, tmp_path: Path) -> None:
    """A run of the real command: its stderr is the progress bar only, not TensorFlow's start-up lines."""
    proc = _run("analyze", str(_face(shared_data)), "--no-speech", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "summary.json").is_file()
    assert not TF_NOISE.search(proc.stderr), proc.stderr
    assert "1 face track(s)" in proc.stdout


def test_a_failing_command_ends_with_one_error_line(
    shared_data: Path, bad_models: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """No traceback, no "threads still running", no TensorFlow lines: the error and exit 2."""
    path, _ = bad_models[2]  # the truncated shipped model
    video = shared_data / "faces-pyfeat" / "single_face.mp4"
    proc = _run("record", str(video), "--out", str(tmp_path / "sessions"), "--model", str(path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot load emotion model {path} (given with --model): "
        f"not a .keras model: its {path.stat().st_size} bytes are not a whole zip archive "
        "(cut short, damaged or not a model)"
    ]
    assert "still running" not in proc.stderr and "Traceback" not in proc.stderr
