"""`make chaos`: the long fault run (tests/faults/ runs a short one in `make test`)."""
