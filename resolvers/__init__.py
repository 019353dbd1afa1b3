"""Root resolvers, dataloaders and the endpoint planner."""
