"""Window/level: the DICOM linear VOI function and the windows a viewer offers."""

from __future__ import annotations

import numpy as np

from medflip_core.imaging.radiograph import Window

# Chest presets as fractions of the image's robust (0.5-99.5 %) range: CR/DX values have no fixed unit
# the way CT Hounsfield units do, so a preset expressed in raw values would not travel between devices.
CHEST_PRESETS: dict[str, tuple[float, float]] = {
    "Chest (lung)": (0.40, 0.80),  # centre low in the range, wide: parenchyma and vessels
    "Chest (mediastinum)": (0.60, 0.50),  # centre high, narrower: heart, spine, tubes and lines
    "Chest (bone)": (0.70, 0.40),
    "High contrast": (0.50, 0.45),
}


def apply_window(raw: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear function, mapped to [0, 1] float32."""
    width = max(float(width), 1e-6)
    if width <= 1.0:
        out = (raw - center) / width + 0.5
    else:
        out = ((raw - (center - 0.5)) / (width - 1.0)) + 0.5
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def percentile_window(raw: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> Window:
    """A robust window from intensity percentiles (ignores burned-in labels and collimator edges)."""
    sample = raw if raw.size <= 1_000_000 else raw[:: max(1, raw.shape[0] // 1000), :: max(1, raw.shape[1] // 1000)]
    low, high = np.percentile(sample, [lo, hi])
    if high <= low:
        low, high = float(raw.min()), float(raw.max())
    width = max(float(high - low), 1e-6)
    return Window(center=float(low + width / 2), width=width, source="percentile")


def full_range_window(raw: np.ndarray) -> Window:
    low, high = float(raw.min()), float(raw.max())
    width = max(high - low, 1e-6)
    return Window(center=low + width / 2, width=width, source="full")


def preset_window(raw: np.ndarray, name: str, inverted: bool = False) -> Window:
    """One of CHEST_PRESETS, resolved against this image's robust range. The fractions count from the air end
    of a MONOCHROME2 film (low values dark); on a MONOCHROME1 film (`inverted`: high values are air) they count
    from the other end, so a preset picks the same tissue whichever way the film stores it."""
    center_frac, width_frac = CHEST_PRESETS[name]
    if inverted:
        center_frac = 1.0 - center_frac
    base = percentile_window(raw)
    low = base.center - base.width / 2
    return Window(center=low + center_frac * base.width, width=width_frac * base.width, source=name)


def render(raw: np.ndarray, window: Window, invert: bool) -> np.ndarray:
    """Display pixels in [0, 1] for a window; `invert` for MONOCHROME1 (or a user's invert toggle)."""
    out = apply_window(raw, window.center, window.width)
    return 1.0 - out if invert else out
