"""Training configuration: a dataclass read from a YAML/TOML file and overridden by CLI flags.

The model's shape is not copied here: `model` nests medflip_core's ModelConfig (the one definition,
also written into checkpoints and bundle manifests). Its fields are still accepted flat (`vision: ...`
in a file, `--vision` on the command line) and mapped into `model`.
The resolved configuration is written next to every run (config.json) so a run can be repeated and resumed.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from medflip_core.bundles.checkpoint_layout import model_config_source
from medflip_core.errors import MedflipError
from medflip_core.imaging.decode_pool import DECODE_IN
from medflip_core.masking import MASK_STRATEGIES, MAX_MASK_RATIO, mask_ratio_problem
from medflip_core.model.config import ModelConfig
from trainer.precision import AMP_CHOICES


@dataclass
class TrainConfig:
    job: str = "pretrain"  # pretrain | finetune
    out_dir: str = "runs/medflip"
    # data
    images: list[str] = field(default_factory=list)  # ImageFolder roots (one sub-folder per class)
    corpus: str | None = None  # reports / sentences for unpaired pre-training (Open-i XML, tgz, CSV, TXT)
    pairs_csv: str | None = None  # paired mode: CSV with image path + report text columns
    class_map: str | None = None  # JSON: class folder -> label names
    patient_pattern: str | None = None  # regex, group 1 = patient id in a file name
    val_fraction: float = 0.15
    max_images: int | None = None  # subset (smoke runs)
    max_sentences: int | None = None
    corpus_holdout: float = 0.0  # share of reports held out of training for retrieval evaluation (split by report)
    extra_sources: list[str] = field(default_factory=list)  # label CSVs (NIH / CheXpert style) added to --images
    source_weights: str | None = None  # "0.5,0.5": draw share per source (images..., extra_sources...); "size":
    # in proportion to the sources' image counts; None: today's epoch-wise shuffle when there are no extra
    # sources, else equal weights + class balance
    sample_within_source: str = "class"  # "class": a uniform class (no finding / finding), then an image;
    # "image": a uniform image of the source (its own class mix)
    unlabelled: list[str] = field(default_factory=list)  # folders of images without labels: reconstruction only
    unlabelled_batch_size: int | None = None  # unlabelled images per step and process (None: --batch-size)
    augment: bool = False  # train-only radiograph augmentation (medflip_core.imaging.augment) before preprocessing
    image_cache_mb: float = 2048  # decoded training + validation images kept in memory, per process (0 = off)
    max_val_images: int | None = 400
    # model (shape: medflip_core.model.config.ModelConfig; an --init-from bundle or checkpoint supplies it)
    model: ModelConfig = field(default_factory=ModelConfig)
    text_train: str = "partial"  # frozen | partial | full
    text_cache_mb: float = 512  # partial / frozen: the frozen text layers computed once per sentence (0 = off)
    init_from: str | None = None  # a bundle or checkpoint folder (or its safetensors weights) to start from
    # loss
    loss: str = "medflip"  # medflip | medclip | infonce
    beta: float = 0.1
    svd_reading: str = "token"  # token | batch
    svd_power_iters: int = 20  # = losses.SVD_POWER_ITERS (not imported: torch); 0 = full SVD
    mask_ratio: float = 0.75
    mask_strategy: str = "random"  # random | integrity | attention (medflip_core.masking)
    mask_guided_share: float = 0.5  # integrity/attention: share of the dropped patches chosen by score
    mim_weight: float = 0.0  # masked image modelling: weight of the reconstruction loss (0: no decoder at all)
    clip_weight: float = 1.0  # weight of the image-text loss; 0 = reconstruction only (an MAE phase, no text pass)
    decoder_depth: int = 2  # the MIM decoder's transformer blocks (medflip_core/model/mim_decoder.py)
    decoder_width: int = 64  # ... and their width (a multiple of 32: one attention head per 32)
    pair_identity_weight: float = 0.5  # paired data: target weight on the true pair (rest: label soft targets)
    # fine-tuning (job finetune: trainer/finetune.py; the frozen-tower probe is `medflip finetune --mode probe`)
    finetune_mode: str = "partial"  # partial (top blocks + head) | full
    labels: str | None = None  # classes to learn, comma-separated (default: every class of the data)
    image_root: str | None = None  # where a label CSV's image paths start (default: the CSV's folder)
    bundle_out: str | None = None  # the classifier bundle written at the end (none: checkpoints only)
    val_patients: str | None = None  # a text file of patient ids (one a line): exactly these are validation
    tune_blocks: int = 2  # partial: how many of the top transformer blocks train
    head_lr: float = 1e-3
    early_stop_patience: int = 4  # evaluations (every eval_every steps) without a better validation AUC
    n_boot: int = 1000  # bootstrap resamples (over patients) for the bundle's validation CIs
    # optimisation
    batch_size: int = 32
    epochs: float | None = None
    max_steps: int | None = None
    budget_minutes: float | None = None
    lr: float = 5e-4
    text_lr: float = 2e-5
    weight_decay: float = 0.05
    warmup_steps: int = 50
    schedule: str = "cosine"  # cosine | constant
    grad_accum: int = 1
    amp: str = "auto"  # auto | on | off | bf16 | fp16 (trainer/precision.py: auto = CUDA only, bf16 if supported)
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    num_workers: int = 0  # loader threads (0: decode in the training loop)
    decode_in: str = "threads"  # threads | processes: the loader's workers decode in threads, or each hands its
    # file to a worker process (JPEG 2000 DICOMs: their decoder holds the GIL; medflip_core/imaging/decode_pool.py)
    # run control
    log_every: int = 1
    eval_every: int = 200
    checkpoint_every: int = 50
    keep_last: int = 2
    events: str = "-"  # "-" for stdout, else a file path
    resume: bool = False

    def validate(self) -> None:
        if self.finetune_mode == "linear":
            raise MedflipError("--finetune-mode linear became the probe: `medflip finetune --mode probe` (no torch, "
                               "cached embeddings); the trainer fine-tunes the tower: partial or full")
        if self.svd_reading == "batch":
            raise MedflipError("the batch SVD reading was removed (collapsing the embeddings minimised it; "
                               "docs/method-notes.md): use --svd-reading token")
        for name, allowed in CHOICES.items():
            value = getattr(self.model, name) if name in MODEL_FIELDS else getattr(self, name)
            if value not in allowed:
                raise MedflipError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0.0 <= self.pair_identity_weight <= 1.0:
            raise MedflipError("--pair-identity-weight must be between 0 and 1")
        if self.grad_accum < 1:
            raise MedflipError("--grad-accum must be at least 1")
        if isinstance(self.mask_ratio, bool) or not isinstance(self.mask_ratio, int | float):  # a config file's "0.5"
            raise MedflipError(f"--mask-ratio must be a number from 0 to {MAX_MASK_RATIO:g}, got {self.mask_ratio!r}")
        if problem := mask_ratio_problem(self.mask_ratio):
            raise MedflipError(f"--mask-ratio {problem}")
        if not 0.0 <= self.mask_guided_share <= 1.0:
            raise MedflipError(f"--mask-guided-share must be between 0 and 1, got {self.mask_guided_share}")
        if self.decode_in == "processes" and self.num_workers < 1:
            raise MedflipError("--decode-in processes needs --num-workers 1 or more (the number of decode processes)")
        if self.image_cache_mb < 0:
            raise MedflipError("--image-cache-mb must be 0 (no cache) or a budget in megabytes")
        if self.mim_weight < 0:
            raise MedflipError(f"--mim-weight must be 0 (no reconstruction) or positive, got {self.mim_weight}")
        if self.mim_weight > 0 and self.mask_ratio <= 0:
            raise MedflipError("--mim-weight reconstructs the dropped patches: it needs --mask-ratio above 0")
        if self.mim_weight > 0 and (self.decoder_depth < 1 or self.decoder_width < 32 or self.decoder_width % 32):
            raise MedflipError("--decoder-depth must be at least 1 and --decoder-width a multiple of 32, got "
                               f"{self.decoder_depth} and {self.decoder_width}")
        if self.clip_weight < 0:
            raise MedflipError(f"--clip-weight must be 0 (reconstruction only) or positive, got {self.clip_weight}")
        if self.clip_weight == 0 and (self.mim_weight <= 0 or self.job != "pretrain"):
            raise MedflipError("--clip-weight 0 trains on reconstruction alone: it is for pretrain, with "
                               "--mim-weight above 0")
        if self.clip_weight == 0 and self.mask_strategy == "attention":
            raise MedflipError("--mask-strategy attention compares patches with the batch's text, and --clip-weight 0 "
                               "has none: use random or integrity")
        if self.unlabelled and self.mim_weight <= 0:
            raise MedflipError("images without labels (--unlabelled) feed only the reconstruction term: give "
                               "--mim-weight above 0")
        if self.unlabelled and self.job != "pretrain":
            raise MedflipError("--unlabelled is for pre-training (pretrain), not fine-tuning")
        if self.unlabelled_batch_size is not None and self.unlabelled_batch_size < 1:
            raise MedflipError("--unlabelled-batch-size must be at least 1")
        if self.svd_power_iters < 0:
            raise MedflipError("--svd-power-iters must be 0 (full SVD) or a positive number of iterations")
        if self.batch_size < 2:
            raise MedflipError("--batch-size must be at least 2 (contrastive losses compare within a batch)")
        if not self.images and not self.pairs_csv:
            raise MedflipError("no training images: give --images FOLDER (ImageFolder layout) or --pairs-csv FILE")
        if self.job == "pretrain" and not self.pairs_csv and not self.corpus:
            raise MedflipError("unpaired pre-training needs a report corpus: --corpus FILE_OR_FOLDER")
        if self.epochs is None and self.max_steps is None and self.budget_minutes is None:
            raise MedflipError("say how long to train: --epochs, --max-steps or --budget-minutes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From a nested `model` mapping, or (older files) the model fields at the top level."""
        data = dict(data)
        model = dict(data.pop("model", None) or {})
        for name in MODEL_FIELDS:
            if name in data:
                model[name] = data.pop(name)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known) + sorted(set(model) - set(MODEL_FIELDS))
        if unknown:
            raise MedflipError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**data, model=ModelConfig(**model))


