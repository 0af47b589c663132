"""Message channels behind one provider interface (``base``), routed per settings (``router``)."""
