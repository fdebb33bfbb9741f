"""The choreography gateway: contract, transport seam, ingest, reactors runtime and sink."""
