"""The web console: the live choreography in a browser, read-only (docs/console.md).

- feed.py: the MQTT side, the monitor's read-only subscription, into the live state
- live.py: the live state: manifests, counters, schemas, and what flows (traffic.py, recent.py)
- stream.py: the server-sent event stream, each client sampled from a bounded queue
- lookups.py, trace.py: the stored history (InfluxDB), merged with the recent live facts
- metrics.py: every service's counters as Prometheus metrics
- security.py: loopback by default, the token elsewhere, the headers of every response
- app.py: the HTTP API and the files; server.py runs it all in one process
"""
