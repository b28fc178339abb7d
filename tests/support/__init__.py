"""Test helpers: a real system started as OS processes, and an API client."""
