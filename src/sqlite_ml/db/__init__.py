"""The store and data access, the only SQL text: a user's relations and readers, the
``sqml_*`` schema, its records, and the report queries."""
