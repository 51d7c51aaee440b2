"""Tooling around the controller: config rendering, the local runner, the simulated cluster."""
