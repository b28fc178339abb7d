"""faststream Kafka apps: projection consumers (and later command intake, ops monitor)."""
