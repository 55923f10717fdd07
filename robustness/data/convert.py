"""Images as radiology stores them, converted once to the 8-bit pixels a model sees.

DICOM (through ``pydicom``): rescale slope/intercept (the modality LUT), a window — the file's
own, ``dataset.window=[centre, width]`` or a named preset — MONOCHROME1 inverted, one frame of a
multi-frame file. 16-bit PNG/TIFF: the same window, else the image's own range. 8-bit files pass
through untouched. Each conversion is described by a record of the numbers it used (never a
header's text: patient data stays in the file), and converted images are cached by the source
file's bytes and these settings, so the answer cache keys on the converted pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from robustness.errors import UserError

# (centre, width) in Hounsfield units; the usual CT display presets.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0), "mediastinum": (50.0, 350.0), "soft_tissue": (40.0, 400.0),
    "abdomen": (40.0, 400.0), "liver": (60.0, 160.0), "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0), "subdural": (75.0, 215.0), "stroke": (40.0, 40.0),
}
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
DICOM_EXTRA = "pip install 'mediconfusion-robustness[dicom]'"


@dataclass(frozen=True)
class Conversion:
    """How to turn a stored image into 8-bit pixels (``dataset.window``, ``dataset.frame``)."""

    window: tuple[float, float] | str | None = None  # [centre, width], a preset name, or None
    frame: int = 0
    keep_tags: tuple[str, ...] = ()  # DICOM keywords allowed into outputs

    def key(self) -> str:
        return json.dumps({"window": self.window, "frame": self.frame,
                           "keep_tags": list(self.keep_tags)}, sort_keys=True)


@dataclass
class Converted:
    """The 8-bit pixels and what was done to get them."""

    pixels: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


def parse_window(value: Any, where: str = "dataset.window") -> tuple[float, float] | str | None:
    """``null``, a preset name or ``[centre, width]`` with width > 0."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in WINDOW_PRESETS:
            raise UserError(f"{where}: unknown window preset {value!r} (known: "
                            f"{', '.join(sorted(WINDOW_PRESETS))}, or [centre, width])")
        return value
    if isinstance(value, Sequence) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        if value[1] <= 0:
            raise UserError(f"{where}: width must be positive, got {value[1]}")
        return (float(value[0]), float(value[1]))
    raise UserError(f"{where}: expected a preset name or [centre, width], got {value!r}")


def _window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM's linear VOI function (PS3.3 C.11.2.1.2) to 0..255."""
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    scaled = (values - low) / max(high - low, 1e-6)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def _range(values: np.ndarray) -> tuple[np.ndarray, list[float]]:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8), [low, high]
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8), [low, high]


def _to_8bit(values: np.ndarray, conversion: Conversion, file_window: tuple[float, float] | None
             ) -> tuple[np.ndarray, dict[str, Any]]:
    window = conversion.window
    if isinstance(window, str):
        centre, width = WINDOW_PRESETS[window]
        return _window(values, centre, width), {"window": [centre, width], "window_from": window}
    if window is not None:
        return _window(values, *window), {"window": list(window), "window_from": "config"}
    if file_window is not None:
        return _window(values, *file_window), {"window": list(file_window),
                                               "window_from": "file"}
    pixels, span = _range(values)
    return pixels, {"window_from": "image range", "range": span}


