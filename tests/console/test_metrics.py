from gateway.console.metrics import escape, exposition

CONSOLE = {"facts_received": 10, "skipped": 2, "clients": 1, "queued": 0, "dropped": 0, "connected": 1}


def test_label_values_are_escaped_as_the_format_says():
    assert escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_every_counter_of_every_service_and_the_consoles_own():
    services = [
        {"name": "threshold", "partition": None, "status": "online", "counters": {"received": 123, "lag_seconds": 0.5}},
        {"name": "sink", "partition": "2", "status": "offline", "counters": {"spooled": 7}},
        {"name": "x", "partition": None, "status": "unknown", "counters": {"odd": 1}},
    ]
    lines = exposition(services, CONSOLE, {"undecodable": 3}).splitlines()
    assert 'choreo_service_counter{service="threshold",partition="",counter="received"} 123' in lines
    assert 'choreo_console_counter{counter="undecodable"} 3' in lines
    assert 'choreo_service_counter{service="threshold",partition="",counter="lag_seconds"} 0.5' in lines
    assert 'choreo_service_counter{service="sink",partition="2",counter="spooled"} 7' in lines
    assert 'choreo_service_up{service="threshold",partition=""} 1' in lines
    assert 'choreo_service_up{service="sink",partition="2"} 0' in lines
    assert not any(line.startswith('choreo_service_up{service="x"') for line in lines)  # no manifest
    assert "choreo_console_facts_received_total 10" in lines and "choreo_console_facts_skipped_total 2" in lines
    assert "choreo_console_clients 1" in lines
    assert "# TYPE choreo_service_up gauge" in lines


def test_a_counter_name_cannot_break_out_of_its_label():
    services = [{"name": "s", "partition": None, "status": "online", "counters": {'x"} 1\nevil{a="': 1}}]
    lines = exposition(services, CONSOLE).splitlines()
    assert 'choreo_service_counter{service="s",partition="",counter="x\\"} 1\\nevil{a=\\""} 1' in lines
    assert not any(line.startswith("evil") for line in lines)
