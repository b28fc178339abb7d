"""Read models (registers) built from events, and the audit trail."""
