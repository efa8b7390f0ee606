"""Not built yet: arrives with issue #6 (see ../shared/ARCHITECTURE.md for its role)."""
