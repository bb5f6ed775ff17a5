"""Deploying a trained transducer: TorchScript (scripted and traced), ONNX for sherpa-onnx, and the helpers
the ``*_pretrained.py`` scripts share (reading wave files, chunked encoding, token tables).

- ``torchscript``: ``script_transducer`` (``cpu_jit.pt``: encoder ``forward`` is the streaming forward, plus
  ``get_init_state``) and ``trace_encoder`` / ``trace_decoder`` / ``trace_joiner``.
- ``onnx_export``: encoder/decoder/joiner ONNX files with the names, state order and metadata sherpa-onnx
  reads, and their int8 versions.
- ``onnx_model``: runs those three files with onnxruntime.
- ``inputs``: wave files -> fbank -> chunks, and token ids -> text.
- ``cli``: the options and first steps the export and ``*_pretrained.py`` scripts share.
"""
