"""``relance dev``: the embedded stack on one machine, and the Temporal binaries it runs."""
