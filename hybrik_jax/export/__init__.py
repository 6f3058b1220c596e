"""Exported models: a checkpoint as SavedModel, StableHLO or ONNX artefacts.

serving: the one function every artefact computes (crops + camera -> body);
formats: the writers (jax.export, jax2tf, jax2onnx) and export.json;
exporter: checkpoint -> artefact (what `python -m hybrik_jax.export_model` runs).
"""
