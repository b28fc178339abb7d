"""Adapters: settings, event store, Kafka, logging. Imports `domain`, never `api`."""
