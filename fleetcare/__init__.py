"""FleetCare composition root: settings, the `fleetcare` CLI, wiring of demo and workers."""
