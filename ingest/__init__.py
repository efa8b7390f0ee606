"""MQTT ingestion: decode, validate, de-duplicate, batch, store, acknowledge."""
