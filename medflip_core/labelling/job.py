"""One labelling job without Qt: the films of a folder, the journal, the head, the next film, and the classifier it
ends in. The workspace (app/labelling/) drives it: cheap steps on the GUI thread (answer, skip, undo, back, next:
milliseconds, the journal's fsync included), slow ones in a worker (`prepare`: embedding the folder; `refit`: the
head and a learning-curve point; `make_classifier`), each of them pure given a snapshot, so the GUI never waits.

    job = LabellingJob(folder, ["No Finding", "Pneumonia"], multi_label=False)
    job.prepare()                      # embeddings (cached on disk), flags, the zero-shot head
    film = job.next()                  # the film to show
    job.answer(["Pneumonia"])          # on disk (journal + CSV) before it returns
    if job.refit_due(): job.set_head(*refit(job.snapshot()))
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medflip_core.data.patient_sides import MIN_PATIENTS_FOR_CLASSIFIER, filled_validation, is_validation_patient
from medflip_core.errors import MedflipError
from medflip_core.inference.engine import Engine
from medflip_core.labelling.films import Film, embed_films, list_films
from medflip_core.labelling.journal import CSV_NAME, LabelJournal
from medflip_core.labelling.learner import (
    CurvePoint,
    Head,
    Prior,
    fit_learner,
    head_from_prior,
    validation_point,
    zero_shot_prior,
)
from medflip_core.labelling.order import ORDERS, next_film

REFIT_EVERY = 5  # answers between two refits of the head
PLACES = ("user", "beside")
PLACE_NAMES = {"user": "in the user data folder", "beside": "beside the images"}


def label_place(folder: str | Path, where: str) -> Path:
    """Where the journal and CSV of `folder` live: beside the images, or <user data>/labels/<name>-<hash>."""
    folder = Path(folder).resolve()
    if where == "beside":
        return folder
    if where != "user":
        raise MedflipError(f"the labels go {' or '.join(PLACES)}, not {where!r}")
    from medflip_core.resources import user_data_dir

    tag = hashlib.sha256(str(folder).encode("utf-8")).hexdigest()[:8]
    return user_data_dir() / "labels" / f"{folder.name}-{tag}"


@dataclass
class Snapshot:
    """What a refit needs, copied on the GUI thread so the worker shares nothing with it."""

    x_train: np.ndarray
    y_train: np.ndarray
    train_patients: list[str]
    x_val: np.ndarray
    y_val: np.ndarray
    val_patients: list[str]
    labels_given: int
    prior: Prior
    pool: np.ndarray  # every readable film's embedding (standardises the features)
    strength: float | None = None  # None: choose it by cross-validation (40 fits) in this refit


def refit(snap: Snapshot) -> tuple[Head, CurvePoint | None]:
    """The head on the training answers and its validation point (the worker's part: about a second)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        head = fit_learner(snap.x_train, snap.y_train, snap.train_patients, snap.prior, pool=snap.pool,
                           strength=snap.strength)
        point = validation_point(head, snap.prior, snap.x_val, snap.y_val, snap.val_patients, snap.labels_given)
    return head, point


