"""Fine-tuning that ends in a classifier bundle. The `probe` path (frozen ONNX image tower, cached embeddings,
linear head fitted with numpy / scikit-learn, calibration and thresholds chosen on validation) needs no torch.

Modules: dataset (labelled images + patient split), embedding_cache, head (fitting), calibration, thresholds,
validation (figures with patient-level CIs), classifier (the numpy runtime the engine applies),
classifier_bundle (the atomic bundle writer), probe (the job), command (CLI arguments).
Nothing here imports scikit-learn or scipy at module level: the engine imports `classifier` at start-up.
"""
