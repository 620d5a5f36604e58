"""The films of a folder to label: their names, patients, embeddings, and the ones not offered as chest films.

- Patient: the DICOM header's PatientID, written as a pseudonym (`pt-` + 16 hex digits of an HMAC-SHA256 under a
  key kept in the user data folder, so the same patient gets the same pseudonym in every folder labelled on this
  machine and the CSV carries no identifying tag); otherwise the file-name patterns the app knows
  (`data.image_folder.patient_id_from_name`: Kermany `personN_`, NIH 8 digits, `patientNNNNN`, `IM-NNNN`); a file
  that matches none is its own patient. The PatientID itself is never logged, printed or written.
- Flags: a film the model should not be asked about is flagged, never offered as a chest film:
  out of distribution (`inference.ood.out_of_distribution` on the DICOM header: not a chest, not a radiograph, an
  animal, a lateral view; then `inference.image_ood` on the pixels: colour, noise, blank, too small or long), a
  duplicate (the same bytes as a film earlier in the folder, or the same picture: the correlation of the two
  films' 32 x 32 thumbnails >= DUPLICATE_CORRELATION), or unreadable. A film far from the training chest films
  (the bundle's chest-film reference) is offered with that caution shown: that check also catches about 2 % of
  real chest films (`medflip bench ood`), which the researcher should still be able to label.
- Embeddings: the base model's frozen image tower through the probe's on-disk cache (`finetune.embedding_cache`,
  keyed by the file's content), in batches, so a folder is embedded once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.atomic import write_text_atomic
from medflip_core.data.image_folder import patient_id_from_name
from medflip_core.errors import MedflipError
from medflip_core.finetune.embedding_cache import EmbeddingCache, content_hash, model_key
from medflip_core.imaging import iter_image_files, load_image
from medflip_core.imaging.exposure import film_exposure
from medflip_core.imaging.folders import is_dicom_file
from medflip_core.inference.engine import Engine
from medflip_core.inference.image_ood import embedding_reasons, layout_features, pixel_facts, pixel_reasons
from medflip_core.inference.ood import out_of_distribution

# The image embeddings cannot tell a copy from another film (distinct Kermany films have cosine 0.98-0.999 to their
# nearest neighbour), so duplicates are found on the pixels: the correlation of 32 x 32 area-averaged thumbnails.
# Measured on 80 Kermany and 150 NIH films: distinct films at most 0.970 (median nearest 0.86); the same CR film
# stored uncompressed, as lossless and as lossy JPEG 2000 (shared dicom/RG1_*): 1.000.
DUPLICATE_CORRELATION = 0.995
FINGERPRINT_SIDE = 32


def fingerprint(pixels: np.ndarray, side: int = FINGERPRINT_SIDE) -> np.ndarray:
    """(side * side,) zero-mean unit-norm area-averaged thumbnail of the display pixels."""
    px = np.asarray(pixels, dtype=np.float64)
    h, w = px.shape[:2]
    ys = np.linspace(0, h, side + 1).astype(int)
    xs = np.linspace(0, w, side + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(px, ys[:-1], axis=0), xs[:-1], axis=1)
    area = np.outer(np.maximum(np.diff(ys), 1), np.maximum(np.diff(xs), 1))
    t = (sums / area).ravel()
    t = t - t.mean()
    return t / max(float(np.linalg.norm(t)), 1e-9)


def _patient_key() -> bytes:
    from medflip_core.resources import user_data_dir

    path = user_data_dir() / "labelling" / "patient-pseudonym.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    key = os.urandom(32).hex().encode()
    write_text_atomic(path, key.decode())
    return path.read_bytes()


def pseudonym(patient_id: str, key: bytes | None = None) -> str:
    """The pseudonym written for a DICOM PatientID (stable on this machine, not reversible without the key)."""
    digest = hmac.new(key or _patient_key(), patient_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"pt-{digest[:16]}"


def dicom_patient(path: Path) -> str:
    """The PatientID of a DICOM file's header ('' when absent or unreadable); never logged."""
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
        return str(ds.get("PatientID", "") or "").strip()
    except Exception:  # a damaged header: the file name decides the patient
        return ""


def patient_of(path: Path, key: bytes | None = None) -> str:
    """The patient written for a film: a pseudonym of the DICOM PatientID, else the file-name patterns."""
    if is_dicom_file(path):
        given = dicom_patient(path)
        if given:
            return pseudonym(given, key)
    return patient_id_from_name(path.name)


@dataclass
class Film:
    path: Path
    name: str  # relative to the labelled folder (the CSV's Image Index)
    patient: str
    key: str = ""  # sha256 of the file's bytes
    flags: list[str] = field(default_factory=list)  # why it is not offered as a chest film
    cautions: list[str] = field(default_factory=list)  # offered, but shown with these words
    exposure: tuple[float, float] | None = None  # mean and spread of its model input (imaging.exposure)

    @property
    def offered(self) -> bool:
        return not self.flags


