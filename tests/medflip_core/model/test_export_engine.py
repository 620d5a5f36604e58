"""Export a real trained checkpoint, then run it through ONNX Runtime: parity with torch, hashes, scoring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from medflip_core.bundles.bundle import load_bundle
from medflip_core.errors import MedflipError
from medflip_core.imaging import load_image
from medflip_core.imaging.preprocess import PreprocessConfig, preprocess_batch
from medflip_core.inference.engine import Engine
from medflip_core.model.export import load_trained_model

pytestmark = pytest.mark.slow

SENTENCES = ["No acute cardiopulmonary abnormality.", "Right lower lobe pneumonia.",
             "Small left pleural effusion with adjacent atelectasis.", "Heart size is normal."]


@pytest.fixture(scope="module")
def images(shared_data):
    return [load_image(shared_data / "dicom" / "RG1_J2KR.dcm"),
            load_image(shared_data / "dicom" / "rsna_cr_chest_jpeg_baseline.dcm"),
            load_image(shared_data / "cxr-pneumonia-kermany" / "train" / "PNEUMONIA" / "person1000_virus_1681.jpeg")]


def test_manifest_lists_every_file_with_sha256_and_provenance(tiny_bundle):
    bundle = load_bundle(tiny_bundle, verify=True)
    files = bundle.manifest["files"]
    for name in ("image_encoder.onnx", "text_encoder.onnx", "tokenizer/tokenizer.json", "weights.safetensors",
                 "sentence_bank.npz"):
        assert name in files and len(files[name]["sha256"]) == 64
    prov = bundle.manifest["provenance"]
    assert prov["checkpoint_step"] == 4 and prov["training_config"]["loss"] == "medflip"
    assert "Research use only" in bundle.manifest["intended_use"]
    assert bundle.manifest["preprocess"]["image_size"] == 112


def test_onnx_runtime_matches_torch(tiny_bundle, images):
    bundle = load_bundle(tiny_bundle)
    model = load_trained_model(tiny_bundle / "weights.safetensors", bundle.manifest["model"])
    engine = Engine(tiny_bundle)
    pixels = preprocess_batch(images, PreprocessConfig.from_dict(bundle.preprocess))
    ort_out = engine.embed_pixels(pixels)
    with torch.no_grad():
        torch_out = model.encode_image(torch.from_numpy(pixels))
    np.testing.assert_allclose(ort_out.embedding, torch_out.embedding.numpy(), atol=1e-4)
    np.testing.assert_allclose(ort_out.patch_tokens, torch_out.tokens.numpy(), atol=1e-4)
    tok = model.text_tower.tokenize(SENTENCES)
    with torch.no_grad():
        torch_text = model.encode_text(tok["input_ids"], tok["attention_mask"]).embedding.numpy()
    np.testing.assert_allclose(engine.embed_texts(SENTENCES), torch_text, atol=1e-4)


def test_engine_scores_a_real_dicom(tiny_bundle, shared_data):
    engine = Engine(tiny_bundle)
    emb = engine.embed_images([load_image(shared_data / "dicom" / "RG1_J2KI.dcm")])
    scores = engine.classify(emb.embedding[0], ["No Finding", "Pneumonia", "Pleural Effusion"])
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    heat = engine.similarity_map(emb.patch_tokens[0], "Pneumonia")
    assert heat.shape == engine.grid == (7, 7) and np.isfinite(heat).all()
    hits = engine.retrieve(emb.embedding[0], k=5)
    assert len(hits) == 5 and hits[0].score >= hits[-1].score
    assert all(isinstance(h.sentence, str) and h.sentence for h in hits)


def test_damaged_bundle_is_refused(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / "image_encoder.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(MedflipError, match="checksum"):
        Engine(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(MedflipError, match="not a MedFLIP model bundle"):
        Engine(copy)


def test_inference_process_never_imports_torch(tiny_bundle, shared_data):
    code = (
        "import sys, json\n"
        "from medflip_core.inference.engine import Engine\n"
        "from medflip_core.imaging import load_image\n"
        f"e = Engine({str(tiny_bundle)!r})\n"
        f"emb = e.embed_images([load_image({str(shared_data / 'dicom' / 'RG1_UNCR.dcm')!r})]).embedding[0]\n"
        "s = e.classify(emb, ['No Finding', 'Pneumonia'])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "transformers": False}
