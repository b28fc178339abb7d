"""The Rules for regulating migration processes in Almaty, as pure Python.

Nothing here knows about Kafka, HTTP or the event store's technology.
"""
