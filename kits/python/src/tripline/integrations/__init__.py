"""Framework integrations, each importable only with its framework installed (``pip install tripline[<extra>]``)."""
