"""Shared Python helpers for Feature Tracer's tools: safetensors I/O, BPE, the
TransformerLens-style reference model, the SAE and the bundle writer."""
