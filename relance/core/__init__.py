"""Settings, databases, tokens, the payload codec, logs and the YAML source helpers every layer uses."""
