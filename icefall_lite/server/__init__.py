"""A real-time streaming recognition server: sherpa-onnx's websocket protocol, HTTP page and health endpoint.

| module | what |
|---|---|
| ``protocol`` | the messages: binary float32 samples and ``Done`` in, JSON results (and errors) out |
| ``endpoint`` | sherpa-onnx's three endpoint rules, for the checkpoint back-end |
| ``recognizers`` | the two back-ends behind one interface: sherpa-onnx (an export) and this project's decoder (a checkpoint) |
| ``worker`` | the decoding thread: batches the streams that have a chunk ready, reports results to the event loop |
| ``connection`` | one websocket client: limits, bad-client errors, results back to the client |
| ``app`` | the aiohttp application: ``/`` (page or websocket), ``/health``, static files, the connection limit |
| ``cli`` / ``errors`` | streaming_server.py's options and what they build; the error of incomplete options |
| ``client`` | sending wave files to a server, in real time or as fast as possible |
| ``static/`` | the web page (microphone through an AudioWorklet, or a wave file) |
"""