def list_films(folder: str | Path, key: bytes | None = None) -> list[Film]:
    """Every image under `folder` (sorted by name), with its patient. Clear error for a missing or empty folder."""
    root = Path(folder)
    if not root.is_dir():
        raise MedflipError(f"{root} is not a folder: choose the folder of films to label.")
    key = key or _patient_key()
    films = []
    for path in iter_image_files(root):
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:  # a DICOMDIR may point elsewhere
            name = str(path)
        films.append(Film(path, name, patient_of(path, key)))
    return films


def embed_films(films: list[Film], engine: Engine, cache_dir: str | Path, batch_size: int = 16,
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """(N, D) embeddings of the films (NaN rows for the unreadable ones, which get a flag); out-of-distribution
    and duplicate flags set on the way. Embeddings come from, and go to, the probe's on-disk cache."""
    cache = EmbeddingCache(cache_dir, model_key(engine.bundle))
    reference = engine.ood_reference  # the bundle's chest-film reference, when it has one
    # the layout check (inference.image_ood) reads patch tokens, which the embedding cache does not keep: each
    # film's layout features are cached beside its embedding (films cached before the check are embedded again)
    layouts = (EmbeddingCache(cache_dir, model_key(engine.bundle) + "-layout")
               if reference is not None and reference.layout is not None else None)
    for film in films:
        try:
            film.key = content_hash(film.path)
        except OSError as exc:
            film.key = f"unreadable:{film.path}"
            cache.failed[film.key] = f"{film.name}: cannot read the file ({exc.strerror})"
    seen: dict[str, int] = {}
    todo = []
    for i, film in enumerate(films):
        if film.key in seen:
            film.flags.append(f"duplicate of {films[seen[film.key]].name} (the same file content)")
        else:
            seen[film.key] = i
            todo.append(i)
    prints = np.full((len(films), FINGERPRINT_SIDE ** 2), np.nan)
    done = 0
    for start in range(0, len(todo), batch_size):
        if should_stop is not None and should_stop():
            break
        chunk = todo[start:start + batch_size]
        images, keys, failed = [], [], {}
        for i in chunk:
            film = films[i]
            try:
                rg = load_image(film.path)
            except MedflipError as exc:
                failed[film.key] = str(exc)
                continue
            film.flags.extend(out_of_distribution(rg.metadata)  # the header, then the pixels (inference.image_ood)
                              + pixel_reasons(pixel_facts(rg.pixels, rg.metadata, rg.notes)))
            prints[i] = fingerprint(rg.pixels)
            film.exposure = tuple(map(float, film_exposure(rg, engine.pre)))
            if film.key not in cache.embeddings or (layouts is not None and film.key not in layouts.embeddings):
                images.append(rg)
                keys.append(film.key)
        if images or failed:
            embedded = engine.embed_images(images) if images else None
            emb = embedded.embedding if embedded is not None else []
            cache.add(dict(zip(keys, emb, strict=True)), failed)
            if layouts is not None and embedded is not None:
                layouts.add(dict(zip(keys, layout_features(embedded.patch_tokens, embedded.grid), strict=True)))
        done += len(chunk)
        if progress is not None:
            progress(done, len(todo))
    dim = engine.bundle.embed_dim
    out = np.full((len(films), dim), np.nan, dtype=np.float32)
    for i, film in enumerate(films):
        if film.key in cache.embeddings:
            out[i] = cache.embeddings[film.key]
        elif film.key in cache.failed and not any(f.startswith("unreadable") for f in film.flags):
            film.flags.append(f"unreadable: {cache.failed[film.key]}")
    for i, film in enumerate(films):  # far from the training chest films: offered with a caution, not held back
        if not film.flags and np.isfinite(out[i]).all():  # (it also catches some real chest films: bench ood)
            layout = layouts.embeddings.get(film.key) if layouts is not None else None
            if layouts is None or layout is not None:
                film.cautions.extend(embedding_reasons(out[i], reference, layout))
    flag_same_pictures(films, prints)
    return out


def flag_same_pictures(films: list[Film], prints: np.ndarray, threshold: float = DUPLICATE_CORRELATION) -> None:
    """Flag a film whose thumbnail is the same picture as an earlier film's (correlation >= threshold)."""
    ok = np.flatnonzero(np.isfinite(prints).all(axis=1))
    x = prints[ok]
    for start in range(0, len(ok), 512):
        sims = x[start:start + 512] @ x.T
        for r in range(sims.shape[0]):
            i = start + r
            earlier = np.flatnonzero(sims[r, :i] >= threshold)
            film = films[ok[i]]
            if len(earlier) and not any(f.startswith("duplicate") for f in film.flags):
                j = int(earlier[0])
                film.flags.append(f"duplicate of {films[ok[j]].name} (the same picture: thumbnail correlation "
                                  f"{sims[r, j]:.3f})")
