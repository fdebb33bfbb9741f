import pytest

from gateway.errors import ConfigError
from gateway.plugins import build_reactor, reactor_names
from gateway.settings import Settings, load_settings
from reactors.threshold import ThresholdRule, ThresholdSettings


def test_defaults_without_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.mqtt.port == 1883 and settings.influx.database == "choreo"


def test_file_then_environment_precedence(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text('[mqtt]\nport = 1884\nhost = "broker"\n[reactors.threshold]\nhigh = 30.5\nlow = 10\n')
    settings = load_settings({"CHOREO_CONFIG": str(config), "CHOREO_MQTT_PORT": "1885",
                              "CHOREO_REACTORS_THRESHOLD_LOW": "12"})
    assert settings.mqtt.port == 1885
    assert settings.mqtt.host == "broker"
    threshold = settings.reactor("threshold", ThresholdSettings)
    assert (threshold.high, threshold.low) == (30.5, 12)


def test_keys_with_underscores_map_to_their_section():
    settings = load_settings({"CHOREO_INFLUX_RETENTION_POLICY": "autogen",
                              "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "4", "CHOREO_REACTORS_STATE_DIR": "/s"})
    assert settings.influx.retention_policy == "autogen"
    assert settings.reactor("threshold", ThresholdSettings).min_duration == 4
    assert settings.reactors.state_dir == "/s"  # CHOREO_REACTORS_STATE_DIR stays the state dir


def test_a_reactor_without_a_section_gets_its_defaults():
    assert load_settings({}).reactor("threshold", ThresholdSettings) == ThresholdSettings()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CHOREO_MQTT_PORT": "abc"}, "CHOREO_MQTT_PORT: Input should be a valid integer"),
        ({"CHOREO_MQTT_PORT": "70000"}, "CHOREO_MQTT_PORT: Input should be less than or equal to 65535"),
        ({"CHOREO_MQTT_PROT": "1"}, "CHOREO_MQTT_PROT: unknown setting"),
        ({"CHOREO_INFLUX_URL": "influx:8086"}, "CHOREO_INFLUX_URL: String should match pattern"),
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
    config.write_text("[influx]\ntimeout = 'long'\n")
    with pytest.raises(ConfigError, match=r"choreo.toml \[influx\] timeout: Input should be a valid number"):
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

    example = Path(__file__).resolve().parent.parent / "choreo.toml.example"
    from_example = load_settings({"CHOREO_CONFIG": str(example)})
    assert from_example.model_copy(update={"reactor_sections": {}}) == Settings()
    assert set(from_example.reactor_sections) <= set(reactor_names())
    for name in reactor_names():
        assert build_reactor(name, from_example).settings == build_reactor(name, Settings()).settings, name


def test_threshold_rules_pick_the_most_specific_match():
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

    credentials = Credentials.generate(["admin", "monitor", "sink", "threshold"])
    for device in ("sink", "sink-2", "threshold-0-of-2", "demo-monitor"):
        with pytest.raises(ConfigError, match="client id of service"):
            credentials.device_password_file([device])
    assert credentials.device_password_file(["lab-sink-1"]).startswith("lab-sink-1:")


# Each reactor's own settings: [reactors.NAME] and CHOREO_REACTORS_<NAME>_<KEY>, validated by its own model
# when the reactor is built (the gateway does not know a plugin's model).
INSTALLED = "installed: anomaly, availability, climate, door, energy, threshold"


@pytest.mark.parametrize(
    "name, env, message",
    [
        ("threshold", {"CHOREO_REACTORS_THRESHOLD_HIGH": "hot"},
         "invalid settings: CHOREO_REACTORS_THRESHOLD_HIGH: Input should be a valid number, unable to parse string "
         "as a number (got 'hot')"),
        ("threshold", {"CHOREO_REACTORS_THRESHOLD_METRIC": "Temperature"},
         "CHOREO_REACTORS_THRESHOLD_METRIC: String should match pattern"),
        ("door", {"CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "0"},
         "CHOREO_REACTORS_DOOR_LIMIT_SECONDS: Input should be greater than 0 (got '0')"),
        ("threshold", {"CHOREO_REACTORS_THRESHOLD_HIHG": "30"},
         "CHOREO_REACTORS_THRESHOLD_HIHG: unknown setting; known: alert_versions, high, hysteresis, low, metric, "
         "min_duration, rules, severity"),
    ],
)
def test_a_bad_reactor_setting_names_its_variable_when_the_reactor_is_built(name, env, message):
    settings = load_settings(env)
    with pytest.raises(ConfigError) as raised:
        build_reactor(name, settings)
    assert message in raised.value.message


def test_a_bad_reactor_setting_in_the_file_names_file_section_and_key(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text("[reactors.threshold]\nhigh = 'hot'\n")
    with pytest.raises(ConfigError, match=r"choreo.toml \[reactors.threshold\] high: Input should be a valid number"):
        build_reactor("threshold", load_settings({"CHOREO_CONFIG": str(config)}))
    config.write_text("[reactors.anomaly]\nwindow = 10\nmin_samples = 12\n")
    with pytest.raises(ConfigError, match=r"reactors.anomaly: min_samples \(12\) must not exceed window \(10\)"):
        build_reactor("anomaly", load_settings({"CHOREO_CONFIG": str(config)}))


def test_a_reactor_section_and_the_state_dir_live_side_by_side_in_reactors(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text('[reactors]\nstate_dir = "/var/lib/choreo"\n[reactors.door]\nlimit_seconds = 90\n'
                      '[reactors.climate]\nactuators = ["fan", "heater"]\n')
    settings = load_settings({"CHOREO_CONFIG": str(config), "CHOREO_REACTORS_CLIMATE_ACTUATORS": "fan,valve"})
    assert settings.reactors.state_dir == "/var/lib/choreo"
    assert build_reactor("door", settings).settings.limit_seconds == 90
    assert build_reactor("climate", settings).settings.actuators == ["fan", "valve"]  # the environment wins


def test_a_section_or_variable_for_a_reactor_that_is_not_installed_names_the_installed_ones(tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text("[reactors.frost]\nlimit = 3\n")
    with pytest.raises(ConfigError, match=r"choreo.toml \[reactors.frost\]: no installed reactor is named 'frost'; "
                                          + INSTALLED):
        load_settings({"CHOREO_CONFIG": str(config)})
    with pytest.raises(ConfigError) as raised:
        load_settings({"CHOREO_REACTORS_FROST_LIMIT": "3"})
    assert raised.value.message == (f"CHOREO_REACTORS_FROST_LIMIT: names no installed reactor "
                                    f"(CHOREO_REACTORS_<NAME>_<KEY>; {INSTALLED}) nor a [reactors] setting (state_dir)")


@pytest.mark.parametrize(
    "old, message",
    [
        ("[threshold]\nhigh = 30\n", "choreo.toml [threshold]: reactor settings moved: write [reactors.threshold]"),
        ("[[threshold.rules]]\nmetric = 'co2'\n",
         "choreo.toml [threshold]: reactor settings moved: write [reactors.threshold]"),
        ("[climate]\nactuators = ['fan']\n", "choreo.toml [climate]: reactor settings moved: write [reactors.climate]"),
    ],
)
def test_the_old_file_layout_says_what_to_write_instead(tmp_path, old, message):
    config = tmp_path / "choreo.toml"
    config.write_text(old)
    with pytest.raises(ConfigError) as raised:
        load_settings({"CHOREO_CONFIG": str(config)})
    assert raised.value.message.endswith(message)


@pytest.mark.parametrize("old, new", [
    ("CHOREO_THRESHOLD_HIGH", "CHOREO_REACTORS_THRESHOLD_HIGH"),
    ("CHOREO_AVAILABILITY_SILENCE_SECONDS", "CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS"),
    ("CHOREO_ANOMALY_MIN_SAMPLES", "CHOREO_REACTORS_ANOMALY_MIN_SAMPLES"),
])
def test_an_old_variable_says_what_to_write_instead(old, new):
    with pytest.raises(ConfigError) as raised:
        load_settings({old: "1"})
    assert raised.value.message == f"{old}: reactor settings moved: write {new}"


def test_other_choreo_variables_are_still_ignored():
    assert load_settings({"CHOREO_UNRELATED_THING": "1"}) == Settings()