MODEL_FIELDS = tuple(f.name for f in fields(ModelConfig))

# The allowed values of the fields that take one of a few words: validate() checks them (a config file's
# values and the flags alike, so both get the same sentence and the GUI an error event) and --help lists them.
CHOICES: dict[str, tuple[str, ...]] = {
    "job": ("pretrain", "finetune"),
    "loss": ("medflip", "medclip", "infonce"),
    "svd_reading": ("token",),
    "text_train": ("frozen", "partial", "full"),
    "finetune_mode": ("partial", "full"),
    "schedule": ("cosine", "constant"),
    "sample_within_source": ("class", "image"),
    "amp": AMP_CHOICES,
    "device": ("auto", "cpu", "cuda"),
    "decode_in": DECODE_IN,
    "mask_strategy": MASK_STRATEGIES,
    "vision_pool": ("token", "avg"),
}

# --help's sections, in the order shown: (title, what the section is for).
FLAG_GROUPS: dict[str, tuple[str, str]] = {
    "data": ("data", "what the run reads and how it is split (always by patient)"),
    "model": ("model", "the model's shape; --init-from's bundle or checkpoint replaces every shape flag"),
    "loss": ("loss (pretrain)", "the image-text objective"),
    "masking": ("masking (pretrain)", "patches of each training image dropped before the image tower"),
    "mim": ("masked image modelling (pretrain)", "a light decoder reconstructs the dropped patches from the "
                                                 "kept ones (training only: exports never carry it)"),
    "finetune": ("fine-tuning (finetune)", "the classifier trained on a labelled folder or label CSV"),
    "optimisation": ("optimisation", "how long and how fast; at least one of --epochs, --max-steps, "
                                     "--budget-minutes (the first reached ends the run)"),
    "run": ("run control", "output folder, logging, evaluation, checkpoints and resuming"),
    "devices": ("devices, memory and distributed",
                "several GPUs: launch with `torchrun --nproc-per-node N -m trainer pretrain ...`; "
                "--batch-size is per process, only rank 0 writes events"),
}

