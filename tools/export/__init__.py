"""The exporter behind tools/export_transformer_lens.py: a TransformerLens model, an SAE and a corpus into a
Feature Tracer bundle (docs/BUNDLE.md).

  tlmodel.py  the model: which TransformerLens configs the app computes exactly (the rest refused by name),
              the weight processing an SAE expects, applied in plain torch
  sae.py      the SAE: Neel Nanda's AutoEncoder checkpoints and SAELens folders (old and current configs,
              float32/float16/bfloat16), refusing the kinds the bundle cannot hold yet
  corpus.py   the tokens: a file (.npy, .safetensors, .pt) or, online, a dataset prepared as the research
              notebook does
  online.py   the hub: TransformerLens, SAELens, datasets and huggingface_hub, imported only when used
  core.py     the bundle: everything checked, then written
"""
