"""Out-of-distribution warnings read from the image itself: its pixels and its embedding.

medflip_core.inference.ood reads the DICOM tags; a PNG has none, and a tag can be missing or wrong. This module
looks at what the model is given:

- cheap pixel checks, no model needed: a colour image, an image too small or too elongated to be a chest film,
  noise, a nearly blank image, an image that is mostly one flat level (a drawing, logo or screen capture);
- the layout of the image: its patch tokens averaged over a 3 x 3 grid (LAYOUT_CELLS), i.e. what the model sees
  in each part of the film, and their Mahalanobis distance from chest films (kept in the model bundle as
  `ood_reference.npz`, made by `medflip bench ood --write-reference`); beyond the bundle's threshold the image is
  "unlike most chest films the model was trained on". Why the layout and not the pooled embedding (which older
  bundles' references hold, and which is still used for them): a chest film from a hospital outside the reference
  keeps its anatomy where a chest film has it, while its pooled embedding moves with the hospital's processing.
  With one of the three shared sources left out of the reference, the embedding's distance flagged 42-76 % of the
  left-out source's chest films; the layout's, at a threshold that still catches every held-out non-chest image,
  1-26 % (docs/results.md, `medflip bench ood --leave-one-source-out`). It is still not called "not a chest
  film": a chest film from another population or machine can land beyond it, so the words name both causes. The
  same file holds a linear discriminant, on the embedding, from chest films to the same films inverted: an inverted
  film (bones dark, air bright) is said to be so.

Why in the bundle and not computed on the user's machine: the reference must come from the embeddings of this
bundle's own image encoder, and the app ships no chest films to compute it from; it is small (32 directions of each
kind). The file records the sha256 of the encoder it was made with: a bundle whose encoder changed since (a full
fine-tune) ignores it. A bundle without a reference still gets the pixel checks.

Thresholds: the pixel checks' are set beyond every chest film of the choosing part of the shared data (Kermany,
NIH, TBX11K) with a margin; the layout's is chosen on chest films held out of the reference and on non-chest images
(see medflip_core.bench.ood, which also measures both on a part used for neither).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medflip_core.bundles.bundle import IMAGE_ONNX, OOD_REFERENCE_NPZ, Bundle
from medflip_core.imaging import ImageMetadata

log = logging.getLogger(__name__)

COLOUR_PHOTOMETRIC = ("RGB", "YBR", "PALETTE", "ARGB", "CMYK", "HSV")  # DICOM photometric interpretations
MIN_SIDE = 128  # pixels: the smallest chest film in the shared data is 224 px a side
MAX_ASPECT = 2.0  # longer side / shorter side: chest films are 0.8-1.25 (17 x 14 inch detectors)
MIN_CHROMA = 0.04  # mean (max - min of R, G, B) on a 0-1 scale: grey JPEGs saved in colour stay far below
MAX_NEIGHBOUR_DIFF = 0.12  # mean |difference| of neighbouring pixels at full resolution: noise is ~0.33
MIN_SPREAD = 0.03  # standard deviation of the display pixels: below it the image is nearly blank
MAX_FLAT_SHARE = 0.6  # share of the image at its single most common grey level (of 256): drawings, logos, UI


@dataclass(frozen=True)
class PixelFacts:
    """What the pixel checks measure (kept apart from the verdict so that the benchmark can show the values)."""

    rows: int
    columns: int
    colour: bool  # a colour image (a photograph, a drawing, a screen capture, ultrasound Doppler, ...)
    neighbour_diff: float  # mean |p(x+1) - p(x)| over a full-resolution central crop, display space [0, 1]
    spread: float  # standard deviation of the display pixels
    flat_share: float  # share of pixels at the most common of 256 grey levels

    @property
    def aspect(self) -> float:
        return max(self.rows, self.columns) / max(1, min(self.rows, self.columns))


def _chroma(path: Path) -> float | None:
    """Mean colourfulness of a raster file ((max - min) of R, G, B on a 0-1 scale, on a small copy), or None when
    the file cannot be read again."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.draft("RGB", (256, 256))  # JPEG: decode at a reduced size
            small = image.convert("RGB")
            small.thumbnail((256, 256))
            rgb = np.asarray(small, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as exc:
        log.info("%s: colour not measured: %s", path.name, exc)
        return None
    return float((rgb.max(axis=-1) - rgb.min(axis=-1)).mean())


def is_colour(metadata: ImageMetadata, notes: Sequence[str]) -> bool:
    """A colour image: a DICOM with a colour photometric interpretation, or a raster file converted to grey on
    reading whose colours are more than JPEG noise on a grey film."""
    if any(metadata.photometric.upper().startswith(c) for c in COLOUR_PHOTOMETRIC):
        return True
    if "colour image converted to grey" not in notes:
        return False
    chroma = _chroma(Path(metadata.source_path))
    return chroma is None or chroma >= MIN_CHROMA


def pixel_facts(pixels: np.ndarray, metadata: ImageMetadata, notes: Sequence[str] = ()) -> PixelFacts:
    """Measure the display pixels (float (H, W) in [0, 1]) of an image."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ValueError(f"expected a 2-D image, got shape {pixels.shape}")
    h, w = pixels.shape
    crop = pixels[max(0, h // 2 - 256): h // 2 + 256, max(0, w // 2 - 256): w // 2 + 256]
    diffs = [np.abs(np.diff(crop, axis=a)).mean() for a in (0, 1) if crop.shape[a] > 1]
    step = max(1, int(np.sqrt(pixels.size / 250_000)))  # ~250k pixels are plenty for a histogram
    sample = pixels[::step, ::step]
    levels = np.bincount(np.clip(sample * 255.0 + 0.5, 0, 255).astype(np.int64).ravel(), minlength=256)
    return PixelFacts(rows=h, columns=w, colour=is_colour(metadata, notes),
                      neighbour_diff=float(np.mean(diffs)) if diffs else 0.0, spread=float(sample.std()),
                      flat_share=float(levels.max() / sample.size))


def pixel_reasons(facts: PixelFacts) -> list[str]:
    """Sentences for what the pixels show, each "short reason: why it matters" (inference.ood.brief keeps the
    short part)."""
    reasons = []
    if facts.colour:
        reasons.append("colour image (a photograph, drawing or screen capture?), not a radiograph: radiographs are "
                       "grey, and the model has only seen chest radiographs")
    if min(facts.rows, facts.columns) < MIN_SIDE:
        reasons.append(f"too small for a radiograph ({facts.columns}x{facts.rows} pixels): the model has only seen "
                       "chest films of at least 224 pixels a side")
    elif facts.aspect > MAX_ASPECT:
        reasons.append(f"too elongated for a chest film ({facts.columns}x{facts.rows} pixels, {facts.aspect:.1f}:1): "
                       "chest films are nearly square")
    if facts.neighbour_diff > MAX_NEIGHBOUR_DIFF:
        reasons.append("looks like noise, not an image of anatomy: neighbouring pixels are unrelated")
    if facts.spread < MIN_SPREAD:
        reasons.append("nearly blank image: there is almost no contrast to read")
    elif facts.flat_share > MAX_FLAT_SHARE:
        reasons.append(f"mostly one flat grey level ({facts.flat_share:.0%} of the image), like a drawing, logo or "
                       "screen capture: not a radiograph")
    return reasons


LAYOUT_CELLS = 3  # the layout check averages the patch tokens over this many cells a side of the image


def layout_features(patch_tokens: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B, LAYOUT_CELLS**2 * D): patch tokens ((B, L, D) or (L, D), row-major over `grid`) averaged over a
    LAYOUT_CELLS x LAYOUT_CELLS grid of the image, top-left cell first: what the model sees in each part of it."""
    tokens = np.asarray(patch_tokens, dtype=np.float32)
    tokens = tokens[None] if tokens.ndim == 2 else tokens
    rows, cols = grid
    if tokens.ndim != 3 or tokens.shape[1] != rows * cols:
        raise ValueError(f"patch tokens of shape {tokens.shape} do not fit a {rows}x{cols} grid")
    t = tokens.reshape(len(tokens), rows, cols, tokens.shape[2])
    n = LAYOUT_CELLS
    return np.concatenate([t[:, i * rows // n:(i + 1) * rows // n, j * cols // n:(j + 1) * cols // n].mean(axis=(1, 2))
                           for i in range(n) for j in range(n)], axis=1)


@dataclass(frozen=True)
class Spread:
    """Where a set of vectors lies: their mean, top principal directions `components` (m, D) with their
    `variances`, and the mean variance left in every other direction. Chest films crowd into a narrow cone (cosine
    0.99 to their neighbours, and 0.99 for much that is not a chest film), so closeness is a Mahalanobis distance:
    squared projections on the directions over their variances, plus the rest of the vector over the remaining
    variance."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_variance: float

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int) -> Spread:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = singular**2 / max(1, len(x) - 1)
        m = min(n_components, len(var) - 1)
        return cls(mean.astype(np.float32), vt[:m].astype(np.float32), var[:m].astype(np.float32),
                   float(var[m:].mean()))

    def distance(self, x: np.ndarray) -> np.ndarray:
        """(B,) squared Mahalanobis distance of each row of x."""
        x = np.atleast_2d(x).astype(np.float32) - self.mean
        proj = x @ self.components.T
        rest = np.maximum((x * x).sum(axis=1) - (proj * proj).sum(axis=1), 0.0)
        return (proj * proj / self.variances).sum(axis=1) + rest / self.residual_variance


@dataclass(frozen=True)
class ChestReference:
    """Where chest films lie for the bundle's own image encoder, and what is far from it.

    The embedding's spread (`mean`, `components`, `variances`, `residual_variance`: a Spread of the pooled
    embeddings, also used by inference.label_specificity) and, in references made since the layout check, the
    `layout` Spread of the films' layout_features with its `layout_threshold`: above it the image is unlike the
    reference chest films. A reference without a layout (older bundles) judges by the embedding's distance and
    `threshold`. `inverted_direction` (D,) is a linear discriminant on the embedding from chest films to the same
    films inverted; a projection above `inverted_threshold` looks inverted."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_variance: float
    threshold: float
    inverted_direction: np.ndarray
    inverted_threshold: float
    encoder_sha256: str
    built_from: str  # what the reference films are, for the model card and the benchmark
    layout: Spread | None = None
    layout_threshold: float = np.inf
    layout_margin: float = 1.0  # layout_threshold over the calibration films' 99th percentile (bench.ood)

    @classmethod
    def fit(cls, embeddings: np.ndarray, inverted: np.ndarray, n_components: int, encoder_sha256: str,
            built_from: str, layouts: np.ndarray | None = None) -> ChestReference:
        """The principal directions of (N, D) chest-film embeddings (and of their (N, K) layout features, when
        given) and the discriminant towards the same films inverted; the thresholds are left open (+inf) for the
        caller to choose on films outside `embeddings`."""
        spread = Spread.fit(embeddings, n_components)
        x = embeddings.astype(np.float64)
        mean = x.mean(axis=0)
        inv = inverted.astype(np.float64)
        within = np.cov(np.concatenate([x - mean, inv - inv.mean(axis=0)]).T)
        within += np.eye(len(mean)) * 1e-3 * np.trace(within) / len(mean)
        direction = np.linalg.solve(within, inv.mean(axis=0) - mean)
        direction /= np.linalg.norm(direction)
        layout = Spread.fit(layouts, n_components) if layouts is not None else None
        return cls(spread.mean, spread.components, spread.variances, spread.residual_variance, np.inf,
                   direction.astype(np.float32), np.inf, encoder_sha256, built_from, layout)

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """(B,) squared Mahalanobis distance of each embedding from the reference chest films."""
        return Spread(self.mean, self.components, self.variances, self.residual_variance).distance(embeddings)

    def layout_distance(self, layouts: np.ndarray) -> np.ndarray:
        """(B,) squared Mahalanobis distance of each image's layout_features from the reference chest films'."""
        if self.layout is None:
            raise ValueError("this chest-film reference has no layout part (made before the layout check)")
        return self.layout.distance(layouts)

    def far(self, embeddings: np.ndarray, layouts: np.ndarray | None) -> np.ndarray:
        """(B,) bool: unlike the reference chest films (by the layout when the reference has one, else by the
        embedding)."""
        if self.layout is None:
            return self.distance(embeddings) > self.threshold
        if layouts is None:
            raise ValueError("the layout check needs the image's patch tokens (image_ood.layout_features)")
        return self.layout_distance(layouts) > self.layout_threshold

    def covariance(self) -> np.ndarray:
        """(D, D) the reference films' embedding covariance as the reference keeps it: the top directions with their
        variances, the mean remaining variance in every other direction."""
        p = self.components.astype(np.float64)
        rest = np.eye(p.shape[1]) - p.T @ p
        return p.T @ np.diag(self.variances.astype(np.float64)) @ p + self.residual_variance * rest

    def inversion(self, embeddings: np.ndarray) -> np.ndarray:
        """(B,) projection on the chest -> inverted-chest discriminant."""
        return (np.atleast_2d(embeddings).astype(np.float32) - self.mean) @ self.inverted_direction

    def with_thresholds(self, threshold: float, inverted_threshold: float, layout_threshold: float = np.inf,
                        layout_margin: float = 1.0) -> ChestReference:
        from dataclasses import replace

        return replace(self, threshold=float(threshold), inverted_threshold=float(inverted_threshold),
                       layout_threshold=float(layout_threshold), layout_margin=float(layout_margin))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, mean=self.mean, components=self.components, variances=self.variances,
                            residual_variance=np.float64(self.residual_variance), threshold=np.float64(self.threshold),
                            inverted_direction=self.inverted_direction,
                            inverted_threshold=np.float64(self.inverted_threshold),
                            encoder_sha256=np.str_(self.encoder_sha256), built_from=np.str_(self.built_from),
                            **({} if self.layout is None else {
                                "layout_mean": self.layout.mean, "layout_components": self.layout.components,
                                "layout_variances": self.layout.variances,
                                "layout_residual_variance": np.float64(self.layout.residual_variance),
                                "layout_threshold": np.float64(self.layout_threshold),
                                "layout_margin": np.float64(self.layout_margin)}))

    @classmethod
    def load(cls, path: str | Path) -> ChestReference:
        with np.load(path, allow_pickle=False) as data:
            layout = (Spread(data["layout_mean"].astype(np.float32), data["layout_components"].astype(np.float32),
                             data["layout_variances"].astype(np.float32), float(data["layout_residual_variance"]))
                      if "layout_mean" in data.files else None)
            return cls(mean=data["mean"].astype(np.float32), components=data["components"].astype(np.float32),
                       variances=data["variances"].astype(np.float32),
                       residual_variance=float(data["residual_variance"]), threshold=float(data["threshold"]),
                       inverted_direction=data["inverted_direction"].astype(np.float32),
                       inverted_threshold=float(data["inverted_threshold"]),
                       encoder_sha256=str(data["encoder_sha256"]), built_from=str(data["built_from"]),
                       layout=layout, layout_threshold=float(data["layout_threshold"]) if layout else np.inf,
                       layout_margin=float(data["layout_margin"]) if layout else 1.0)


