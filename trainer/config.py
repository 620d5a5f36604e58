"""Training configuration: a dataclass read from a YAML/TOML file and overridden by CLI flags.

The model's shape is not copied here: `model` nests medflip_core's ModelConfig (the one definition,
also written into checkpoints and bundle manifests). Its fields are still accepted flat (`vision: ...`
in a file, `--vision` on the command line) and mapped into `model`.
The resolved configuration is written next to every run (config.json) so a run can be repeated and resumed.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

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
    mim_target: str = "patch"  # what a dropped patch's target is: patch | image | both (mim_decoder.MIM_TARGETS)
    instance_weight: float = 0.0  # two masked views of each film told apart from the batch's others (0: off)
    instance_temperature: float = 0.1  # of that InfoNCE loss (medflip_core/model/instance_head.py)
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
        if self.instance_weight < 0 or self.instance_temperature <= 0:
            raise MedflipError("--instance-weight must be 0 (off) or positive and --instance-temperature positive, "
                               f"got {self.instance_weight} and {self.instance_temperature}")
        if self.instance_weight > 0 and (self.mim_weight <= 0 or self.clip_weight <= 0 or self.job != "pretrain"):
            raise MedflipError("--instance-weight encodes every film twice in the masked pass the reconstruction "
                               "and image-text losses share: it is for pretrain with --mim-weight and --clip-weight "
                               "above 0")
        if self.instance_weight > 0 and self.mask_strategy == "attention":
            raise MedflipError("--instance-weight needs masks drawn per view (random or integrity); attention masks "
                               "follow the batch's text, which the second view does not have")
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
    "mim_target": ("patch", "image", "both"),  # = mim_decoder.MIM_TARGETS (config.py imports no torch)
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


__all__ = ["CHOICES", "MODEL_FIELDS", "TrainConfig", "read_config_file"]
