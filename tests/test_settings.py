"""Settings are sparse on disk, written atomically, and survive a corrupt file."""

from __future__ import annotations

import json
from pathlib import Path

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
