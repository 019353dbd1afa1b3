"""Running one GraphQL document: limits, the executor, the compiled path, error shapes."""
