"""Business logic behind the routers: one database transaction per use case."""
