"""Export a .keras emotion model to its float32 .tflite twin and record the twin's checksum.

The record goes under ``"tflite"`` in the model's metadata JSON beside both files
(``x.keras``, ``x.tflite``, ``x.json``): the sha256 and size of the twin, and the sha256 of
the .keras file it came from. The live path checks these before it runs the twin, so a
damaged, replaced or stale twin is refused without loading Keras.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from facial_emotion.atomic import write_bytes_atomic, write_json_atomic
from facial_emotion.training.runtime import import_tensorflow, load_keras_model
from facial_emotion.vision.classifier import (
    TWIN_KEY,
    LiteRTEmotionClassifier,
    ModelLoadError,
    TwinRecord,
    quiet_native_logs,
    record_path,
    sha256_hex,
)

log = logging.getLogger(__name__)

AGREEMENT_ATOL: Final = 1e-4
"""Largest difference allowed between the twin's probabilities and the float32 Keras model's."""
_PROBE_FACES: Final = 16
_SHARED_MODE: Final = 0o644  # models and their records are meant to be shared


@dataclass(frozen=True, slots=True)
class TwinExport:
    """A written twin: where it and its record are, what was recorded, how closely it agrees."""

    tflite_path: Path
    record_path: Path
    record: TwinRecord
    max_difference: float
    rebuilt_float32: bool


def _float32_config(node: Any) -> Any:
    """A serialized Keras config with every mixed or half-precision dtype policy made float32."""
    if isinstance(node, list):
        return [_float32_config(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return {**node, "config": {**node.get("config", {}), "name": "float32"}}
    out = {key: _float32_config(value) for key, value in node.items()}
    if isinstance(out.get("dtype"), str) and out["dtype"] in ("bfloat16", "float16", "mixed_bfloat16", "mixed_float16"):
        out["dtype"] = "float32"
    return out


def _all_layers(model: Any) -> list[Any]:
    """Every layer of a model, nested models' layers included."""
    found = []
    for layer in getattr(model, "layers", ()):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def float32_model(model: Any) -> tuple[Any, bool]:
    """The model rebuilt in float32 when any layer computes in another precision, and whether it was.

    The twin must compute in float32 like the app's input (LiteRT's CPU kernels are float32
    ones); a mixed_bfloat16 model would carry its casts and bfloat16 arithmetic into the
    flatbuffer. Its variables are float32 already, so the same weights go into a float32 graph.
    """
    import keras

    policies = {layer.dtype_policy.name for layer in _all_layers(model) if getattr(layer, "dtype_policy", None)}
    if policies <= {"float32"}:
        return model, False
    config = _float32_config(keras.saving.serialize_keras_object(model))
    rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
    rebuilt.set_weights(model.get_weights())
    log.info("rebuilt %s in float32 for conversion (it computed in %s)", model.name, sorted(policies))
    return rebuilt, True


def convert_to_tflite(model: Any) -> bytes:
    """The TFLite flatbuffer of a float32 Keras model (the converter's chatter goes to the debug log)."""
    tf = import_tensorflow()
    chatter = io.StringIO()
    with warnings.catch_warnings(), quiet_native_logs(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")  # TF 2.21 warns that tf.lite moves to ai-edge-litert
        flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    if chatter.getvalue().strip():
        log.debug("converter: %s", chatter.getvalue().strip())
    return bytes(flat)


def _record_twin(json_path: Path, keras_path: Path, record: TwinRecord) -> None:
    """Merge the twin's record into the model's JSON (created if missing; other keys kept)."""
    data: dict[str, Any] = {"model": keras_path.name}
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelLoadError(json_path, f"the model's JSON is not valid JSON ({exc}); fix or remove it") from exc
        if not isinstance(data, dict):
            raise ModelLoadError(json_path, "the model's JSON is not an object; fix or remove it")
    data[TWIN_KEY] = record.to_dict()
    write_json_atomic(json_path, data, mode=_SHARED_MODE)


def export_tflite(keras_path: Path, dest: Path | None = None) -> TwinExport:
    """Convert a .keras emotion model to its float32 .tflite twin beside it and record its checksum.

    ``dest`` (default: the .keras path with a .tflite suffix) gets the twin and the JSON of
    the same name gets the record. The twin must agree with the Keras model within
    AGREEMENT_ATOL on a probe batch, or nothing is written.
    """
    keras_path = Path(keras_path)
    keras_bytes = keras_path.read_bytes() if keras_path.is_file() else b""
    model = load_keras_model(keras_path)
    model32, rebuilt = float32_model(model)
    flat = convert_to_tflite(model32)
    out = Path(dest) if dest is not None else keras_path.with_suffix(".tflite")
    probe = np.random.default_rng(0).integers(0, 256, (_PROBE_FACES, 48, 48), dtype=np.uint8)
    twin = LiteRTEmotionClassifier(out, content=flat)
    expected = np.asarray(model32(probe[..., None].astype(np.float32), training=False))
    difference = float(np.max(np.abs(twin.classify(probe) - expected)))
    if difference > AGREEMENT_ATOL:
        raise ModelLoadError(keras_path, f"its TFLite conversion differs by {difference:.2g} (> {AGREEMENT_ATOL})")
    tf = import_tensorflow()
    record = TwinRecord(
        file=out.name,
        sha256=sha256_hex(flat),
        size_bytes=len(flat),
        keras_file=keras_path.name,
        keras_sha256=sha256_hex(keras_bytes),
        precision="float32",
        converter=f"tensorflow {tf.__version__}",
        exported=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    # The twin first: a crash before the record leaves a refused pair, not a wrong one.
    write_bytes_atomic(out, flat, mode=_SHARED_MODE)
    json_path = record_path(out)
    _record_twin(json_path, keras_path, record)
    log.info("exported %s (%d bytes, sha256 %s) into %s", keras_path.name, len(flat), record.sha256[:12], out)
    return TwinExport(out, json_path, record, difference, rebuilt)
