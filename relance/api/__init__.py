"""The HTTP API: the app factory (``app``), one router per capability, the one error shape."""
