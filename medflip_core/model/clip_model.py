"""MedFlipModel: image tower + text tower + learnable temperature."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from medflip_core.bundles.bundle import WEIGHTS
from medflip_core.bundles.checkpoint_layout import MODEL_FILE
from medflip_core.errors import MedflipError
from medflip_core.model.config import ModelConfig
from medflip_core.model.image_tower import ImageOutput, ImageTower
from medflip_core.model.text_tower import TextOutput, TextTower


class MedFlipModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.image_tower = ImageTower(cfg)
        self.text_tower = TextTower(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def encode_image(self, pixels: torch.Tensor, keep: torch.Tensor | None = None) -> ImageOutput:
        return self.image_tower(pixels, keep)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextOutput:
        return self.text_tower(input_ids, attention_mask)

    def forward(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        keep: torch.Tensor | None = None, frozen_text: torch.Tensor | None = None,
    ) -> tuple[ImageOutput, TextOutput]:
        """Both towers; `frozen_text` (cached TextTower.frozen_states) skips the frozen text layers."""
        if frozen_text is not None:
            return self.encode_image(pixels, keep), self.text_tower.forward_from_frozen(frozen_text, attention_mask)
        return self.encode_image(pixels, keep), self.encode_text(input_ids, attention_mask)

    def save_weights(self, path: str | Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(path))

    def load_weights(self, path: str | Path, resample_positions: bool = False) -> None:
        """Strict load of safetensors weights (a checkpoint's model.safetensors or a bundle's weights).

        `resample_positions`: weights trained at another image size load with their position embeddings
        resampled to this model's patch grid (a resolution schedule); every other tensor must fit as is."""
        path = Path(path)
        if path.is_dir():
            for name in (MODEL_FILE, WEIGHTS):  # a checkpoint's or a bundle's weights
                if (path / name).is_file():
                    path = path / name
                    break
        try:
            state = load_file(str(path))
        except (OSError, ValueError) as exc:
            raise MedflipError(f"cannot read weights from {path}: {exc}") from exc
        if resample_positions:
            try:
                state = self.image_tower.fit_positions(state)
            except ValueError as exc:
                raise MedflipError(f"the weights in {path} do not fit this model configuration: {exc}") from exc
        missing = set(self.state_dict()) - set(state)
        unexpected = set(state) - set(self.state_dict())
        if missing or unexpected:
            raise MedflipError(
                f"the weights in {path} do not fit this model configuration "
                f"({len(missing)} missing, {len(unexpected)} unexpected tensors)."
            )
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise MedflipError(f"the weights in {path} do not fit this model configuration: {exc}") from exc


def build_model(cfg: ModelConfig) -> MedFlipModel:
    return MedFlipModel(cfg)
