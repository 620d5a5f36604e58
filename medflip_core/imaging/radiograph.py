"""The Radiograph: display-ready pixels, the modality values behind them, and non-identifying metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Tags that identify a patient (or lead to one). They are kept apart from the metadata and never logged.
IDENTIFYING_KEYWORDS: frozenset[str] = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName", "OtherPatientIDs",
    "OtherPatientNames", "OtherPatientIDsSequence", "PatientComments", "AccessionNumber", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "PhysiciansOfRecord", "RequestingPhysician", "StudyID", "IssuerOfPatientID", "MilitaryRank",
    "EthnicGroup", "PatientWeight", "PatientSize", "StationName", "DeviceSerialNumber",
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
    number_of_frames: int = 1
    sop_class: str = ""
    species: str = ""  # PatientSpeciesDescription, for veterinary images
    acquisition_description: str = ""  # protocol / processing descriptions, e.g. "CANINE LATERAL THORAX"
    dicom_tags: tuple[tuple[str, str, str], ...] = ()  # (tag, keyword, value), identifying ones excluded

    @property
    def inverted(self) -> bool:
        """MONOCHROME1: low values are bright; the display inverts them."""
        return self.photometric == "MONOCHROME1"


@dataclass(frozen=True)
class Radiograph:
    pixels: np.ndarray  # float32 (H, W) in [0, 1], display-ready: windowed and inverted if MONOCHROME1
    raw: np.ndarray  # float32 (H, W) modality values (after rescale, before windowing / inversion)
    metadata: ImageMetadata
    patient: dict[str, str] = field(default_factory=dict, repr=False)  # identifying tags, never logged
    notes: tuple[str, ...] = ()
    identifying_tags: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)

    @property
    def path(self) -> Path:
        return Path(self.metadata.source_path)

    def all_tags(self, reveal_identifying: bool = False) -> list[tuple[str, str, str]]:
        """Tags for a tag browser; identifying ones only when the user asked to reveal them."""
        tags = list(self.metadata.dicom_tags)
        if reveal_identifying:
            tags.extend(self.identifying_tags)
            tags.sort()
        return tags
