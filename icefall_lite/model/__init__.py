"""Streaming Zipformer transducer: encoder, decoder, joiner, loss wiring."""
