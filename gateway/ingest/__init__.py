"""Device-native payloads -> validated canonical events (one module per device format)."""
