"""The training configuration on the command line: one --flag per TrainConfig field, grouped and explained for
--help, and the resolution of a run's configuration from a config file, the flags and --init-from's checkpoint.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from medflip_core.bundles.checkpoint_layout import model_config_source
from medflip_core.errors import MedflipError
from medflip_core.model.config import ModelConfig
from trainer.config import CHOICES, TrainConfig, read_config_file

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
    "images": ("data", "image folder(s) in ImageFolder layout (one sub-folder per class, DICOM/PNG/JPEG files) "
                       "or label CSV(s) (NIH or CheXpert style, e.g. the Labelling tab's labels.csv; paths from "
                       "--image-root); finetune: exactly one of either; no default: give it, or --pairs-csv"),
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
                          "pixels, see --mim-target) added to the image-text loss; 0: no decoder is built"),
    "mim_target": ("mim", "what the decoder reconstructs: patch = each patch normalised by its own mean and spread "
                          "(MAE; texture only), image = the pixels as they are (texture and the patch's density), "
                          "both = the two"),
    "clip_weight": ("mim", "weight of the image-text loss (contrastive + SVD); 0 = reconstruction only, an MAE "
                           "phase with no text pass (labelled images then count as images without labels)"),
    "decoder_depth": ("mim", "transformer blocks of the reconstruction decoder"),
    "decoder_width": ("mim", "width of the reconstruction decoder (a multiple of 32)"),
    "instance_weight": ("mim", "weight of an instance term: each film encoded twice under two independent masks, a "
                               "small head on the class token must tell its two views from the batch's other films "
                               "(InfoNCE); keeps what tells two films of one label apart. 0: off. Doubles the "
                               "masked encoder pass; needs --mim-weight above 0"),
    "instance_temperature": ("mim", "temperature of the instance term's InfoNCE"),
    # fine-tuning
    "finetune_mode": ("finetune", "partial = top --tune-blocks blocks + head; full = every layer (the frozen-tower "
                                  "probe is `medflip finetune --mode probe`)"),
    "labels": ("finetune", 'classes to learn, comma-separated, e.g. "No Finding,Pneumonia" (default: every class '
                           "of the data)"),
    "image_root": ("data", "where an --images label CSV's image paths start (default: the CSV's folder)"),
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
            group.add_argument(flag, nargs="+", default=None, metavar="PATH", help=help_text)
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



__all__ = ["FLAG_GROUPS", "FLAG_HELP", "add_config_flags", "flag_help", "resolve_config", "take_model_shape_from_init"]
