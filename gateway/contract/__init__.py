"""The compatibility gate: the recorded JSON Schema of every emitted type, and what a change to it breaks."""
from .compatibility import Change, changes
from .recorded import SCHEMA_DIR, Verdict, check, check_announced, code_schemas, recorded_schemas, update

__all__ = ["SCHEMA_DIR", "Change", "Verdict", "changes", "check", "check_announced", "code_schemas", "recorded_schemas",
           "update"]
