import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings


def test_defaults_without_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.mqtt.port == 1883 and settings.influx.database == "choreo"


def test_file_then_environment_precedence(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text('[mqtt]\nport = 1884\nhost = "broker"\n[threshold]\nhigh = 30.5\n')
    settings = load_settings({"CHOREO_CONFIG": str(config), "CHOREO_MQTT_PORT": "1885"})
    assert settings.mqtt.port == 1885
    assert settings.mqtt.host == "broker"
    assert settings.threshold.high == 30.5


def test_keys_with_underscores_map_to_their_section():
    settings = load_settings({"CHOREO_INFLUX_RETENTION_POLICY": "autogen", "CHOREO_THRESHOLD_MIN_DURATION": "4"})
    assert settings.influx.retention_policy == "autogen"
    assert settings.threshold.min_duration == 4


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CHOREO_MQTT_PORT": "abc"}, "CHOREO_MQTT_PORT: Input should be a valid integer"),
        ({"CHOREO_MQTT_PORT": "70000"}, "CHOREO_MQTT_PORT: Input should be less than or equal to 65535"),
        ({"CHOREO_MQTT_PROT": "1"}, "CHOREO_MQTT_PROT: unknown setting"),
        ({"CHOREO_INFLUX_URL": "influx:8086"}, "CHOREO_INFLUX_URL: String should match pattern"),
        ({"CHOREO_THRESHOLD_METRIC": "Temperature"}, "CHOREO_THRESHOLD_METRIC: String should match pattern"),
        ({"CHOREO_DEVICES_COUNT": "0"}, "CHOREO_DEVICES_COUNT: Input should be greater than or equal to 1"),
        ({"CHOREO_MQTT_PASSWORD": "x"}, "mqtt.password is set but mqtt.username is not"),
        ({"CHOREO_CONFIG": "/nonexistent/choreo.toml"}, "does not exist"),
    ],
)
def test_bad_settings_name_the_setting(env, message):
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert message in raised.value.message


def test_bad_file_names_file_section_and_key(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text("[threshold]\nhigh = 'hot'\n")
    with pytest.raises(ConfigError, match=r"choreo.toml \[threshold\] high: Input should be a valid number"):
        load_settings({"CHOREO_CONFIG": str(config)})
    config.write_text("[mqqt]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[mqqt\]"):
        load_settings({"CHOREO_CONFIG": str(config)})
    config.write_text("[mqtt\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"CHOREO_CONFIG": str(config)})


def test_secrets_never_appear_in_errors_or_repr(tmp_path):
    settings = load_settings({"CHOREO_MQTT_USERNAME": "u", "CHOREO_MQTT_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)
    config = tmp_path / "choreo.toml"
    config.write_text('[mqtt]\nusername = "u"\npassword = 982451653\n[influx]\ntoken = 3.14159\n')
    with pytest.raises(ConfigError) as raised:
        load_settings({"CHOREO_CONFIG": str(config)})
    message = str(raised.value)
    assert "[mqtt] password: Input should be a valid string" in message
    assert "982451653" not in message and "3.14159" not in message


def test_the_shipped_example_is_valid_and_matches_the_defaults():
    from pathlib import Path

    from gateway.settings import Settings

    example = Path(__file__).resolve().parent.parent / "choreo.toml.example"
    assert load_settings({"CHOREO_CONFIG": str(example)}) == Settings()


def test_threshold_rules_pick_the_most_specific_match():
    from gateway.settings import ThresholdRule, ThresholdSettings

    settings = ThresholdSettings(high=28, rules=[
        ThresholdRule(metric="temperature", high=35, kind="power"),
        ThresholdRule(metric="temperature", high=30, site="hq"),
        ThresholdRule(metric="temperature", high=40, site="hq", room="plant"),
        ThresholdRule(metric="co2", high=1200)])
    assert settings.rule_for("temperature", "hq", "plant", "power").high == 40
    assert settings.rule_for("temperature", "hq", "lab", "power").high == 30
    assert settings.rule_for("temperature", "depot", "store", "power").high == 35
    assert settings.rule_for("temperature", None, None, None).high == 28
    assert settings.rule_for("co2", None, None).high == 1200
    assert settings.rule_for("humidity", None, None) is None


def test_a_device_id_that_is_or_starts_like_a_service_client_id_is_refused():
    from gateway.credentials import Credentials

    credentials = Credentials.generate()
    for device in ("sink", "sink-2", "threshold-0-of-2", "demo-monitor"):
        with pytest.raises(ConfigError, match="client id of service"):
            credentials.device_password_file([device])
    assert credentials.device_password_file(["lab-sink-1"]).startswith("lab-sink-1:")
