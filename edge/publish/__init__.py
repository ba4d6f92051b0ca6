"""Publishing risk levels over MQTT: payload schema, pseudonyms, durable outbox, client."""
