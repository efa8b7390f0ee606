"""Not built yet: arrives with issue #3 (see ../shared/ARCHITECTURE.md for its role)."""
