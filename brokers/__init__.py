"""Floor 2: Kafka connection settings, the embedded broker, provisioning, clients, headers."""
