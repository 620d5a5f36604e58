"""The Radiograph: display-ready pixels, the modality values behind them, and non-identifying metadata; the pixels
held, or decoded on demand into a bounded cache."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medflip_core.imaging.tag_rows import TagRow, in_file_order

# Tags that identify a patient (or lead to one). They are kept apart from the metadata and never logged.
IDENTIFYING_KEYWORDS: frozenset[str] = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName", "OtherPatientIDs",
    "OtherPatientNames", "OtherPatientIDsSequence", "PatientComments", "AccessionNumber", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "PhysiciansOfRecord", "RequestingPhysician", "StudyID", "IssuerOfPatientID", "MilitaryRank",
    "EthnicGroup", "PatientWeight", "PatientSize", "StationName", "DeviceSerialNumber",
    # free text about the patient, and identifiers that link a film to its patient's records (the DICOM
    # confidentiality profile's list, PS3.15 Annex E; a GUI walk read "Damaged Mitral Valve" in the Tags tab)
    "AdditionalPatientHistory", "PatientState", "MedicalAlerts", "Allergies", "PregnancyStatus", "SmokingStatus",
    "Occupation", "PatientReligiousPreference", "CountryOfResidence", "RegionOfResidence", "BranchOfService",
    "PatientBirthName", "ResponsiblePerson", "ResponsibleOrganization", "CurrentPatientLocation",
    "PatientInsurancePlanCodeSequence", "InstitutionalDepartmentName", "InstitutionCodeSequence",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "NameOfPhysiciansReadingStudy",
    "RequestingService", "AdmissionID", "RequestedProcedureID", "PerformedProcedureStepID",
    "ScheduledProcedureStepID", "ImageComments", "StudyComments", "RequestedProcedureComments",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "InstanceCreatorUID",
    "IrradiationEventUID", "DeviceUID", "ReferencedSOPInstanceUID", "ReferencedFrameOfReferenceUID",
    "RelatedFrameOfReferenceUID", "StorageMediaFileSetUID",
})


@dataclass(frozen=True)
class Window:
    """A linear VOI window in modality units; `source` says where it came from."""

    center: float
    width: float
    source: str  # "dicom" | "voi_lut" | "percentile" | "full"


@dataclass(frozen=True)
class ImageMetadata:
    source_path: str
    format: str
    rows: int
    columns: int
    photometric: str = ""
    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    bits_stored: int | None = None
    pixel_spacing: tuple[float, float] | None = None
    window: Window = field(default_factory=lambda: Window(0.5, 1.0, "full"))
    transfer_syntax: str = ""
    manufacturer: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: str = ""
    instance_number: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    number_of_frames: int = 1
    sop_class: str = ""
    species: str = ""  # PatientSpeciesDescription, for veterinary images
    acquisition_description: str = ""  # protocol / processing descriptions, e.g. "CANINE LATERAL THORAX"
    dicom_tags: tuple[TagRow, ...] = ()  # (tag, keyword, value, depth, order), identifying ones excluded

    @property
    def inverted(self) -> bool:
        """MONOCHROME1: low values are bright; the display inverts them."""
        return self.photometric == "MONOCHROME1"


THUMBNAIL_SIZE = 96  # longest side of the thumbnail an opened image keeps (the browser shows 48 px icons)
Arrays = tuple[np.ndarray, np.ndarray]  # (pixels, raw)


def make_thumbnail(pixels: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """uint8 (h, w), longest side at most `size`, by area averaging of the display pixels."""
    h, w = pixels.shape
    scale = min(1.0, size / max(h, w))
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    if (new_h, new_w) != (h, w):
        image = image.resize((new_w, new_h), Image.Resampling.BOX)
    return np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)


class Radiograph:
    """An image: non-identifying metadata, identifying tags kept apart, and its pixels.

    `pixels`: float32 (H, W) in [0, 1], display-ready (windowed, inverted if MONOCHROME1); `raw`: float32 (H, W)
    modality values (after rescale, before windowing / inversion). A reader (`load_image`) returns a Radiograph
    that holds both. An opened study keeps `without_pixels()` copies instead: metadata and a thumbnail only, and
    `pixels` / `raw` decode the file again through `load_image` (the same reader, the same windowing, so the
    same values) into a PixelCache bounded in megabytes (`medflip_core.imaging.pixel_cache`).
    """

    def __init__(self, pixels: np.ndarray | None = None, raw: np.ndarray | None = None,
                 metadata: ImageMetadata | None = None, patient: dict[str, str] | None = None,
                 notes: tuple[str, ...] = (), identifying_tags: tuple[TagRow, ...] = (), *,
                 thumbnail: np.ndarray | None = None, cache: Any = None) -> None:
        if metadata is None:
            raise TypeError("a Radiograph needs its metadata")
        if (pixels is None) != (raw is None):
            raise ValueError("pixels and raw are held together or decoded on demand together")
        self._pixels, self._raw = pixels, raw
        self.metadata = metadata
        self.patient = dict(patient or {})  # identifying tags, never logged
        self.notes = tuple(notes)
        self.identifying_tags = tuple(identifying_tags)
        self._thumbnail = thumbnail
        self._cache = cache  # a PixelCache, or None for the process's cache
        self._in_use: tuple[weakref.ref, weakref.ref] | None = None  # the last arrays decoded, while anyone holds them

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None, "_in_use": None}

    def __repr__(self) -> str:
        how = "held" if self._pixels is not None else "decoded on demand"
        return f"Radiograph({self.metadata.source_path!r}, {self.metadata.columns}x{self.metadata.rows}, {how})"

    @property
    def path(self) -> Path:
        return Path(self.metadata.source_path)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of `pixels`, known without decoding them."""
        return (self.metadata.rows, self.metadata.columns)

    # --- pixels --------------------------------------------------------------------------------------------
    @property
    def pixels(self) -> np.ndarray:
        return self.arrays()[0]

    @property
    def raw(self) -> np.ndarray:
        return self.arrays()[1]

    @property
    def on_demand(self) -> bool:
        """True when the pixels are decoded on demand (an opened study's image), False when held."""
        return self._pixels is None

    @property
    def cache(self) -> Any:
        if self._cache is not None:
            return self._cache
        from medflip_core.imaging.pixel_cache import default_cache

        return default_cache()

    @property
    def cache_key(self) -> str:
        return self.metadata.source_path

    def is_decoded(self) -> bool:
        """Whether `pixels` is available without decoding the file (held, in the cache, or still in use)."""
        if self._pixels is not None or self.cache_key in self.cache:
            return True
        return self._in_use is not None and self._in_use[0]() is not None and self._in_use[1]() is not None

    def arrays(self, keep: bool = True) -> Arrays:
        """(pixels, raw). `keep=False` decodes for one use without filling the cache (a scan over many images
        must not push the image on screen out). Raises ImageLoadError when the file cannot be read again."""
        if self._pixels is not None:
            return self._pixels, self._raw  # type: ignore[return-value]
        if self._in_use is not None:  # still held by someone (the viewer showing it): no decode, even if evicted
            pixels, raw = self._in_use[0](), self._in_use[1]()
            if pixels is not None and raw is not None:
                return pixels, raw
        arrays = self.cache.fetch(self.cache_key, self._decode, keep)
        self._in_use = (weakref.ref(arrays[0]), weakref.ref(arrays[1]))
        return arrays

    def _decode(self) -> Arrays:
        from medflip_core.imaging import load_image

        fresh = load_image(self.path)
        self._check_shape(fresh._pixels)  # type: ignore[arg-type]
        return fresh._pixels, fresh._raw  # type: ignore[return-value]

    def _check_shape(self, pixels: np.ndarray) -> None:
        from medflip_core.errors import ImageLoadError

        if pixels.shape != self.shape:
            rows, columns = pixels.shape[:2]
            raise ImageLoadError(
                f"{self.path.name}: the file changed since it was opened ({self.metadata.columns}x{self.metadata.rows}"
                f" then, {columns}x{rows} now); open it again."
            )

    def adopt(self, arrays: Arrays, keep: bool = True) -> Arrays:
        """Pixels of this image's file decoded elsewhere by `load_image` (a worker process: see
        `medflip_core.imaging.reader_processes`), taken as if `arrays()` had decoded them: checked against the
        size the image was opened with, and kept in the cache when `keep`. Raises ImageLoadError."""
        if self._pixels is not None:
            return self._pixels, self._raw  # type: ignore[return-value]
        self._check_shape(arrays[0])
        if keep:
            self.cache.put(self.cache_key, arrays)
        self._in_use = (weakref.ref(arrays[0]), weakref.ref(arrays[1]))
        return arrays

    def use_cache(self, cache: Any) -> None:
        """Decode into this PixelCache from now on (an image read in a worker process comes without one)."""
        self._cache = cache

    @property
    def thumbnail(self) -> np.ndarray:
        """uint8 (h, w), longest side at most THUMBNAIL_SIZE."""
        if self._thumbnail is None:
            self._thumbnail = make_thumbnail(self.pixels)
        return self._thumbnail

    def without_pixels(self, cache: Any = None, keep: bool = False) -> Radiograph:
        """The same image keeping only metadata and thumbnail; its pixels decoded on demand (into `cache`).
        `keep`: the pixels in hand go into the cache (the image about to be shown need not be decoded twice)."""
        light = Radiograph(None, None, self.metadata, self.patient, self.notes, self.identifying_tags,
                           thumbnail=self.thumbnail, cache=cache)
        if keep:
            light.cache.put(light.cache_key, self.arrays())
        return light

    # --- tags ----------------------------------------------------------------------------------------------
    def all_tags(self, reveal_identifying: bool = False) -> list[TagRow]:
        """Tags for a tag browser, in the file's order (a sequence's items under it); identifying ones only when
        the user asked to reveal them."""
        return in_file_order(self.metadata.dicom_tags, self.identifying_tags if reveal_identifying else ())