def _first(value: Any) -> float | None:
    """A numeric DICOM value as a float; the first of a multi-valued one (pydicom's
    ``MultiValue`` for several windows); None when absent or not a number."""
    from pydicom.multival import MultiValue

    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def read_dicom(path: Path, conversion: Conversion) -> Converted:
    """One frame of a DICOM file as 8-bit pixels (grayscale, or RGB for colour files)."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError:
        raise UserError(f"{path}: a DICOM file; reading it needs pydicom: {DICOM_EXTRA}") from None
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # noqa: BLE001 - any parse failure is one line naming the file
        raise UserError(f"{path}: not a readable DICOM file ({type(err).__name__})") from None
    if "PixelData" not in ds:
        raise UserError(f"{path}: DICOM file without pixel data")
    syntax = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in ds.file_meta else None
    try:
        array = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - a missing decoder names itself in the message
        missing = " ".join(str(err).split())
        name = syntax.name if syntax is not None else "its transfer syntax"
        raise UserError(f"{path}: cannot decode {name} pixel data: no installed decoder "
                        f"(pydicom says: {missing[:300]})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if frames > 1:
        if not 0 <= conversion.frame < frames:
            raise UserError(f"{path}: dataset.frame={conversion.frame} but the file has "
                            f"{frames} frames (0..{frames - 1})")
        array = array[conversion.frame]
    record: dict[str, Any] = {"format": "dicom", "transfer_syntax": syntax.name if syntax else None,
                              "photometric": photometric, "frames": frames,
                              "frame": conversion.frame if frames > 1 else None,
                              "bits_stored": int(ds.get("BitsStored", 0) or 0)}
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "YBR_RCT", "YBR_ICT"):
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut
            array = apply_color_lut(array, ds)
        elif photometric.startswith("YBR") and not ds.file_meta.TransferSyntaxUID.is_compressed:
            from pydicom.pixels import convert_color_space
            array = convert_color_space(array, photometric, "RGB")
        pixels = array if array.dtype == np.uint8 else _range(array.astype(np.float64))[0]
        return Converted(np.ascontiguousarray(pixels), {**record, "window_from": "colour"})
    values = apply_modality_lut(array, ds).astype(np.float64)
    slope, intercept = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
    record.update(rescale_slope=slope, rescale_intercept=intercept)
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    file_window = (centre, width) if centre is not None and width and width > 0 else None
    pixels, how = _to_8bit(values, conversion, file_window)
    if photometric == "MONOCHROME1":  # high values are dark: invert to the usual look
        pixels = 255 - pixels
    record.update(how, inverted=photometric == "MONOCHROME1")
    kept = {tag: str(ds.get(tag)) for tag in conversion.keep_tags if tag in ds}
    if kept:
        record["tags"] = kept
    return Converted(pixels, record)


def read_high_bit(path: Path, conversion: Conversion) -> Converted | None:
    """A 16-bit (or float) PNG/TIFF as 8-bit pixels; ``None`` for an ordinary 8-bit image."""
    from robustness.data.image import open_image

    with open_image(path) as img:
        if img.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
            return None
        values = np.asarray(img, dtype=np.float64)
        mode = img.mode
    pixels, how = _to_8bit(values, conversion, None)
    return Converted(pixels, {"format": path.suffix.lower().lstrip("."), "mode": mode, **how})


def is_dicom(path: Path) -> bool:
    """A ``.dcm`` file, or any file with the DICOM preamble (``DICM`` at byte 128)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


class ImageConverter:
    """Converts source images into a cache folder, once per (file bytes, settings)."""

    def __init__(self, cache_dir: Path, conversion: Conversion) -> None:
        self.cache_dir = Path(cache_dir)
        self.conversion = conversion
        self.records: dict[str, dict[str, Any]] = {}

    def prepare(self, path: Path) -> Path:
        """The file a run should read for ``path``: itself if it is 8-bit, else its
        converted PNG (written atomically on first use)."""
        dicom = is_dicom(path)
        if not dicom and path.suffix.lower() not in (".png", ".tif", ".tiff"):
            return path
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = hashlib.sha256((digest + self.conversion.key()).encode()).hexdigest()[:24]
        target = self.cache_dir / f"{key}.png"
        meta = self.cache_dir / f"{key}.json"
        if target.is_file() and meta.is_file():
            self.records[str(path)] = json.loads(meta.read_text(encoding="utf-8"))
            return target
        converted = read_dicom(path, self.conversion) if dicom else \
            read_high_bit(path, self.conversion)
        if converted is None:
            return path
        from PIL import Image

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        record = {**converted.record, "source_sha256": digest}
        tmp = target.with_suffix(".tmp")
        Image.fromarray(converted.pixels).save(tmp, format="PNG")
        tmp.replace(target)
        meta.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
        self.records[str(path)] = record
        return target


def conversion_from(window: Any, frame: Any, keep_tags: Any) -> Conversion:
    """The ``dataset`` settings, checked."""
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise UserError(f"dataset.frame: expected a frame index ≥ 0, got {frame!r}")
    tags = tuple(keep_tags or ())
    if not all(isinstance(t, str) and t.isidentifier() for t in tags):
        raise UserError(f"dataset.keep_tags: expected DICOM keywords (e.g. Modality), got "
                        f"{list(tags)!r}")
    return Conversion(window=parse_window(window), frame=frame, keep_tags=tags)


def summarise(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """How many images were converted, and how (for ``summary.json``)."""
    out: dict[str, int] = {}
    for rec in records.values():
        label = f"{rec.get('format')}: window from {rec.get('window_from')}"
        out[label] = out.get(label, 0) + 1
    return {"converted": len(records), "by_method": out}
