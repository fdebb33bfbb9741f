"""The examples of docs/devices.md: its fleet file validates and every message it shows decodes."""
from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from gateway.fleet import Fleet
from gateway.profiles import Memory, profile_of

PAGE = Path(__file__).resolve().parent.parent.parent / "docs" / "devices.md"
FLEET_BLOCK = re.compile(r"<!-- example: fleet -->\n```toml\n(.*?)```\n", re.DOTALL)
DECODES_BLOCK = re.compile(r"<!-- decodes: (\S+) -->\n```json\n(.*?)```\n", re.DOTALL)


def test_the_fleet_example_is_a_valid_fleet_with_each_convention():
    [text] = FLEET_BLOCK.findall(PAGE.read_text())
    fleet = Fleet.model_validate(tomllib.loads(text))
    assert {spec.profile for spec in fleet.devices()} == {"zigbee2mqtt", "tasmota", "shelly", "homie"}
    assert fleet.accounts() == ["heater-h", "shellyplus1-a8032abe54dc", "sonoff-th", "zigbee2mqtt"]


def test_every_message_shown_decodes_into_what_it_says():
    blocks = DECODES_BLOCK.findall(PAGE.read_text())
    assert len(blocks) == 3
    for topic, payload in blocks:
        profile, native = profile_of(topic)
        [report] = profile.decode(topic, payload.strip().encode(), datetime.now(UTC), Memory())
        assert report.native == native and (report.measurements or report.state), topic
