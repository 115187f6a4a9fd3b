"""Settings are sparse on disk, written atomically, and survive a corrupt file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facial_emotion.registry import REGISTRY, SLOTS, get_spec, specs_for
from facial_emotion.settings import Settings, load_settings, save_settings


def test_round_trip_is_sparse(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    settings = Settings().with_overlay("landmarks", False).replace(emotion=None, detect_every=3)
    save_settings(settings, path)
    assert json.loads(path.read_text()) == {
        "detect_every": 3,
        "emotion": None,
        "overlays": ["boxes", "emotion", "bars", "blinks", "fps", "mood"],
    }
    loaded, message = load_settings(path)
    assert loaded == settings and message is None
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"], "no temp files left"


def test_missing_file_gives_defaults_silently(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "none.json") == (Settings(), None)


def test_corrupt_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"overlays": ["boxes"')
    settings, message = load_settings(path)
    assert settings == Settings()
    assert message and "unreadable" in message
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_text() == '{"overlays": ["boxes"'


def test_registry_has_a_default_per_slot_and_knows_missing_files(tmp_path: Path) -> None:
    for slot in SLOTS:
        assert specs_for(slot)
        assert getattr(Settings(), slot) in {s.key for s in specs_for(slot)}
    assert get_spec("landmarks", "68").available, "dlib's landmarks come from face-recognition-models"
    assert len({(s.slot, s.key) for s in REGISTRY}) == len(REGISTRY)
    assert all(s.how_to_get for s in REGISTRY)


# -- bad settings files (issue: a fault matrix of real bad inputs) --------------------------


def test_file_that_is_not_utf8_is_set_aside_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b'{"detect_every": 3, "last_source": "caf\xe9.mp4"}\xff\xfe')
    settings, message = load_settings(path)
    assert settings == Settings()
    assert message and "unreadable" in message and "utf-8" in message.lower()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b"\xff\xfe"), "the user's bytes are kept"
    assert not path.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("detect_every", "5"),
        ("detect_width_px", "320"),
        ("smoothing_alpha", "x"),
        ("smoothing_alpha", float("nan")),
        ("upsample", 50),
        ("detect_width_px", -100),
        ("detect_every", 0),
        ("smoothing", "yes"),
        ("overlays", "boxes"),
        ("overlays", [1, 2]),
        ("speech_engine", "google"),
        ("mic", [0]),
        ("emotion", 7),
        ("record_dir", ""),
        ("upsample", 3),
        ("detect_width_px", 5000),
        ("detect_every", 61),
        ("detect_every", True),
        ("detect_every", 5.0),
        ("smoothing_alpha", 0),
    ],
)
def test_a_wrong_field_falls_back_alone_and_is_named(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({key: value, "loop_video": True, "largest_only": True}))
    settings, message = load_settings(path)
    assert getattr(settings, key) == getattr(Settings(), key), "the bad field has its default"
    assert settings.loop_video and settings.largest_only, "the good fields are kept"
    assert message and key in message
    assert path.exists(), "a file with one wrong field is not set aside"
    # saving it back writes only valid values, which load silently
    save_settings(settings, path)
    again, message = load_settings(path)
    assert again == settings and message is None


def test_extra_that_is_not_an_object_is_ignored_and_old_extra_migrates(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"extra": [], "detect_every": 2}')
    settings, message = load_settings(path)
    assert settings.detect_every == 2 and message and "extra" in message
    path.write_text(json.dumps({"extra": {"speech_on": True, "mic": 3, "record_dir": "/data/s", "x": 1}}))
    settings, message = load_settings(path)
    assert (settings.speech_on, settings.mic, settings.record_dir) == (True, 3, "/data/s")
    assert message is None
    save_settings(settings, path)
    assert "extra" not in json.loads(path.read_text()), "the untyped bag is not written back"


def test_settings_made_in_code_are_checked() -> None:
    with pytest.raises(ValueError, match="upsample"):
        Settings(upsample=50)
    with pytest.raises(ValueError, match="detect_width_px"):
        Settings().replace(detect_width_px=-100)
    with pytest.raises(ValueError, match="detect_every"):
        Settings(detect_every="5")  # type: ignore[arg-type]


def test_every_field_has_a_rule() -> None:
    import dataclasses

    from facial_emotion.settings import FIELD_RULES

    assert set(FIELD_RULES) == {f.name for f in dataclasses.fields(Settings)}
    for name, rule in FIELD_RULES.items():
        assert rule(getattr(Settings(), name)) == "", f"the default of {name} passes its own rule"


def test_the_group_photo_shows_its_four_faces_with_the_defaults(shared_data: Path) -> None:
    """The app and analyze use one rule for stills: the defaults find all 4 people."""
    import cv2

    from facial_emotion.engine import Engine
    from facial_emotion.sources import open_source

    photo = shared_data / "faces-pyfeat" / "multi_face.jpg"
    assert cv2.imread(str(photo)) is not None
    engine = Engine(Settings(emotion=None), realtime=False)
    engine.open(open_source(photo))
    result = engine.step()
    assert result is not None and len(result.faces) == 4
    # a video keeps the fast webcam setting
    assert engine.pipeline is not None
    assert Settings().for_stills().detect_width_px is None and Settings().detect_width_px == 320
    custom = Settings(detect_width_px=640)
    assert custom.for_stills() == custom, "a width the user chose is kept"


def test_unknown_overlays_are_dropped_one_by_one_and_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"overlays": ["boxes", "sparkles", "fps", 3.5], "detect_every": 2}))
    settings, message = load_settings(path)
    assert settings.overlays == Settings().overlays and message and "overlays" in message, "not a list of names"
    path.write_text(json.dumps({"overlays": ["boxes", "sparkles", "fps", "boxes"], "detect_every": 2}))
    settings, message = load_settings(path)
    assert settings.overlays == ("boxes", "fps") and settings.detect_every == 2
    assert message and '"sparkles"' in message and "unknown overlay" in message
    save_settings(settings, path)
    assert json.loads(path.read_text())["overlays"] == ["boxes", "fps"]
    assert load_settings(path) == (settings, None)
    with pytest.raises(ValueError, match="sparkles"):
        Settings().with_overlay("sparkles", True)


def test_overlay_keys_are_the_pipelines_and_the_apps() -> None:
    from facial_emotion.annotate import OVERLAYS
    from facial_emotion.gui.cam_overlay import CAM_KEY
    from facial_emotion.settings import DEFAULT_OVERLAYS, OVERLAY_KEYS

    assert set(OVERLAY_KEYS) == {spec.key for spec in OVERLAYS} | {CAM_KEY}
    assert set(DEFAULT_OVERLAYS) <= set(OVERLAY_KEYS)


def test_bounds_are_constants_the_cli_can_share() -> None:
    from facial_emotion.settings import DETECT_EVERY_RANGE, DETECT_WIDTH_RANGE, SMOOTHING_ALPHA_RANGE, UPSAMPLE_RANGE

    for field, (low, high) in (
        ("upsample", UPSAMPLE_RANGE),
        ("detect_width_px", DETECT_WIDTH_RANGE),
        ("detect_every", DETECT_EVERY_RANGE),
        ("smoothing_alpha", SMOOTHING_ALPHA_RANGE),
    ):
        assert Settings().replace(**{field: low}).replace(**{field: high}), "the ends are allowed"
        for bad in (low - 1 if isinstance(low, int) else 0.0, high + 1):
            with pytest.raises(ValueError, match=field):
                Settings().replace(**{field: bad})
    assert Settings(detect_width_px=None).detect_width_px is None, "None: detect at full size"
    assert UPSAMPLE_RANGE == (0, 2) and DETECT_WIDTH_RANGE == (160, 4096) and DETECT_EVERY_RANGE == (1, 60)


def test_settings_are_hashable_values_and_quick_to_import() -> None:
    import subprocess
    import sys

    a = Settings(mic="USB mic", record_dir="/data", speech_on=True)
    assert hash(a) == hash(Settings(mic="USB mic", record_dir="/data", speech_on=True)) and len({a, Settings()}) == 2
    code = (
        "import sys, facial_emotion.settings; print(sorted({'numpy', 'cv2', 'PySide6', 'pydantic'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", "settings import no heavy module"
