"""The HTTP edge: the app, the /graphql endpoint, the guarded protocol, stores and caches."""
