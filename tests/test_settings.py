"""Settings are sparse on disk, written atomically, and survive a corrupt file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facial_emotion.registry import REGISTRY, SLOTS, get_spec, specs_for
from facial_emotion.settings import ClassifierOptions, DetectionOptions, Settings, load_settings, save_settings


def _get(settings: object, dotted: str) -> object:
    """A field by its name in the file: ``loop_video`` or a stage's option, ``detection.every``."""
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


def _nested(dotted: str, value: object) -> dict[str, object]:
    head, _, rest = dotted.partition(".")
    return {head: _nested(rest, value) if rest else value}


def test_round_trip_is_sparse(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    settings = Settings().with_overlay("landmarks", False).replace(emotion=None).with_detection(every=3)
    save_settings(settings, path)
    assert json.loads(path.read_text()) == {
        "detection": {"every": 3},
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
        ("detection.every", "5"),
        ("detection.width_px", "320"),
        ("classifier.smoothing_alpha", "x"),
        ("classifier.smoothing_alpha", float("nan")),
        ("detection.upsample", 50),
        ("detection.width_px", -100),
        ("detection.every", 0),
        ("classifier.smoothing", "yes"),
        ("detection", [3]),
        ("overlays", "boxes"),
        ("overlays", [1, 2]),
        ("speech_engine", "google"),
        ("mic", [0]),
        ("emotion", 7),
        ("record_dir", ""),
        ("detection.upsample", 3),
        ("detection.width_px", 5000),
        ("detection.every", 61),
        ("detection.every", True),
        ("detection.every", 5.0),
        ("classifier.smoothing_alpha", 0),
    ],
)
def test_a_wrong_field_falls_back_alone_and_is_named(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "settings.json"
    data = _nested(key, value)
    if key != "detection":
        data.setdefault("detection", {}).setdefault("largest_only", True)  # type: ignore[union-attr]
    path.write_text(json.dumps({**data, "loop_video": True}))
    settings, message = load_settings(path)
    assert _get(settings, key) == _get(Settings(), key), "the bad field has its default"
    assert settings.loop_video, "the good fields are kept"
    assert key == "detection" or settings.detection.largest_only, "the good options of the stage too"
    assert message and key in message
    assert path.exists(), "a file with one wrong field is not set aside"
    # saving it back writes only valid values, which load silently
    save_settings(settings, path)
    again, message = load_settings(path)
    assert again == settings and message is None


def test_extra_that_is_not_an_object_is_ignored_and_old_extra_migrates(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"extra": [], "detection": {"every": 2}}')
    settings, message = load_settings(path)
    assert settings.detection.every == 2 and message and "extra" in message
    path.write_text(json.dumps({"extra": {"speech_on": True, "mic": 3, "record_dir": "/data/s", "x": 1}}))
    settings, message = load_settings(path)
    assert (settings.speech_on, settings.mic, settings.record_dir) == (True, 3, "/data/s")
    assert message is None
    save_settings(settings, path)
    assert "extra" not in json.loads(path.read_text()), "the untyped bag is not written back"


def test_settings_made_in_code_are_checked() -> None:
    with pytest.raises(ValueError, match=r"detection\.upsample"):
        Settings(detection=DetectionOptions(upsample=50))
    with pytest.raises(ValueError, match=r"detection\.width_px"):
        Settings().with_detection(width_px=-100)
    with pytest.raises(ValueError, match=r"detection\.every"):
        DetectionOptions(every="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"classifier\.smoothing_alpha"):
        Settings().with_classifier(smoothing_alpha=2.0)
    with pytest.raises(ValueError, match="detection"):
        Settings(detection={"every": 3})  # type: ignore[arg-type]


def test_files_from_before_the_stage_options_keep_their_choices(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    old = {"detect_width_px": None, "upsample": 1, "detect_every": 2, "largest_only": True, "smoothing": True}
    path.write_text(json.dumps({**old, "smoothing_alpha": 0.25, "loop_video": True}))
    settings, message = load_settings(path)
    assert message is None and settings.loop_video
    assert settings.detection == DetectionOptions(width_px=None, upsample=1, every=2, largest_only=True)
    assert settings.classifier == ClassifierOptions(smoothing=True, smoothing_alpha=0.25)
    save_settings(settings, path)
    written = json.loads(path.read_text())
    assert written["detection"] == {"width_px": None, "upsample": 1, "every": 2, "largest_only": True}
    assert not set(old) & set(written), "written back in the new form"


def test_every_field_has_a_rule() -> None:
    import dataclasses

    from facial_emotion.settings import CLASSIFIER_RULES, DETECTION_RULES, FIELD_RULES

    for kind, rules in (
        (Settings, FIELD_RULES),
        (DetectionOptions, DETECTION_RULES),
        (ClassifierOptions, CLASSIFIER_RULES),
    ):
        assert set(rules) == {f.name for f in dataclasses.fields(kind)}
        for name, rule in rules.items():
            assert rule(getattr(kind(), name)) == "", f"the default of {name} passes its own rule"


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
    assert Settings().for_stills().detection.width_px is None and Settings().detection.width_px == 320
    custom = Settings().with_detection(width_px=640)
    assert custom.for_stills() == custom, "a width the user chose is kept"


def test_unknown_overlays_are_dropped_one_by_one_and_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"overlays": ["boxes", "sparkles", "fps", 3.5], "detection": {"every": 2}}))
    settings, message = load_settings(path)
    assert settings.overlays == Settings().overlays and message and "overlays" in message, "not a list of names"
    path.write_text(json.dumps({"overlays": ["boxes", "sparkles", "fps", "boxes"], "detection": {"every": 2}}))
    settings, message = load_settings(path)
    assert settings.overlays == ("boxes", "fps") and settings.detection.every == 2
    assert message and '"sparkles"' in message and "unknown overlay" in message
    save_settings(settings, path)
    assert json.loads(path.read_text())["overlays"] == ["boxes", "fps"]
    assert load_settings(path) == (settings, None)
    with pytest.raises(ValueError, match="sparkles"):
        Settings().with_overlay("sparkles", True)


def test_overlay_keys_are_the_pipelines_and_the_apps() -> None:
    from facial_emotion.annotate import OVERLAYS
    from facial_emotion.pipeline import CAM_KEY
    from facial_emotion.settings import DEFAULT_OVERLAYS, OVERLAY_KEYS

    assert set(OVERLAY_KEYS) == {spec.key for spec in OVERLAYS} and CAM_KEY in OVERLAY_KEYS
    assert set(DEFAULT_OVERLAYS) <= set(OVERLAY_KEYS)


def test_bounds_are_constants_the_cli_can_share() -> None:
    from facial_emotion.settings import DETECT_EVERY_RANGE, DETECT_WIDTH_RANGE, SMOOTHING_ALPHA_RANGE, UPSAMPLE_RANGE

    for kind, field, (low, high) in (
        (DetectionOptions, "upsample", UPSAMPLE_RANGE),
        (DetectionOptions, "width_px", DETECT_WIDTH_RANGE),
        (DetectionOptions, "every", DETECT_EVERY_RANGE),
        (ClassifierOptions, "smoothing_alpha", SMOOTHING_ALPHA_RANGE),
    ):
        assert kind().replace(**{field: low}).replace(**{field: high}), "the ends are allowed"
        for bad in (low - 1 if isinstance(low, int) else 0.0, high + 1):
            with pytest.raises(ValueError, match=field):
                kind().replace(**{field: bad})
    assert DetectionOptions(width_px=None).width_px is None, "None: detect at full size"
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
