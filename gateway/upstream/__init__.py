"""The OMS client: transports, resilience, and the mapping of every failure."""