@dataclass
class LabellingJob:
    folder: Path
    classes: list[str]
    multi_label: bool = False
    where: str = "user"
    order: str = "uncertainty"
    seed: int = 0
    model: str | Path | None = None  # the base model (default: the bundled one)
    cache_dir: str | Path | None = None
    engine: Engine | None = None
    films: list[Film] = field(init=False)
    journal: LabelJournal = field(init=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()
        if self.order not in ORDERS:
            raise MedflipError(f"order must be one of {', '.join(ORDERS)}")
        self.place = label_place(self.folder, self.where)
        self.films = list_films(self.folder)  # before the journal: a wrong folder creates nothing
        self.journal = LabelJournal(self.place, self.folder, self.classes, self.multi_label)
        self.classes = self.journal.classes
        self.by_name = {f.name: i for i, f in enumerate(self.films)}
        self.validation = [is_validation_patient(f.patient, self.seed) for f in self.films]
        self.embeddings: np.ndarray | None = None
        self.prior: Prior | None = None
        self.head: Head | None = None
        self.probs: np.ndarray | None = None
        self.curve: list[CurvePoint] = []
        self.current: int | None = None
        self.current_chosen_by = ""
        self.trail: list[int] = []  # films shown, for Back
        self.refit_at = -1  # answers when the head was last fitted
        self._strength_chosen_at = 0  # training answers when the penalty was last chosen by cross-validation
        self.prepared = False
        self._usable_for: np.ndarray | None = None
        self._usable_rows: list[bool] = []

    # --- the slow part, in a worker -----------------------------------------------------------------------
    def prepare(self, progress=None, should_stop=None) -> None:
        """Embed the folder (cached on disk), flag films, set up the zero-shot head."""
        from medflip_core.bundles.model_store import resolve_model
        from medflip_core.finetune.probe import default_cache_dir

        if self.engine is None:
            self.engine = Engine(resolve_model(self.model))
        if not self.engine.has_text:
            raise MedflipError(f"{self.engine.bundle.name} has no text encoder, so it has no zero-shot prior: "
                               "choose a base model (e.g. medflip-default) for labelling.")
        self.embeddings = embed_films(self.films, self.engine, self.cache_dir or default_cache_dir(),
                                      progress=progress, should_stop=should_stop)
        self.prior = zero_shot_prior(self.engine, self.classes, self.multi_label)
        self.set_head(head_from_prior(self.prior), None)
        self.prepared = True

    # --- state --------------------------------------------------------------------------------------------
    @property
    def answers(self) -> dict:
        return self.journal.answers

    @property
    def answered(self) -> int:
        return len(self.journal.answers)

    def counts(self) -> dict[str, int]:
        return self.journal.state.counts()

    def flagged(self) -> list[Film]:
        return [f for f in self.films if f.flags]

    def remaining(self) -> int:
        return len(self._available())

    def _available(self, exclude: int | None = None) -> list[int]:
        done = set(self.journal.answers) | self.journal.state.skipped
        usable = self._usable()
        return [i for i, f in enumerate(self.films)
                if usable[i] and f.name not in done and not f.flags and i != exclude]

    def _usable(self) -> list[bool]:
        """Per film: it has an embedding (all films before the folder is embedded). Computed once per embedding:
        the GUI thread asks three times an answer, and a per-film NumPy check cost ~9 ms a time on 5,000 films."""
        if self.embeddings is None:
            return [True] * len(self.films)
        if self._usable_for is not self.embeddings:
            self._usable_rows = np.isfinite(self.embeddings).all(axis=1).tolist()
            self._usable_for = self.embeddings
        return self._usable_rows

    def answered_patients(self) -> Counter:
        return Counter(a.patient for a in self.journal.answers.values())

    def summary(self) -> str:
        counts = ", ".join(f"{c} {n}" for c, n in self.counts().items())
        cautioned = sum(1 for f in self.films if f.cautions and not f.flags)
        caution = f", {cautioned} offered with a caution (unlike most chest films the model knows)" if cautioned else ""
        return (f"{self.answered} labelled ({counts}), {len(self.journal.state.skipped)} skipped, "
                f"{self.remaining()} to go, {len(self.flagged())} flagged and not offered{caution}")

    # --- the quick part, on the GUI thread ------------------------------------------------------------------
    def next(self) -> Film | None:
        """Choose and show the next film (None when every offered film is answered or skipped)."""
        index, how = next_film(self.order, self._available(), [f.patient for f in self.films],
                               self.answered_patients(), self.answered, self.probs, self.multi_label, self.seed,
                               self.validation)
        return self._show(index, how)

    def peek(self) -> Film | None:
        """The film likely to come after the one shown (to read it ahead; the head may change the choice)."""
        index, _ = next_film(self.order, self._available(exclude=self.current), [f.patient for f in self.films],
                             self.answered_patients(), self.answered + 1, self.probs, self.multi_label, self.seed,
                             self.validation)
        return None if index is None else self.films[index]

    def _show(self, index: int | None, how: str) -> Film | None:
        self.current, self.current_chosen_by = index, how
        if index is None:
            return None
        if not self.trail or self.trail[-1] != index:
            self.trail.append(index)
        return self.films[index]

    @property
    def film(self) -> Film | None:
        return None if self.current is None else self.films[self.current]

    def answer(self, labels: list[str]) -> Film | None:
        """Record the answer for the film shown (journal + CSV, fsynced), then show the next film."""
        film = self.film
        if film is None:
            raise MedflipError("There is no film to label.")
        self.journal.label(film.name, labels, film.patient, self.current_chosen_by)
        return self.next()

    def skip(self) -> Film | None:
        film = self.film
        if film is None:
            return None
        self.journal.skip(film.name, self.current_chosen_by)
        return self.next()

    def undo(self) -> Film | None:
        """Take back the latest answer or skip and show that film again."""
        record = self.journal.undo()
        if record is None:
            return self.film
        index = self.by_name.get(record["image"])
        return self._show(index, str(record.get("chosen_by", ""))) if index is not None else self.film

    def back(self) -> Film | None:
        """Show the film before the one shown (its answer stays until a new one replaces it)."""
        if self.current in self.trail:
            position = self.trail.index(self.current)
            if position > 0:
                self.current = self.trail[position - 1]
                answer = self.journal.answers.get(self.films[self.current].name)
                self.current_chosen_by = answer.chosen_by if answer else self.current_chosen_by
        return self.film

    def suggestion(self, index: int | None = None) -> dict[str, float]:
        """The current head's probabilities for a film ({} before the folder is embedded)."""
        index = self.current if index is None else index
        if index is None or self.probs is None or not np.isfinite(self.probs[index]).all():
            return {}
        return {c: float(p) for c, p in zip(self.classes, self.probs[index], strict=True)}

    def head_kind(self) -> str:
        if self.head is None:
            return ""
        if self.head.trained_on == 0:
            return "zero-shot"
        # the training side's answers only, at the last refit (a GUI walk counted the validation films in)
        return f"learned from {self.head.trained_on} training answers, refitted every {REFIT_EVERY}"

    # --- the head -------------------------------------------------------------------------------------------
    def refit_due(self) -> bool:
        return self.prepared and self.answered - max(self.refit_at, 0) >= REFIT_EVERY

    def _indicator(self, answers: list) -> np.ndarray:
        y = np.zeros((len(answers), len(self.classes)))
        for r, a in enumerate(answers):
            for lb in a.labels:
                y[r, self.classes.index(lb)] = 1.0
        return y

    def sides(self, fill: bool = False) -> tuple[list, list, list[str]]:
        """The answers of training and of validation patients (answers of films no longer in the folder: out),
        and the patients moved to the validation side: with `fill` (a classifier), every class short of
        MIN_PATIENTS_FOR_CLASSIFIER validation patients gets training patients moved over where it has enough."""
        rows = []
        for a in self.journal.answers.values():
            index = self.by_name.get(a.image)
            if index is None or self.embeddings is None or not np.isfinite(self.embeddings[index]).all():
                continue
            rows.append((index, a))
        val_side = [self.validation[i] for i, _ in rows]
        moved: list[str] = []
        if fill:
            val_side, moved = filled_validation([a.patient for _, a in rows], [a.labels for _, a in rows], val_side,
                                                self.classes, MIN_PATIENTS_FOR_CLASSIFIER, self.seed)
        train = [r for r, v in zip(rows, val_side, strict=True) if not v]
        val = [r for r, v in zip(rows, val_side, strict=True) if v]
        return train, val, moved

    def snapshot(self, fill: bool = False) -> Snapshot:
        if self.embeddings is None or self.prior is None:
            raise MedflipError("The folder is still being read.")
        train, val, _ = self.sides(fill)
        self.refit_at = self.answered
        # the penalty is chosen again (cross-validation: 40 small fits) whenever the training answers have doubled
        # since it was last chosen; in between, each refit reuses it (one fit: the GUI process stays light)
        strength = None
        if self.head is not None and self.head.trained_on and math.isfinite(self.head.strength) and \
                len(train) < 2 * self._strength_chosen_at:
            strength = self.head.strength
        elif len(train):
            self._strength_chosen_at = max(len(train), 1)
        return Snapshot(self.embeddings[[i for i, _ in train]].copy(), self._indicator([a for _, a in train]),
                        [a.patient for _, a in train], self.embeddings[[i for i, _ in val]].copy(),
                        self._indicator([a for _, a in val]), [a.patient for _, a in val], self.answered,
                        self.prior, self.embeddings[np.isfinite(self.embeddings).all(axis=1)], strength)

    def set_head(self, head: Head, point: CurvePoint | None) -> None:
        self.head = head
        if self.embeddings is not None:
            ok = np.isfinite(self.embeddings).all(axis=1)
            probs = np.full((len(self.films), len(self.classes)), np.nan)
            if ok.any():
                probs[ok] = head.probabilities(self.embeddings[ok])
            self.probs = probs
        if point is not None:
            self.curve.append(point)

    # --- the classifier -------------------------------------------------------------------------------------
    def classifier_request(self, out: str | Path, name: str | None = None) -> dict:
        """Everything `make_classifier` needs, copied on the GUI thread."""
        snap = self.snapshot(fill=True)
        train, val, moved = self.sides(fill=True)
        chosen = Counter(a.chosen_by or "unknown" for a in self.journal.answers.values())
        return {"snap": snap, "out": str(out), "name": name or Path(out).name, "classes": list(self.classes),
                "multi_label": self.multi_label, "engine": self.engine, "csv": str(self.place / CSV_NAME),
                "folder": str(self.folder), "order": self.order, "seed": self.seed, "chosen_by": dict(chosen),
                "train_keys": [self.films[i].key for i, _ in train], "val_keys": [self.films[i].key for i, _ in val],
                "exposure_train": self._exposure([i for i, _ in train]),
                "exposure_val": self._exposure([i for i, _ in val]), "labels_given": self.answered,
                "moved_to_validation": len(moved)}

    def _exposure(self, rows: list[int]) -> np.ndarray:
        """(n, 2) exposure numbers of these films (NaN for a film read without them)."""
        nan = (float("nan"), float("nan"))
        return np.array([self.films[i].exposure or nan for i in rows], dtype=np.float64).reshape(len(rows), 2)


def _moved_sentence(moved: int) -> str:
    if not moved:
        return ""
    return (f" {moved} patient{'s' if moved > 1 else ''} moved from the training side so that every class has "
            f"{MIN_PATIENTS_FOR_CLASSIFIER} validation patients: chosen by their label, so the validation side's "
            "class mix is not that of a random quarter of the patients, and its figures (calibration, thresholds, "
            "CIs) rest on few patients.")


def make_classifier(request: dict, n_boot: int = 1000) -> Path:
    """The labels so far -> a calibrated classifier bundle, exactly as the probe writes one: calibration and
    thresholds on the validation patients (`finetune.validation.calibrate_on_validation`), the bundle writer
    and model card (`finetune.classifier_bundle`); the head is the learner's (zero-shot prior + the answers)."""
    from threadpoolctl import threadpool_limits

    from medflip_core.bundles.bundle import IMAGE_ONNX
    from medflip_core.finetune.classifier_bundle import write_classifier_bundle
    from medflip_core.finetune.exposure_check import check_classifier
    from medflip_core.finetune.probe import THRESHOLD_RULE
    from medflip_core.finetune.validation import calibrate_on_validation, patient_counts, validation_summary

    t0 = time.time()
    snap: Snapshot = request["snap"]
    classes, multi = request["classes"], request["multi_label"]
    for side, y, patients in (("training", snap.y_train, snap.train_patients),
                              ("validation", snap.y_val, snap.val_patients)):
        counts = patient_counts(y, patients) if len(y) else [(0, 0)] * len(classes)
        # a class's AUC needs patients with it and without it on each side (findings: absent ones too)
        short = [f"{pos} {c}" + (f" ({neg} without it)" if multi and neg < MIN_PATIENTS_FOR_CLASSIFIER else "")
                 for c, (pos, neg) in zip(classes, counts, strict=True)
                 if min(pos, neg) < MIN_PATIENTS_FOR_CLASSIFIER]
        if short:
            which = "this class" if len(short) == 1 else "these classes"
            raise MedflipError(f"Not enough labels yet for a classifier: the {side} side has {', '.join(short)} "
                               f"patients so far. Each class needs films of at least {MIN_PATIENTS_FOR_CLASSIFIER} "
                               f"patients with it and {MIN_PATIENTS_FOR_CLASSIFIER} without it on each side: label "
                               f"films of more patients of {which}.")
    engine: Engine = request["engine"]
    with threadpool_limits(1):
        head = fit_learner(snap.x_train, snap.y_train, snap.train_patients, snap.prior, pool=snap.pool)
        classifier, figures = calibrate_on_validation(classes, multi, head.weight, head.bias, snap.x_val,
                                                      snap.y_val, snap.val_patients, n_boot=n_boot)
    figures["data_set"] = f"validation patients of the labels in {request['csv']}"
    if "exposure_train" in request:
        figures["exposure_check"] = check_classifier(request["exposure_train"], snap.y_train, request["exposure_val"],
                                                     snap.y_val, snap.val_patients, classifier, figures, n_boot)
    data_hash = hashlib.sha256()
    for key, patient, row in sorted(zip(request["train_keys"] + request["val_keys"],
                                        snap.train_patients + snap.val_patients,
                                        np.vstack([snap.y_train, snap.y_val]).tolist(), strict=True)):
        data_hash.update(f"{key}\t{patient}\t{row}\n".encode())
    chosen = ", ".join(f"{n} {how}" for how, n in sorted(request["chosen_by"].items(), key=lambda kv: -kv[1]))
    labelling = {"labels": request["labels_given"], "chosen_by": request["chosen_by"], "order": request["order"],
                 "csv": request["csv"], "folder": request["folder"],
                 "sentence": f"{request['labels_given']} films labelled in MedFLIP Studio's labelling workspace "
                             f"(order: {request['order']}; chosen by: {chosen}); validation = the films of a random "
                             "quarter of the patients (fixed by patient id), never used to fit the head."
                             + _moved_sentence(request.get("moved_to_validation", 0)),
                 "moved_to_validation": request.get("moved_to_validation", 0)}
    provenance = {
        "data": {"source": request["csv"], "kind": "label CSV (labelling workspace)",
                 "sha256": data_hash.hexdigest(), "images_used": len(snap.y_train) + len(snap.y_val),
                 "patients": len(set(snap.train_patients) | set(snap.val_patients)), "images_skipped": 0,
                 "train_images": len(snap.y_train), "train_patients": len(set(snap.train_patients)),
                 "val_images": len(snap.y_val), "val_patients": len(set(snap.val_patients)), "notes": []},
        "config": {"val_fraction": "a quarter of the patients, by patient id" + (
                       f", and {request['moved_to_validation']} moved to fill a class"
                       if request.get("moved_to_validation") else ""), "seed": request["seed"],
                   "order": request["order"]},
        "command": "MedFLIP Studio > Labelling > Make classifier",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": time.time() - t0,
        "machine": f"{platform.system()} {platform.machine()}, {engine.providers[0]}",
        "labelling": labelling,
    }
    fields = {
        "name": request["name"],
        "base_model": {"name": engine.bundle.name, "path": str(engine.bundle.path),
                       "image_encoder_sha256": engine.bundle.manifest["files"][IMAGE_ONNX]["sha256"]},
        "classifier": {"threshold_rule": THRESHOLD_RULE, "mode": "probe",
                       "head_fit": "logistic regression starting from the base model's zero-shot classifier (its "
                                   "text embeddings as prior; L2 on the change from it), class-balanced weights, "
                                   f"{head.how}, on {head.trained_on} training films"},
        "provenance": provenance,
        "validation": validation_summary(figures),
    }
    return write_classifier_bundle(request["out"], engine.bundle, classifier, fields, figures)
