"""Masked image modelling in pre-training: the decoder beside the model, the images without labels, and the one
forward pass that feeds both the image-text loss and the reconstruction loss.

With `--mim-weight 0` none of this is built and the pre-training step is the plain MedFLIP step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from medflip_core.bundles.checkpoint_layout import latest_checkpoint
from medflip_core.data.image_folder import ImageRecord, patient_id_from_name
from medflip_core.errors import MedflipError
from medflip_core.imaging import iter_image_files
from medflip_core.labeler.labels import CHEXPERT_LABELS
from medflip_core.model.clip_model import MedFlipModel
from medflip_core.model.image_tower import ImageOutput
from medflip_core.model.instance_head import INSTANCE_FILE, InstanceHead, two_view_loss
from medflip_core.model.mim_decoder import DECODER_FILE, MimDecoder, build_decoder, mim_loss
from medflip_core.model.text_tower import TextOutput
from trainer.config import TrainConfig

UNLABELLED_CLASS = "(unlabelled)"


def make_decoder(cfg: TrainConfig, model: MedFlipModel) -> MimDecoder | None:
    """The reconstruction decoder of a run, or None when `--mim-weight` is 0 (nothing is built)."""
    if cfg.mim_weight <= 0:
        return None
    return build_decoder(model.image_tower, cfg.model.in_chans, cfg.decoder_depth, cfg.decoder_width, cfg.mim_target)


def make_instance_head(cfg: TrainConfig, model: MedFlipModel) -> InstanceHead | None:
    """The instance term's head (medflip_core/model/instance_head.py), or None when `--instance-weight` is 0."""
    if cfg.instance_weight <= 0:
        return None
    return InstanceHead(int(model.image_tower.vit.num_features))


def check_resume(cfg: TrainConfig, decoder: MimDecoder | None) -> None:
    """A run with a decoder resumes only with one, and a run without one only without (the optimizer state and
    the step would not fit otherwise), and so for the instance term's head: a sentence instead of a state-dict
    error."""
    ckpt = latest_checkpoint(cfg.out_dir) if cfg.resume else None
    if ckpt is None:
        return
    had_head = (ckpt.path / INSTANCE_FILE).is_file()
    if had_head != (cfg.instance_weight > 0):
        before = ckpt.state.get("config", {}).get("instance_weight", 0)
        raise MedflipError(f"{ckpt.path} was trained {'with' if had_head else 'without'} the instance term "
                           f"(--instance-weight {before}): resume it with the same, or start a new run with "
                           "--init-from to change it")
    had = (ckpt.path / DECODER_FILE).is_file()
    if had and decoder is None:
        raise MedflipError(f"{ckpt.path} was trained with masked image modelling (it holds {DECODER_FILE}): resume "
                           f"it with its own --mim-weight ({ckpt.state.get('config', {}).get('mim_weight')}), "
                           "or start a new run with --init-from for one without")
    before = ckpt.state.get("config", {}).get("mim_target", "patch")
    if had and decoder is not None and before != decoder.shape.target:
        raise MedflipError(f"{ckpt.path} reconstructs the {before!r} target: resume it with --mim-target {before}, or "
                           "start a new run with --init-from to change the target")
    if decoder is not None and not had:
        raise MedflipError(f"{ckpt.path} was trained without masked image modelling (no {DECODER_FILE}): resume it "
                           "with --mim-weight 0, or start a new run with --init-from to add the decoder")


def unlabelled_folders(cfg: TrainConfig) -> list[str]:
    value = cfg.unlabelled
    return [value] if isinstance(value, str) else list(value or [])


def index_unlabelled(cfg: TrainConfig, held_out: list[ImageRecord]) -> tuple[list[ImageRecord], int]:
    """Every image under the `--unlabelled` folders (recursively, any layout), minus the files and patients of
    the labelled validation split (`held_out`), so validation patients stay unseen; (records, left out).

    The records carry an all-zero label vector: they never reach the image-text loss."""
    held_paths = {r.path.resolve() for r in held_out}
    held_patients = {r.patient_id for r in held_out}
    seen: set[Path] = set()
    records: list[ImageRecord] = []
    left_out = 0
    zeros = np.zeros(len(CHEXPERT_LABELS), dtype=np.float32)
    for folder in unlabelled_folders(cfg):
        if not Path(folder).is_dir():
            raise MedflipError(f"--unlabelled {folder} is not a folder")
        try:
            files = iter_image_files(folder)
        except MedflipError as exc:
            raise MedflipError(f"--unlabelled {folder}: {exc}") from exc
        for path in files:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            pid = patient_id_from_name(path.name, cfg.patient_pattern)
            if resolved in held_paths or pid in held_patients:
                left_out += 1
                continue
            records.append(ImageRecord(path=path, class_name=UNLABELLED_CLASS, patient_id=pid, labels=zeros))
    if unlabelled_folders(cfg) and not records:
        raise MedflipError("the --unlabelled folders hold no images outside the validation patients")
    return records, left_out


def first_rows(out: ImageOutput, n: int) -> ImageOutput:
    """The image output of the first `n` images of a batch (the labelled ones)."""
    return ImageOutput(embedding=out.embedding[:n], tokens=out.tokens[:n],
                       keep=out.keep[:n] if out.keep is not None else None,
                       hidden=out.hidden[:n] if out.hidden is not None else None)


class MimNet(nn.Module):
    """Model + decoder as one module (what DistributedDataParallel wraps): one masked encoder pass over the
    labelled and unlabelled images, the text tower, the decoder's reconstruction loss over every image."""

    def __init__(self, model: MedFlipModel, decoder: MimDecoder, instance: InstanceHead | None = None,
                 instance_temperature: float = 0.1) -> None:
        super().__init__()
        self.model = model
        self.decoder = decoder
        self.instance = instance
        self.instance_temperature = instance_temperature

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                keep: torch.Tensor, frozen_text: torch.Tensor | None = None, two_views: bool = False
                ) -> tuple[ImageOutput, TextOutput | None, torch.Tensor, torch.Tensor | None]:
        """(image output, text output, reconstruction loss, instance loss). No `input_ids` (a reconstruction-only
        phase): the image tower alone, no text output. `two_views`: the batch's second half is its first half's
        films under other masks (the instance term; None without it)."""
        if input_ids is None:
            img, txt = self.model.encode_image(pixels, keep), None
        else:
            img, txt = self.model(pixels, input_ids, attention_mask, keep, frozen_text)
        prefix = self.model.image_tower.vit.num_prefix_tokens
        pred = self.decoder(img.hidden, keep, prefix)
        mim = mim_loss(pred, pixels, keep, self.model.image_tower.patch_size, self.decoder.shape.target)
        inst = None
        if two_views and self.instance is not None:
            inst = two_view_loss(self.instance, img.hidden, self.instance_temperature)
        return img, txt, mim, inst


def decoder_param_groups(decoder: MimDecoder, lr: float, weight_decay: float) -> dict[tuple[float, float], list]:
    """The decoder's parameters by (lr, weight decay): no decay on norms, biases and the mask token."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in decoder.named_parameters():
        no_decay = param.ndim < 2 or "mask_token" in name
        groups.setdefault((lr, 0.0 if no_decay else weight_decay), []).append(param)
    return groups


__all__ = ["UNLABELLED_CLASS", "MimNet", "check_resume", "decoder_param_groups", "first_rows", "index_unlabelled",
           "make_decoder", "make_instance_head", "unlabelled_folders"]
