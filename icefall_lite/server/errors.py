"""The error of the server's options, apart from ``cli`` so that ``run_script``'s USER_ERRORS
(``icefall_lite/decoding/options.py``) can name it without importing aiohttp and sherpa-onnx."""


class ServerOptionError(ValueError):
    """streaming_server.py's options are incomplete or contradict each other; the message names the options."""
