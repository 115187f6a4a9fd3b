"""Training with resumable checkpoints, PublicTest model selection and a JSON settings record."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from facial_emotion.atomic import write_json_atomic
from facial_emotion.paths import data_dir
from facial_emotion.training.data import FaceSet, augment_batch, read_dataset, read_ferplus_labels
from facial_emotion.types import EMOTIONS, NUM_EMOTIONS

log = logging.getLogger(__name__)

ClassWeighting = Literal["none", "sqrt", "balanced"]
BEST_NAME: Final[str] = "best.keras"
LAST_NAME: Final[str] = "last.keras"
STATE_NAME: Final[str] = "state.json"
MODEL_NAME: Final[str] = "model.keras"
RECORD_NAME: Final[str] = "model.json"


def default_data_path() -> Path:
    """The shared FER2013 CSV (``fer2013/fer2013.csv.gz`` under ``data_dir()``)."""
    return data_dir() / "fer2013" / "fer2013.csv.gz"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Every setting of a training run; written verbatim into the run's JSON record."""

    data: str = field(default_factory=lambda: str(default_data_path()))
    ferplus: str | None = None
    ferplus_weight: float = 0.0
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_epochs: int = 1
    l2: float = 1e-4
    label_smoothing: float = 0.1
    class_weighting: ClassWeighting = "none"
    patience: int = 8
    seed: int = 1337
    stem_filters: int = 16
    block_filters: tuple[int, ...] = (32, 64, 128, 256)
    dropout: float = 0.3
    train_limit: int | None = None
    val_limit: int | None = None
    mixed_precision: bool = False
    """Train in ``mixed_bfloat16`` (pays on CPUs with AVX-512 BF16; weights stay float32)."""
    random_erasing: float = 0.0
    """Probability of blanking one random rectangle of a training face (occlusion robustness)."""

    @classmethod
    def quick(cls, **changes: Any) -> TrainConfig:
        """A profile for tests and smoke runs: a slice of the data, one epoch, a small net."""
        base = {
            "epochs": 1,
            "train_limit": 2000,
            "val_limit": 500,
            "stem_filters": 8,
            "block_filters": (16, 32, 64),
        }
        base.update(changes)
        return cls(**base)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Where a finished run left its model and record, and its best PublicTest accuracy."""

    model_path: Path
    record_path: Path
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int


class TrainingError(RuntimeError):
    """A run cannot start or resume (bad data, clashing settings)."""


def _save_model_atomic(model: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; records are meant to be shared
    os.replace(tmp, path)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-ready data."""
    data = dataclasses.asdict(config)
    data["block_filters"] = list(config.block_filters)
    return data


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config from its JSON form."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in data.items() if k in known}
    if "block_filters" in values:
        values["block_filters"] = tuple(values["block_filters"])
    return TrainConfig(**values)


def _targets(faces: FaceSet, config: TrainConfig, ferplus: np.ndarray | None) -> np.ndarray:
    onehot = np.eye(NUM_EMOTIONS, dtype=np.float32)[faces.labels]
    if ferplus is None or config.ferplus_weight <= 0:
        return onehot
    soft = ferplus[faces.rows]
    has_votes = soft.sum(axis=1) > 0
    mixed = (1.0 - config.ferplus_weight) * onehot + config.ferplus_weight * soft
    return np.where(has_votes[:, None], mixed, onehot).astype(np.float32)


def class_weights(labels: np.ndarray, mode: ClassWeighting) -> np.ndarray:
    """(7,) per-class sample weights with mean 1 over the data ('none' gives all ones)."""
    counts = np.bincount(labels, minlength=NUM_EMOTIONS).astype(np.float64)
    if mode == "none":
        return np.ones(NUM_EMOTIONS, dtype=np.float32)
    inv = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    weights = np.sqrt(inv) if mode == "sqrt" else inv
    weights /= (weights[labels]).mean()
    return weights.astype(np.float32)


