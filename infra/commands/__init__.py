"""Command handlers, one mixin per case type, combined in infra.application."""
