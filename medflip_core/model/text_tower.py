"""Text tower: any local Hugging Face encoder (default: the packaged MiniLM), mean-pooled and projected."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from medflip_core.errors import MedflipError
from medflip_core.model.config import ModelConfig, text_model_path
from medflip_core.model.packed_layers import PackedTokens, can_pack, packed_layer


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) token states -> (B, H), the mean over each sentence's real tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


@dataclass
class TextOutput:
    embedding: torch.Tensor  # (B, D) L2-normalised
    tokens: torch.Tensor  # (B, T, D) L2-normalised projected token states
    attention_mask: torch.Tensor  # (B, T)


class TextTower(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = text_model_path(cfg)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.encoder = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MedflipError(f"cannot load the text model from {path}: {exc}") from exc
        self.max_tokens = cfg.max_text_tokens
        self.partial_layers = cfg.partial_text_layers
        self._mode: str | None = None  # set_trainable's mode; None until it is called
        width = int(self.encoder.config.hidden_size)
        self.proj = nn.Linear(width, cfg.embed_dim, bias=False)
        nn.init.normal_(self.proj.weight, std=width**-0.5)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean-pooled hidden state (B, H), token states (B, T, H)) before projection."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask), hidden

    def _layers(self) -> list[nn.Module]:
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if layers is None:
            raise MedflipError("partial text training needs a BERT-like encoder with encoder.layer")
        return list(layers)

    def _layer_mask(self, attention_mask: torch.Tensor, hidden: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)

    def _frozen_layer_count(self) -> int:
        """How many encoder layers sit below the trainable ones: all of them in `frozen` mode, all but the
        top `partial_layers` otherwise (partial mode, and before any mode is set)."""
        if self._mode == "frozen":
            return len(self._layers())
        return max(len(self._layers()) - self.partial_layers, 0)

    @torch.no_grad()
    def frozen_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token states after the embeddings and the layers the current mode keeps frozen (B, T, H): every layer
        in `frozen` mode, all but the top `partial_layers` in `partial` mode.

        They do not change while training in those modes, so a trainer can compute them once per sentence and
        run only what trains each step (`forward_from_frozen`: the top layers, or in `frozen` mode only the
        projection).
        """
        hidden = self.encoder.embeddings(input_ids=input_ids)
        mask = self._layer_mask(attention_mask, hidden)
        for layer in self._layers()[: self._frozen_layer_count()]:
            hidden = layer(hidden, mask)
        return hidden

    def forward_from_frozen(self, frozen: torch.Tensor, attention_mask: torch.Tensor) -> TextOutput:
        """The tower's output from `frozen_states` (padding positions may hold anything: they are masked).

        BERT-style layers run on the real tokens only (medflip_core.model.packed_layers); their token states
        are zero at padding positions. Other encoders run their own layers on the padded batch. In `frozen`
        mode no layer is left to run: the packed states are projected as they are.
        """
        top = self._layers()[self._frozen_layer_count() :]
        if all(can_pack(layer, self.encoder.config) for layer in top):  # also when no layer is left (frozen)
            where = PackedTokens(attention_mask)
            packed = where.pack(frozen)
            for layer in top:
                packed = packed_layer(layer, packed, where)
            return self._project_packed(packed, where, attention_mask)
        hidden = frozen
        mask = self._layer_mask(attention_mask, hidden)
        for layer in top:
            hidden = layer(hidden, mask)
        return self._project(hidden, attention_mask)

    def _project(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> TextOutput:
        return TextOutput(
            embedding=F.normalize(self.proj(mean_pool(hidden, attention_mask)), dim=-1),
            tokens=F.normalize(self.proj(hidden), dim=-1),
            attention_mask=attention_mask,
        )

    def _project_packed(self, packed: torch.Tensor, where: PackedTokens, attention_mask: torch.Tensor) -> TextOutput:
        """`_project` of the unpacked states, with the token projection run on the real tokens only (about
        half the rows of a padded IU batch). The projection has no bias, so padding tokens are zero either way."""
        return TextOutput(
            embedding=F.normalize(self.proj(mean_pool(where.unpack(packed), attention_mask)), dim=-1),
            tokens=where.unpack(F.normalize(self.proj(packed), dim=-1)),
            attention_mask=attention_mask,
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextOutput:
        return self._project(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,
                             attention_mask)

    def set_trainable(self, mode: str) -> None:
        """frozen: projection only; partial: the last N encoder layers too; full: everything that is used.

        The encoder's pooler (BERT's [CLS] dense layer) stays frozen in every mode: the tower mean-pools
        the token states, so the pooler never gets a gradient, and DistributedDataParallel waits forever
        for gradients of trainable parameters that never receive one.
        """
        if mode not in ("frozen", "partial", "full"):
            raise MedflipError(f"text training mode must be frozen, partial or full, not {mode!r}")
        self._mode = mode
        for p in self.encoder.parameters():
            p.requires_grad_(mode == "full")
        if mode == "partial":
            for layer in self._layers()[self._frozen_layer_count() :]:
                for p in layer.parameters():
                    p.requires_grad_(True)
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:
            for p in pooler.parameters():
                p.requires_grad_(False)
        for p in self.proj.parameters():
            p.requires_grad_(True)
        # Frozen parts run without dropout even while training: they are a fixed feature extractor, so the
        # frozen-layer cache holds exactly what every step would compute (no dropout draw baked into it).
        frozen_parts = [self.encoder.embeddings, *self._layers()[: self._frozen_layer_count()]]
        self._frozen_modules = {"frozen": [self.encoder], "partial": frozen_parts}.get(mode, [])
        for module in self._frozen_modules:
            module.eval()

    def train(self, mode: bool = True) -> TextTower:
        super().train(mode)
        for module in getattr(self, "_frozen_modules", []):
            module.eval()
        return self