def _make_sequence(images: np.ndarray, targets: np.ndarray, weights: np.ndarray, config: TrainConfig) -> Any:
    import keras

    class AugmentedFaces(keras.utils.PyDataset):
        """Shuffled, augmented batches; the order of each epoch depends only on (seed, epoch)."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self.order = np.arange(len(images))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self.order = np.random.default_rng([config.seed, epoch]).permutation(len(images))

        def __len__(self) -> int:
            return int(np.ceil(len(images) / config.batch_size))

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            idx = self.order[index * config.batch_size : (index + 1) * config.batch_size]
            rng = np.random.default_rng([config.seed, self.epoch, index])
            batch = augment_batch(images[idx], rng, erase_p=config.random_erasing)[..., None]
            return batch, targets[idx], weights[idx]

    return AugmentedFaces()


def _compile(model: Any, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(config.warmup_epochs * steps_per_epoch, total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1,
        decay_steps=max(1, total - warmup),
        alpha=0.01,
        warmup_target=config.learning_rate if warmup > 0 else None,
        warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
    }


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    verbose: int | None = None,
    max_epochs_now: int | None = None,
) -> TrainResult:
    """Train (or resume) a run in ``out_dir``; the best PublicTest epoch becomes ``out_dir/model.keras``.

    ``max_epochs_now`` stops this call after that many epochs (a time box); ``resume`` continues later.
    """
    import keras

    out_dir = Path(out_dir)
    state_path = out_dir / STATE_NAME
    if state_path.exists() and not resume:
        raise TrainingError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    if resume and state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        saved = config_from_dict(state["config"])
        # Paths say where the data lies on this machine, not what the run is: a run resumed on
        # another machine (or from a fresh clone) reads the data given now.
        saved = dataclasses.replace(saved, data=config.data, ferplus=config.ferplus or saved.ferplus)
        if saved != config:
            log.warning("resuming with the settings saved in %s (ignoring the ones given now)", state_path)
            config = saved
    else:
        state = {
            "config": config_to_dict(config),
            "epochs_done": 0,
            "best_val_accuracy": -1.0,
            "best_epoch": -1,
            "wait": 0,
            "history": [],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision else "float32")

    # With both limits set, stop reading early (the test suite trains on a slice).
    limit = max(config.train_limit, config.val_limit) if config.train_limit and config.val_limit else None
    faces = read_dataset(Path(config.data), usages=("Training", "PublicTest"), limit_per_usage=limit)
    train_set, val_set = faces.select("Training"), faces.select("PublicTest")
    if config.train_limit:
        train_set = _head(train_set, config.train_limit)
    if config.val_limit:
        val_set = _head(val_set, config.val_limit)
    if len(train_set) == 0 or len(val_set) == 0:
        raise TrainingError(f"{config.data}: needs both Training and PublicTest faces")
    ferplus = read_ferplus_labels(Path(config.ferplus)) if config.ferplus else None
    weights = class_weights(train_set.labels, config.class_weighting)
    sequence = _make_sequence(train_set.images, _targets(train_set, config, ferplus), weights[train_set.labels], config)
    val_x = val_set.images[..., None].astype(np.float32)
    val_y = np.eye(NUM_EMOTIONS, dtype=np.float32)[val_set.labels]
    log.info("training on %d faces, selecting on %d PublicTest faces", len(train_set), len(val_set))

    last_path = out_dir / LAST_NAME
    if resume and last_path.exists() and state["epochs_done"] > 0:
        model = keras.saving.load_model(last_path, compile=True, safe_mode=True)
        log.info("resumed %s at epoch %d", out_dir, state["epochs_done"])
    else:
        from facial_emotion.training.model import build_xception

        model = build_xception(
            stem_filters=config.stem_filters,
            block_filters=config.block_filters,
            dropout=config.dropout,
            l2=config.l2,
            seed=config.seed,
        )
        _compile(model, config, len(sequence))
    write_json_atomic(state_path, state)

    checkpoint = _make_checkpoint_callback(out_dir, state, sequence, config)
    if state["epochs_done"] < config.epochs and state["wait"] < config.patience:
        model.fit(
            sequence,
            validation_data=(val_x, val_y),
            validation_batch_size=256,
            initial_epoch=state["epochs_done"],
            epochs=min(config.epochs, state["epochs_done"] + (max_epochs_now or config.epochs)),
            callbacks=[checkpoint],
            verbose=verbose if verbose is not None else (1 if sys.stderr.isatty() else 2),
        )
    return finalize(out_dir, train_size=len(train_set), val_size=len(val_set))


def _head(faces: FaceSet, n: int) -> FaceSet:
    return FaceSet(faces.images[:n], faces.labels[:n], faces.usage[:n], faces.rows[:n])


def _make_checkpoint_callback(out_dir: Path, state: dict[str, Any], sequence: Any, config: TrainConfig) -> Any:
    import keras

    class ResumableCheckpoint(keras.callbacks.Callback):
        """Saves best.keras on a better PublicTest accuracy, and last.keras + state.json every epoch."""

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            sequence.set_epoch(epoch)
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            val_acc = float(logs.get("val_accuracy", 0.0))
            entry = {k: round(float(v), 5) for k, v in logs.items() if np.isscalar(v)}
            entry.update(epoch=epoch + 1, seconds=round(time.perf_counter() - self._t0, 1))
            state["history"].append(entry)
            if val_acc > state["best_val_accuracy"]:
                state.update(best_val_accuracy=val_acc, best_epoch=epoch + 1, wait=0)
                _save_model_atomic(self.model, out_dir / BEST_NAME)
            else:
                state["wait"] += 1
            state["epochs_done"] = epoch + 1
            _save_model_atomic(self.model, out_dir / LAST_NAME)
            write_json_atomic(out_dir / STATE_NAME, state)
            log.info(
                "epoch %d: PublicTest accuracy %.4f (best %.4f at %d)",
                epoch + 1,
                val_acc,
                state["best_val_accuracy"],
                state["best_epoch"],
            )
            if state["wait"] >= config.patience:
                log.info("early stop: no PublicTest gain for %d epochs", config.patience)
                self.model.stop_training = True

    return ResumableCheckpoint()


def finalize(out_dir: Path, *, train_size: int | None = None, val_size: int | None = None) -> TrainResult:
    """Write model.keras (best epoch, no optimizer state) and model.json (the settings record)."""
    import keras

    out_dir = Path(out_dir)
    state = json.loads((out_dir / STATE_NAME).read_text(encoding="utf-8"))
    best = keras.saving.load_model(out_dir / BEST_NAME, compile=False, safe_mode=True)
    model_path = out_dir / MODEL_NAME
    _save_model_atomic(best, model_path)
    record = {
        "model": MODEL_NAME,
        "classes": list(EMOTIONS),
        "input": "(N,48,48,1) float32 raw gray 0-255; the model rescales itself",
        "parameters": int(best.count_params()),
        "config": state["config"],
        "train_faces": train_size,
        "publictest_faces": val_size,
        "selection": "best PublicTest accuracy over epochs",
        "best_epoch": state["best_epoch"],
        "best_publictest_accuracy": round(state["best_val_accuracy"], 5),
        "epochs_run": state["epochs_done"],
        "history": state["history"],
        "started": state.get("started"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": _versions(),
    }
    record_path = out_dir / RECORD_NAME
    write_json_atomic(record_path, record)
    return TrainResult(model_path, record_path, state["best_val_accuracy"], state["best_epoch"], state["epochs_done"])


def export_run(out_dir: Path, dest: Path) -> tuple[Path, Path]:
    """Copy a finished run's model.keras and model.json to ``dest`` and ``dest`` with a .json suffix."""
    import shutil

    out_dir, dest = Path(out_dir), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    record_dest = dest.with_suffix(".json")
    shutil.copyfile(out_dir / MODEL_NAME, dest)
    record = json.loads((out_dir / RECORD_NAME).read_text(encoding="utf-8"))
    record["model"] = dest.name
    write_json_atomic(record_dest, record)
    from facial_emotion.training.export import export_tflite

    export_tflite(dest)  # the fast CPU form the app prefers, kept in step with the .keras file
    return dest, record_dest
