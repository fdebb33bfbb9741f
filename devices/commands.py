"""A profile actuator obeying its convention's native command: change, answer, count."""
from __future__ import annotations

import logging
from collections import Counter

from gateway.errors import InvalidInput
from gateway.events import utc_now
from gateway.transport import Message

from .member import Member

log = logging.getLogger(__name__)


def obey(member: Member, command: Message, counts: Counter[str]) -> list[Message]:
    """What the device publishes in answer to `command`; a malformed one is counted and refused."""
    speaker = member.speaker
    assert speaker is not None
    try:
        change = speaker.command(command)
    except InvalidInput as exc:
        counts["bad_requests"] += 1
        log.warning("%s ignored a %s command on %s: %s", member.device.id, speaker.profile, command.topic,
                    exc.message)
        return speaker.refusal(command, exc.message)
    before = member.device.state()
    member.device.change(change)
    after = member.device.state()
    if after != before:
        counts["actuations"] += 1
    return speaker.answer(command, before, after, utc_now())
