"""The ``train``, ``evaluate``, ``calibrate``, ``explain`` and ``export`` subcommands of ``facial-emotion``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the train, evaluate, calibrate, explain and export subcommands to an argparse subparsers object."""
    from facial_emotion.paths import DEFAULT_EMOTION_MODEL

    p = subparsers.add_parser("train", help="train the FER2013 emotion model (resumable)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="fer2013.csv[.gz] or a folder with train/ and test/ (default: the shared FER2013 CSV)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/emotion_xception"), help="run folder (checkpoints, record)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--quick", action="store_true", help="a slice of the data, one epoch, a small net (smoke test)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--patience", type=int, default=None, help="early stop after this many epochs without gain")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--class-weighting", choices=("none", "sqrt", "balanced"), default=None)
    p.add_argument("--ferplus", type=Path, default=None, help="fer2013new.csv: mix FER+ crowd labels into targets")
    p.add_argument("--ferplus-weight", type=float, default=None, help="weight of FER+ labels in the targets (0-1)")
    p.add_argument("--stem-filters", type=int, default=None)
    p.add_argument("--block-filters", type=str, default=None, help="comma-separated, e.g. 32,64,128,256")
    p.add_argument(
        "--mixed-precision", action="store_true", default=None, help="train in mixed_bfloat16 (AVX-512 BF16 CPUs)"
    )
    p.add_argument("--random-erasing", type=float, default=None, help="share of faces with a blanked patch (0-1)")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N Training faces")
    p.add_argument("--val-limit", type=int, default=None, help="use only the first N PublicTest faces")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop this call after N epochs (time box); continue later with --resume",
    )
    p.add_argument("--export", type=Path, default=None, help="also copy model.keras and model.json to this .keras path")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate", help="accuracy, per-class recall and confusion matrix of a model")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, default=None, help="fer2013.csv[.gz] (default: the shared FER2013 CSV)")
    source.add_argument("--folder", type=Path, default=None, help="a folder with one subfolder of images per emotion")
    p.add_argument(
        "--split",
        default="PrivateTest",
        choices=("Training", "PublicTest", "PrivateTest"),
        help="CSV split to evaluate (default PrivateTest)",
    )
    p.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL)
    p.add_argument("--tta", action="store_true", help="average over flips and crops (test-time augmentation)")
    p.add_argument("--plot", type=Path, default=None, help="confusion matrix PNG (default: beside --json or ./)")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--record", action="store_true", help="add the figures to the model's .json settings record")
    p.add_argument(
        "--robustness",
        action="store_true",
        help="also measure accuracy under noise, FGSM, blur, brightness and contrast (one table each)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N faces (quick runs)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="robustness JSON (default: beside --json as NAME_robustness.json; none without --json)",
    )
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser(
        "calibrate", help="fit a temperature on PublicTest so the model's percentages mean what they say"
    )
    p.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL)
    p.add_argument("--data", type=Path, default=None, help="fer2013.csv[.gz] (default: the shared FER2013 CSV)")
    p.add_argument("--out", type=Path, required=True, help="the calibrated .keras file to write")
    p.set_defaults(func=run_calibrate)

    p = subparsers.add_parser("explain", help="Grad-CAM heat map of the predicted emotion over a face image")
    p.add_argument("image", type=Path)
    p.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL)
    p.add_argument("--out", type=Path, default=None, help="output PNG (default: IMAGE_cam.png)")
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser(
        "export", help="write a .keras model's .tflite twin (what the app runs) and record its checksum"
    )
    p.add_argument("--model", type=Path, default=DEFAULT_EMOTION_MODEL, help="the .keras file (default: shipped)")
    p.add_argument("--out", type=Path, default=None, help="the .tflite to write (default: beside --model)")
    p.set_defaults(func=run_export)


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up banner would bury the one-line results on stderr.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    """Handle ``facial-emotion train``."""
    _quiet_tensorflow()
    from facial_emotion.training.data import DataError
    from facial_emotion.training.train import TrainConfig, TrainingError, export_run, train

    changes: dict[str, Any] = {}
    for name, key in (
        ("data", "data"),
        ("epochs", "epochs"),
        ("batch_size", "batch_size"),
        ("lr", "learning_rate"),
        ("seed", "seed"),
        ("patience", "patience"),
        ("label_smoothing", "label_smoothing"),
        ("class_weighting", "class_weighting"),
        ("ferplus", "ferplus"),
        ("ferplus_weight", "ferplus_weight"),
        ("stem_filters", "stem_filters"),
        ("train_limit", "train_limit"),
        ("val_limit", "val_limit"),
        ("mixed_precision", "mixed_precision"),
        ("random_erasing", "random_erasing"),
    ):
        value = getattr(args, name)
        if value is not None:
            changes[key] = str(value) if isinstance(value, Path) else value
    if args.block_filters:
        try:
            changes["block_filters"] = tuple(int(v) for v in args.block_filters.split(","))
        except ValueError:
            return _fail(f"--block-filters wants integers separated by commas, got {args.block_filters!r}")
    if "ferplus_weight" in changes and "ferplus" not in changes:
        return _fail("--ferplus-weight needs --ferplus PATH")
    if "ferplus" in changes and "ferplus_weight" not in changes:
        changes["ferplus_weight"] = 0.5
    config = TrainConfig.quick(**changes) if args.quick else TrainConfig(**changes)
    try:
        result = train(config, args.out, resume=args.resume, max_epochs_now=args.stop_after)
        if args.export:
            export_run(args.out, args.export)
    except (DataError, TrainingError, OSError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(f"interrupted; continue with: facial-emotion train --out {args.out} --resume", file=sys.stderr)
        return 130
    print(
        f"best PublicTest accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch} "
        f"({result.epochs_run} epochs run)"
    )
    print(f"model: {result.model_path}\nrecord: {result.record_path}")
    return 0


def _evaluate_argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with a combination of evaluate's options, in one line, or None."""
    if args.limit is not None and args.limit < 1:
        return f"--limit wants a number of faces of 1 or more, got {args.limit}"
    if args.record and args.limit is not None:
        return "--record keeps figures of a whole split: drop --limit"
    if args.out is not None and not args.robustness:
        return "--out names the robustness JSON: add --robustness"
    if args.robustness and args.tta:
        return "--robustness measures the model without test-time augmentation: drop --tta"
    return None


def run_evaluate(args: argparse.Namespace) -> int:
    """Handle ``facial-emotion evaluate`` (with ``--robustness``, the perturbation tables too)."""
    problem = _evaluate_argument_problem(args)
    if problem:
        return _fail(problem)
    _quiet_tensorflow()
    from facial_emotion.training.data import DataError
    from facial_emotion.training.evaluate import evaluate_faces, format_report, load_faces, save_report
    from facial_emotion.training.runtime import load_keras_model
    from facial_emotion.vision.classifier import ModelLoadError

    try:
        model = load_keras_model(args.model)
        faces, name = load_faces(data=args.data, folder=args.folder, split=args.split, limit=args.limit)
    except (DataError, ModelLoadError, OSError) as exc:
        return _fail(str(exc))
    log.info("evaluating %s on %d faces from %s%s", args.model, len(faces), name, " with TTA" if args.tta else "")
    report = evaluate_faces(model, faces, tta=args.tta, source_name=name, model_name=args.model.name)
    print(format_report(report))
    plot = args.plot
    if plot is None:
        stem = f"confusion_{report.source_name}{'_tta' if args.tta else ''}.png"
        plot = args.json.with_name(args.json.stem + ".png") if args.json else Path(stem)
    try:
        written = save_report(report, plot=plot, json_path=args.json, record=args.record, model_path=args.model)
    except OSError as exc:
        return _fail(str(exc))
    for path in written:
        print(f"wrote {path}")
    return _run_robustness(args, model, faces, name) if args.robustness else 0


def _run_robustness(args: argparse.Namespace, model: Any, faces: Any, name: str) -> int:
    """Print one table per perturbation; write the JSON to --out or beside --json, and the record."""
    from facial_emotion.training.robustness import format_robustness, measure_robustness, save_robustness

    robustness = measure_robustness(model, faces, source_name=name, model_name=args.model.name)
    print()
    print(format_robustness(robustness))
    out = args.out or (args.json.with_name(f"{args.json.stem}_robustness.json") if args.json else None)
    record = args.model.with_suffix(".json") if args.record else None
    try:
        written = save_robustness(robustness, json_path=out, record_path=record)
    except OSError as exc:
        return _fail(str(exc))
    for path in written:
        print(f"wrote {path}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """Handle ``facial-emotion calibrate``."""
    _quiet_tensorflow()
    from facial_emotion.training.calibrate import calibrate_model
    from facial_emotion.training.data import DataError

    if args.out.resolve() == args.model.resolve():
        return _fail("--out must differ from --model (the uncalibrated file is kept)")
    try:
        fit = calibrate_model(args.model, args.out, data=args.data)
    except (DataError, ValueError, OSError) as exc:
        return _fail(str(exc))
    print(f"temperature {fit.temperature:.3f} (PublicTest NLL {fit.fit_nll_before:.4f} -> {fit.fit_nll_after:.4f})")
    print(f"calibrated model: {args.out}")
    from facial_emotion.training.export import export_tflite
    from facial_emotion.vision.classifier import ModelLoadError

    try:  # the app runs the LiteRT twin; without one the calibrated model would need TensorFlow
        twin = export_tflite(args.out)
    except (ModelLoadError, ValueError, OSError) as exc:
        return _fail(f"the calibrated model is written, but its LiteRT twin is not: {exc}")
    print(f"LiteRT twin: {twin.tflite_path} (checksum in {twin.record_path.name})")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Handle ``facial-emotion explain``."""
    _quiet_tensorflow()
    from facial_emotion.training.explain import CamError, explain_image_file
    from facial_emotion.vision.classifier import ModelLoadError

    out = args.out or args.image.with_name(f"{args.image.stem}_cam.png")
    try:
        emotion, score = explain_image_file(args.image, out, model_path=args.model)
    except (CamError, ModelLoadError, OSError) as exc:
        return _fail(str(exc))
    print(f"{emotion} ({score:.2f}); heat map written to {out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handle ``facial-emotion export``."""
    _quiet_tensorflow()
    from facial_emotion.training.export import export_tflite
    from facial_emotion.vision.classifier import ModelLoadError

    if args.model.suffix.lower() == ".tflite":
        return _fail(f"--model wants the .keras file to export, not {args.model}")
    try:
        done = export_tflite(args.model, args.out)
    except (ModelLoadError, OSError) as exc:
        return _fail(str(exc))
    record = done.record
    precision = "float32, rebuilt from mixed precision" if done.rebuilt_float32 else "float32"
    print(
        f"wrote {done.tflite_path} ({record.size_bytes:,} bytes, {precision}, "
        f"max difference {done.max_difference:.1e}); sha256 {record.sha256} recorded in {done.record_path}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m facial_emotion.training``) until the app's CLI wires these in."""
    parser = argparse.ArgumentParser(prog="facial-emotion")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))
