"""Not built yet: arrives with issue #7 (see ../shared/ARCHITECTURE.md for its role)."""
