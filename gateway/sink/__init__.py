"""The only place that talks to InfluxDB: schema, line protocol, writers and the sink service."""
