"""Live feeds for API clients: one Kafka consumer of prices and one LISTEN of orders per process."""
