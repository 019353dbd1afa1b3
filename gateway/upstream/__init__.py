"""The OMS client over its transports, with deadline, retries, breaker and concurrency cap."""
