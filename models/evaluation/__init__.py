"""The models measured against a simulated fleet's ground truth (`fleetcare evaluate --sim`).

The one part of `models` that drives the simulator: it grows fleets with known filter
exhaustions and faults, replays them day by day through the same reducers and models the
scoring pass uses, and scores what the models say against what really happened. The
estimators themselves never import `device_sim`.
"""