# Every option's section and what it does. Defaults and choices are added from the dataclasses and CHOICES,
# so they cannot drift; a help that says "default" itself explains what an empty default means.
FLAG_HELP: dict[str, tuple[str, str]] = {
    # data
    "images": ("data", "image folder(s) in ImageFolder layout (one sub-folder per class, DICOM/PNG/JPEG files); "
                       "finetune: exactly one ImageFolder or one label CSV (NIH or CheXpert style); no default: "
                       "give it, or --pairs-csv"),
    "corpus": ("data", "report corpus for unpaired pre-training: an Open-i XML folder or .tgz, a CSV or a TXT file "
                       "of reports (default: none; pretrain needs it unless --pairs-csv is given)"),
    "pairs_csv": ("data", "paired pre-training: a CSV with an image column (image, path, file...) and a report "
                          "column (report, text, findings, impression); relative paths start at the CSV's folder "
                          "(default: none, unpaired)"),
    "class_map": ("data", 'JSON file {"FOLDER": ["Label", ...]}: the label names of each class folder, merged '
                          "over the built-in map (default: the built-in map only)"),
    "patient_pattern": ("data", "regular expression whose group 1 is the patient id in a file name (default: "
                                "Kermany personN, NIH 8 digits, patientN, IM-xxxx, else the file name)"),
    "val_fraction": ("data", "share of the PATIENTS held out for validation"),
    "max_images": ("data", "use at most N training images, after the patient split (smoke runs; default: all)"),
    "max_sentences": ("data", "use at most N report sentences of the corpus (default: all)"),
    "corpus_holdout": ("data", "share of the reports held out of training for retrieval evaluation, split by "
                               "report (0: train on every report)"),
    "extra_sources": ("data", "a label CSV (NIH or CheXpert style) added to the --images training images, with "
                              "its own patient split (a config file may list several; default: none)"),
    "source_weights": ("data", 'draw share of each source, e.g. "0.5,0.5" for --images then --extra-sources, '
                               'or "size" (in proportion to their image counts); default: equal weights with '
                               "class balance when there are extra sources, else an epoch-wise shuffle"),
    "sample_within_source": ("data", "how a source's image is drawn: class = a uniform class (no finding / "
                                     "finding), then an image of it; image = a uniform image (the source's own mix)"),
    "unlabelled": ("data", "a folder of images without labels (any layout, searched recursively): they feed only "
                           "the reconstruction term (needs --mim-weight above 0); repeat the flag for several "
                           "folders; files of validation patients are left out (default: none)"),
    "unlabelled_batch_size": ("data", "images without labels per step and process, beside the --batch-size "
                                      "labelled ones (default: --batch-size)"),
    "augment": ("data", "train-only radiograph augmentation before preprocessing (default: off)"),
    "max_val_images": ("data", "validation images used per evaluation (a whole number; a config file may give "
                               "null for all)"),
    # model
    "vision": ("model", "image tower: the name of any timm ViT, randomly initialised (no image weights offline)"),
    "image_size": ("model", "side of the square model input, in pixels"),
    "in_chans": ("model", "input channels (1: grey radiographs)"),
    "embed_dim": ("model", "size of the shared image-text embedding"),
    "text_model": ("model", "text tower: a local Hugging Face model folder (default: the packaged MiniLM)"),
    "max_text_tokens": ("model", "sentences are cut to this many tokens"),
    "init_temperature": ("model", "initial softmax temperature of the image-text similarity (learnt)"),
    "vision_pool": ("model", "image embedding from the class token, or the average of the visible patches"),
    "partial_text_layers": ("model", "--text-train partial: how many of the top text encoder layers train"),
    "text_train": ("model", "text tower in pre-training: frozen, partial (top --partial-text-layers) or full"),
    "init_from": ("model", "pretrain: a bundle or checkpoint folder (or its .safetensors weights) to start from; "
                           "finetune: the base model's bundle folder. Its model shape replaces the model flags "
                           "(default: pretrain from a random image tower, finetune from the packaged "
                           "medflip-default bundle)"),
    # loss
    "loss": ("loss", "medflip = soft semantic targets + beta x SVD term; medclip = semantic matching; "
                     "infonce = CLIP/ConVIRT contrastive loss"),
    "beta": ("loss", "--loss medflip: weight of the SVD term (0: contrastive part only)"),
    "svd_reading": ("loss", "--loss medflip: how the SVD term is read (token; batch was removed, see "
                            "docs/method-notes.md)"),
    "svd_power_iters": ("loss", "power iterations for the SVD term's largest singular value (0: full SVD)"),
    "pair_identity_weight": ("loss", "paired data: target weight on the true image-report pair; the rest goes "
                                     "to pairs with matching labels (0 to 1)"),
    # masking
    "mask_ratio": ("masking", "share of each image's patches dropped (0 to 0.9; 0: no masking)"),
    "mask_strategy": ("masking", "random = uniform per image; integrity = the least informative patches "
                                 "first; attention = the patches most like the batch's text first"),
    "mask_guided_share": ("masking", "integrity / attention: share of the dropped patches chosen by the "
                                     "strategy, the rest at random (0 to 1)"),
    # masked image modelling
    "mim_weight": ("mim", "weight of the reconstruction loss (mean squared error of the dropped patches' "
                          "per-patch normalised pixels) added to the image-text loss; 0: no decoder is built"),
    "clip_weight": ("mim", "weight of the image-text loss (contrastive + SVD); 0 = reconstruction only, an MAE "
                           "phase with no text pass (labelled images then count as images without labels)"),
    "decoder_depth": ("mim", "transformer blocks of the reconstruction decoder"),
    "decoder_width": ("mim", "width of the reconstruction decoder (a multiple of 32)"),
    # fine-tuning
    "finetune_mode": ("finetune", "partial = top --tune-blocks blocks + head; full = every layer (the frozen-tower "
                                  "probe is `medflip finetune --mode probe`)"),
    "labels": ("finetune", 'classes to learn, comma-separated, e.g. "No Finding,Pneumonia" (default: every class '
                           "of the data)"),
    "image_root": ("finetune", "where a label CSV's image paths start (default: the CSV's folder)"),
    "bundle_out": ("finetune", "classifier bundle folder written at the end (default: none, checkpoints only)"),
    "val_patients": ("finetune", "text file of patient ids, one a line: exactly these patients are the validation "
                                 "set (default: a --val-fraction patient split)"),
    "tune_blocks": ("finetune", "--finetune-mode partial: how many of the top transformer blocks train"),
    "head_lr": ("finetune", "learning rate of the classification head"),
    "early_stop_patience": ("finetune", "stop after this many evaluations (every --eval-every steps) without a "
                                        "better validation AUC"),
    "n_boot": ("finetune", "bootstrap resamples (of patients) for the bundle's validation confidence intervals"),
    # optimisation
    "batch_size": ("optimisation", "images per step and process (at least 2: the losses compare within a batch)"),
    "epochs": ("optimisation", "train this many passes over the training images; fractions allowed "
                               "(default: no epoch limit)"),
    "max_steps": ("optimisation", "train at most this many optimizer steps (default: no step limit)"),
    "budget_minutes": ("optimisation", "stop after this many minutes of wall-clock time, with a checkpoint "
                                       "(default: no time limit)"),
    "lr": ("optimisation", "peak learning rate of the image tower (pretrain: every non-text weight)"),
    "text_lr": ("optimisation", "pretrain: peak learning rate of the text layers that train"),
    "weight_decay": ("optimisation", "AdamW weight decay"),
    "warmup_steps": ("optimisation", "steps of linear learning-rate warm-up"),
    "schedule": ("optimisation", "learning rate after the warm-up: cosine decay, or constant"),
    "grad_accum": ("optimisation", "batches whose gradients are summed per optimizer step (a larger effective "
                                   "batch in the same memory)"),
    "seed": ("optimisation", "random seed of the patient split, sampling, masks and initialisation"),
    # run control
    "out_dir": ("run", "run folder: checkpoints, config.json, the event log"),
    "log_every": ("run", "pretrain: a step event every N steps"),
    "eval_every": ("run", "validation every N steps and at the end (pretrain: zero-shot AUC; finetune: AUC for "
                          "early stopping); 0: pretrain never validates, finetune only at the end"),
    "checkpoint_every": ("run", "save a resumable checkpoint every N steps"),
    "keep_last": ("run", "how many of the latest checkpoints are kept"),
    "events": ("run", 'where the JSON-line events go: "-" for stdout, else a file path'),
    "resume": ("run", "continue from the latest checkpoint in --out-dir (default: off, a fresh run)"),
    # devices, memory, distributed
    "device": ("devices", "auto = a CUDA GPU when there is one, else the CPU"),
    "amp": ("devices", "mixed precision: auto = on CUDA only (bf16 if supported, else fp16); on = also bf16 on "
                       "the CPU; off = float32; bf16 / fp16 = that type on any device"),
    "num_workers": ("devices", "image loader workers (0: decode in the training loop)"),
    "decode_in": ("devices", "where the loader's workers decode: threads, or one process each (faster for JPEG "
                             "2000 DICOMs; needs --num-workers 1 or more)"),
    "image_cache_mb": ("devices", "decoded training and validation images kept in memory, in MB per process "
                                  "(0: no cache)"),
    "text_cache_mb": ("devices", "--text-train partial / frozen: outputs of the frozen text layers kept per "
                                 "sentence, in MB (0: no cache)"),
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML, TOML or JSON file of TrainConfig keys (dashes or underscores)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise MedflipError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MedflipError(f"config file {path} must hold a mapping of keys to values")
    return {k.replace("-", "_"): v for k, v in data.items()}


def _flag_type(annotation: str):
    if "bool" in annotation:
        return None
    if "int" in annotation and "float" not in annotation:
        return int
    if "float" in annotation:
        return float
    return str


def _describe_default(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if value is False:
        return "off"
    return str(value)


def flag_help(name: str, default: Any) -> str:
    """An option's --help text: what it does, its choices and its default ('%' escaped for argparse)."""
    text = FLAG_HELP[name][1] if name in FLAG_HELP else ""
    if name in CHOICES:
        text += f"; choices: {', '.join(CHOICES[name])}"
    if "default" not in text:
        text += f" (default: {_describe_default(default)})"
    return text.replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field, in FLAG_GROUPS' sections; unset flags stay None so a config file's
    values win over the defaults (which --help shows from the dataclasses)."""
    parser.add_argument("--config", metavar="FILE", help="YAML, TOML or JSON file of these options (dashes or "
                                                         "underscores); flags given here override it")
    groups = {key: parser.add_argument_group(title, description) for key, (title, description) in FLAG_GROUPS.items()}
    other = None
    defaults = {**asdict(TrainConfig()), **asdict(ModelConfig())}
    for f in [*fields(TrainConfig), *fields(ModelConfig)]:
        if f.name in ("job", "model"):
            continue
        if f.name in FLAG_HELP:
            group = groups[FLAG_HELP[f.name][0]]
        else:  # a new field nobody documented yet (tests/trainer/test_trainer_config.py fails on it)
            group = other = other or parser.add_argument_group("other")
        flag = "--" + f.name.replace("_", "-")
        annotation = str(f.type)
        help_text = flag_help(f.name, defaults[f.name])
        metavar = "{" + ",".join(CHOICES[f.name]) + "}" if f.name in CHOICES else None
        if f.name == "images":
            group.add_argument(flag, nargs="+", default=None, metavar="FOLDER", help=help_text)
        elif f.name == "unlabelled":
            group.add_argument(flag, action="append", default=None, metavar="FOLDER", help=help_text)
        elif "bool" in annotation:
            group.add_argument(flag, action="store_true", default=None, help=help_text)
        else:
            group.add_argument(flag, type=_flag_type(annotation), default=None, metavar=metavar, help=help_text)


def resolve_config(job: str, args: argparse.Namespace) -> TrainConfig:
    data: dict[str, Any] = {}
    if getattr(args, "config", None):
        data.update(read_config_file(args.config))
    for f in [*fields(TrainConfig), *fields(ModelConfig)]:
        value = getattr(args, f.name, None)
        if value is not None and f.name != "model":
            data[f.name] = value
    data["job"] = job
    cfg = TrainConfig.from_dict(data)
    take_model_shape_from_init(cfg, data.get("image_size"), data.get("vision_pool"))
    cfg.validate()
    return cfg


def take_model_shape_from_init(cfg: TrainConfig, image_size: int | None = None,
                               vision_pool: str | None = None) -> None:
    """Starting from a bundle or checkpoint: its manifest / state is the one source of the model's shape
    (the weights fit nothing else); it replaces whatever shape the flags or the file gave. Two exceptions when
    pre-training, neither of which changes a weight's shape: an explicit `image_size` (a resolution schedule, e.g. a
    112-px reconstruction phase, then 224 px: the position embeddings are resampled to the new grid when the weights
    load), and an explicit `vision_pool` (e.g. a reconstruction phase, which trains no pooling, followed by an
    image-text phase that pools the patch tokens)."""
    if not cfg.init_from:
        return
    if not Path(cfg.init_from).exists():
        raise MedflipError(f"--init-from {cfg.init_from} does not exist")
    recorded = model_config_source(cfg.init_from)
    if recorded is not None:
        cfg.model = ModelConfig.from_dict(recorded)
        if image_size is not None and cfg.job == "pretrain":  # fine-tuning keeps its base bundle's input size
            cfg.model.image_size = int(image_size)
        if vision_pool is not None and cfg.job == "pretrain":  # fine-tuning keeps its base bundle's embedding
            cfg.model.vision_pool = str(vision_pool)


__all__ = ["CHOICES", "FLAG_GROUPS", "FLAG_HELP", "TrainConfig", "add_config_flags", "flag_help", "read_config_file",
           "resolve_config", "take_model_shape_from_init"]
