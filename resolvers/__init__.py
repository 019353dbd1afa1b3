"""What the schema's resolvers call: dataloaders, fetching, pagination, the planner, the budget."""
