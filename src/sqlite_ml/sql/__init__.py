"""The SQL surface: the registry of every ``sqml_*`` function, the thin functions that
implement them, the per-connection session, and attaching them to connections."""
