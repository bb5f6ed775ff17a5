"""icefall_lite: icefall's streaming Zipformer transducer recipe in plain PyTorch.

The library is laid out along the pipeline:
audio -> ``data`` (corpus, manifests, features, batches) -> ``model`` (encoder, decoder,
joiner, transducer) + ``rnnt_loss`` -> ``training`` (optimizer, schedule, checkpoints).
"""
