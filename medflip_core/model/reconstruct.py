"""What a pre-training run's reconstruction decoder makes of one image: the model input, the patches a mask keeps,
and the dropped patches as the decoder predicts them (torch; `medflip reconstruct`, the Mask sampling tab).

The decoder predicts every dropped patch's training target (mim_decoder.MIM_TARGETS). A `patch` target is the
patch's pixels normalised by its own mean and spread: to show it as an image it is scaled back with the true
patch's mean and spread, as MAE's figures do, so the picture shows the structure predicted inside each patch, not
the patch's brightness, and the caption says so. An `image` (or `both`) target holds the pixels themselves: the
picture is the prediction, brightness included. Same preprocessing (imaging.preprocess) and the same masking
(medflip_core.masking) as the training step, so a mask drawn in the Mask sampling tab is reconstructed as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medflip_core.bundles.checkpoint_layout import MODEL_FILE, STATE_FILE, latest_checkpoint
from medflip_core.errors import MedflipError
from medflip_core.imaging import Radiograph
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess
from medflip_core.masking import integrity_scores, make_patch_mask, mask_ratio_problem, patch_grid

_PANELS = "model input · kept patches (dropped ones shaded) · dropped patches as the decoder predicts them"
CAPTIONS = {"patch": f"{_PANELS} (each scaled with its true patch's mean and spread)",
            "image": f"{_PANELS} (brightness included)", "both": f"{_PANELS} (brightness included)"}


@dataclass
class Reconstruction:
    original: np.ndarray  # (S, S) model input in [0, 1] for display
    kept: np.ndarray  # (S, S) the same with the dropped patches shaded
    reconstruction: np.ndarray  # (S, S) kept patches as they are, dropped ones predicted
    keep: np.ndarray  # (K,) kept patch indices
    loss: float  # the training loss on this image: mean squared error of the dropped patches' targets
    note: str = ""  # e.g. why the mask was drawn again
    target: str = "patch"  # what the run's decoder reconstructs (mim_decoder.MIM_TARGETS)

    @property
    def caption(self) -> str:
        return CAPTIONS[self.target]

    def side_by_side(self, gap: int = 4) -> np.ndarray:
        """uint8 (S, 3S + 2 gap) grey image of the three panels."""
        s = self.original.shape[0]
        out = np.full((s, 3 * s + 2 * gap), 255, dtype=np.uint8)
        for i, panel in enumerate((self.original, self.kept, self.reconstruction)):
            out[:, i * (s + gap): i * (s + gap) + s] = np.clip(panel * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out


def checkpoint_with_decoder(source: str | Path) -> Path:
    """The checkpoint folder of `source` (a checkpoint, or a run folder's latest) that holds a decoder."""
    from medflip_core.model.mim_decoder import DECODER_FILE

    path = Path(source)
    if (path / STATE_FILE).is_file():
        folder = path
    elif path.is_dir() and (latest := latest_checkpoint(path)) is not None:
        folder = latest.path
    else:
        raise MedflipError(f"{path} is neither a training run folder with a complete checkpoint nor a checkpoint")
    if not (folder / DECODER_FILE).is_file():
        raise MedflipError(f"{folder} has no reconstruction decoder ({DECODER_FILE}): it was trained without masked "
                           "image modelling (--mim-weight 0). Exported models never carry the decoder.")
    return folder


def _load(folder: Path):
    from safetensors.torch import load_file

    from medflip_core.model.config import ModelConfig
    from medflip_core.model.image_tower import ImageTower
    from medflip_core.model.mim_decoder import DECODER_FILE, build_decoder

    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        weights = load_file(str(folder / MODEL_FILE))
        decoder_weights = load_file(str(folder / DECODER_FILE))
    except (OSError, ValueError) as exc:
        raise MedflipError(f"cannot read the checkpoint {folder}: {exc}") from exc
    mcfg = ModelConfig.from_dict(state["model_config"])
    tower = ImageTower(mcfg)
    tower.load_state_dict({k.removeprefix("image_tower."): v.float() for k, v in weights.items()
                           if k.startswith("image_tower.")}, strict=True)
    run = state.get("config", {})
    decoder = build_decoder(tower, mcfg.in_chans, int(run.get("decoder_depth", 2)), int(run.get("decoder_width", 128)),
                            str(run.get("mim_target", "patch")))
    decoder.load_state_dict({k: v.float() for k, v in decoder_weights.items()}, strict=True)
    return tower.eval(), decoder.eval(), PreprocessConfig.from_dict(state["preprocess"])


def reconstruct(source: str | Path, image: Radiograph, *, keep: list[int] | None = None, keep_grid: int | None = None,
                ratio: float = 0.75, strategy: str = "random", seed: int = 0) -> Reconstruction:
    """Reconstruct the patches a mask drops. `keep`: the kept patch indices (e.g. the mask on screen) of a
    `keep_grid` x `keep_grid` patch grid; a mask for another grid than the run's, or none, is drawn with `strategy`
    (random or integrity: attention needs the text of a batch), `ratio` and `seed`."""
    problem = mask_ratio_problem(ratio, above_zero=True)
    if problem:  # said before the checkpoint is read; a mask drawn with it would be wrong or empty
        raise MedflipError(f"the mask ratio {problem}")
    import torch

    from medflip_core.model.mim_decoder import mim_targets, patch_stats, patchify

    tower, decoder, pre = _load(checkpoint_with_decoder(source))
    pixels = preprocess(image, pre)  # (1, S, S), normalised as in training
    size, patch = pre.image_size, tower.patch_size
    rows, cols = patch_grid(size, patch)
    n = rows * cols
    note = ""
    if keep is not None and keep_grid is not None and keep_grid != rows:
        redraw = "integrity" if strategy == "attention" else strategy  # no batch text here to score patches with
        note = (f"the mask on screen is for {keep_grid}x{keep_grid} patches and this run's input has {rows}x{cols}: "
                f"a {redraw} mask of the same ratio and seed was drawn for it")
        keep, strategy = None, redraw
    if keep is None:
        if strategy == "attention":
            raise MedflipError("the attention mask needs the text of a training batch: give the kept patches "
                               "(--keep, as the Mask sampling tab does) or use random or integrity")
        scores = integrity_scores(pixels[None], patch) if strategy == "integrity" else None
        keep_arr = make_patch_mask(strategy, 1, n, ratio, seed, scores).keep[0]
    else:
        keep_arr = np.unique(np.asarray(keep, dtype=np.int64))
        if keep_arr.size == 0 or keep_arr.min() < 0 or keep_arr.max() >= n or keep_arr.size >= n:
            raise MedflipError(f"the kept patches must be some, not all, of the {n} patches (0 to {n - 1})")
    x = torch.from_numpy(pixels[None].astype(np.float32))
    k = torch.from_numpy(keep_arr[None])
    with torch.no_grad():  # never torch.set_grad_enabled: this may run inside another program's process
        out = tower(x, k)
        pred = decoder(out.hidden, k, tower.vit.num_prefix_tokens)  # (1, L, out_dim): the run's target
    kind = decoder.shape.target
    target = mim_targets(x, patch, kind)
    dropped = np.ones(n, dtype=bool)
    dropped[keep_arr] = False
    loss = float((pred[0, torch.from_numpy(dropped)] - target[0, torch.from_numpy(dropped)]).pow(2).mean())
    patches = patchify(x, patch)[0]  # (L, p*p): true pixels of every patch, training-normalised
    # the predicted pixels: a `patch` target is scaled back with the true patch's mean and spread (the decoder never
    # predicts them), an `image` target is the pixels themselves, `both` carries them in its second half
    if kind == "patch":
        mean, spread = patch_stats(patches)
        guess = pred[0] * spread + mean
    else:
        guess = pred[0, :, -patches.shape[-1]:]
    filled = torch.where(torch.from_numpy(dropped)[:, None], guess, patches)

    def image_of(flat: torch.Tensor) -> np.ndarray:
        grid = flat.reshape(rows, cols, patch, patch).permute(0, 2, 1, 3).reshape(size, size).numpy()
        return np.clip(grid * pre.std + pre.mean, 0.0, 1.0)

    original = image_of(patches)
    shade = np.repeat(np.repeat(dropped.reshape(rows, cols), patch, 0), patch, 1)
    kept = np.where(shade, original * 0.25 + 0.1, original)
    return Reconstruction(original, kept, image_of(filled), keep_arr, loss, note, kind)


def write_png(rec: Reconstruction, path: str | Path) -> Path:
    """The three panels side by side as a grey PNG (written whole, then renamed)."""
    from PIL import Image

    from medflip_core.atomic import USER_FILE, atomic_path

    path = Path(path)
    with atomic_path(path, USER_FILE) as tmp:
        Image.fromarray(rec.side_by_side()).save(tmp, format="PNG")
    return path
