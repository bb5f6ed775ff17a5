"""From a trained transducer to text: checkpoint selection, searches, streaming, WER files.

| module | what |
|---|---|
| ``checkpoint_selection`` | ``--epoch/--iter/--avg/--use-averaged-model/--exp-dir`` and loading the selected weights |
| ``search``, ``hypotheses`` | the search interface and batched hypotheses |
| ``greedy_search``, ``beam_search``, ``modified_beam_search``, ``fast_beam_search`` | the methods; ``methods.make_search`` picks one by name |
| ``features`` | tail padding, fbank computed as audio arrives, audio loading |
| ``streaming`` | ``DecodeStream`` and the batched pool ``StreamingDecoder`` |
| ``wer`` | WER with kaldialign and icefall's recogs/errs/wer-summary files |
"""
