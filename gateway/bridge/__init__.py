"""The actuation bridge: `actuation.requested.v1` for a profile device -> that device's native command."""
from .service import SPEC, Bridge, BridgeService, Commands, command_topics

__all__ = ["SPEC", "Bridge", "BridgeService", "Commands", "command_topics"]