def bundle_reference(bundle: Bundle) -> ChestReference | None:
    """The bundle's chest-film reference, or None when it has none or it was made with another image encoder."""
    if not bundle.has(OOD_REFERENCE_NPZ):
        return None
    try:
        ref = ChestReference.load(bundle.file(OOD_REFERENCE_NPZ))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        log.warning("%s: the chest-film reference cannot be read (%s); pixel checks only", bundle.name, exc)
        return None
    encoder = bundle.manifest.get("files", {}).get(IMAGE_ONNX, {}).get("sha256")
    if encoder is not None and encoder != ref.encoder_sha256:
        log.info("%s: the chest-film reference was made with another image encoder; pixel checks only", bundle.name)
        return None
    return ref


# the embedding check's words (see the module docstring); "most": the threshold leaves about 1 % of the training
# sources' own films beyond it, and a GUI walk read "unlike the chest films" as false for an NIH or Kermany film
FAR = "this image is unlike most chest films the model was trained on"  # a clause: a GUI walk read a fragment
# and the consequence right after it: the Zero-shot tab shows the first words of a warning on one line (a GUI walk
# read "…and lies on th…" with "may not hold" left to the tooltip); a table cell shows FAR_BRIEF
FAR_BRIEF = "unlike training films"


def embedding_reasons(embedding: np.ndarray | None, reference: ChestReference | None,
                      layout: np.ndarray | None = None) -> list[str]:
    """Sentences for what the embedding and the layout (layout_features of the image's patch tokens) show (none
    without a reference)."""
    if reference is None or embedding is None:
        return []
    emb = np.atleast_2d(embedding)
    inverted = reference.inversion(emb)[0] > reference.inverted_threshold
    far = bool(reference.far(emb, None if layout is None else np.atleast_2d(layout))[0])
    if far and inverted:  # most inverted chest films are also far: the embedding cannot tell the two apart
        return [f"{FAR}, so its scores may not hold; it lies on the side of inverted films: another body part, a "
                "film displayed inverted (bones dark, air bright; check the file's photometric interpretation), or a "
                "chest film from a hospital, machine or processing the model has not seen."]
    if inverted:
        return ["looks inverted (bones dark, air bright): the model has only seen films with bones bright; check "
                "the file's photometric interpretation, or invert it"]
    if far:
        return [f"{FAR}, so its scores may not hold: another body part or view, or a chest film from a hospital, "
                "machine or processing the model has not seen."]
    return []


def image_warnings(pixels: np.ndarray, metadata: ImageMetadata, notes: Sequence[str],
                   embedding: np.ndarray | None, reference: ChestReference | None,
                   layout: np.ndarray | None = None) -> list[str]:
    """Why scores for this image may not be trustworthy, from its pixels and (with a reference) its embedding.
    An image the pixel checks already flag is not also said to be far from chest films (one cause is enough)."""
    reasons = pixel_reasons(pixel_facts(pixels, metadata, notes))
    for reason in embedding_reasons(embedding, reference, layout):
        if not (reasons and reason.startswith(FAR)):
            reasons.append(reason)
    return reasons


def all_warnings(image: Any, pixels: np.ndarray, embedding: np.ndarray | None,
                 reference: ChestReference | None, layout: np.ndarray | None = None) -> list[str]:
    """The tag check (inference.ood) and the content check of one Radiograph, tags first. `layout`: the image's
    layout_features, needed when the reference has a layout part."""
    from medflip_core.inference.ood import out_of_distribution

    return out_of_distribution(image.metadata) + image_warnings(pixels, image.metadata, image.notes, embedding,
                                                                reference, layout)
