"""Not built yet: arrives with issue #5 (see ../shared/ARCHITECTURE.md for its role)."""
