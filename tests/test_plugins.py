"""Reactor plugins: entry points in the group choreo.reactors, installed here as a real distribution
(a dist-info folder on sys.path), as pip would leave it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.plugins import ENTRY_POINT_GROUP, build_reactor, build_reactors, reactor_entry_points, reactor_names
from gateway.settings import load_settings
from reactors.threshold import ThresholdSettings

BUILT_INS = ["anomaly", "availability", "climate", "door", "energy", "threshold"]

FROST = '''
from pydantic import BaseModel, SecretStr

from gateway.events import AlertRaisedV1, ReadingV1
from gateway.reactor import Reactor


class FrostSettings(BaseModel):  # a plain model: the gateway refuses unknown keys all the same
    limit: float = 3.0
    token: SecretStr | None = None


def build(settings):
    reactor = Reactor("frost", description="warns before pipes freeze",
                      settings=settings.reactor("frost", FrostSettings))
    reactor.on(ReadingV1, emits=[AlertRaisedV1])(lambda event, ctx: [])
    return reactor


def build_misnamed(settings):
    return Reactor("icicle")


def build_nothing(settings):
    return None


NOT_A_FUNCTION = 42
'''


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a distribution whose entry points are `entry_points` (NAME -> module:attr), plus modules."""
    def install(entry_points: dict[str, str], modules: dict[str, str]) -> None:
        info = tmp_path / "choreo_frost-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: choreo-frost\nVersion: 0.1\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates importlib's caches
    return install


def test_the_built_ins_are_installed_as_entry_points():
    assert reactor_names() == BUILT_INS
    assert reactor_entry_points()["threshold"] == "reactors.threshold:build"


def test_every_installed_reactor_builds_from_default_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no choreo.toml
    reactors = build_reactors(load_settings({}))
    assert [reactor.name for reactor in reactors] == BUILT_INS
    assert all(reactor.consumes and reactor.emits for reactor in reactors)


def test_a_plugin_builds_like_a_built_in_with_its_own_settings_section(install):
    install({"frost": "frost_plugin:build"}, {"frost_plugin": FROST})
    assert reactor_names() == sorted([*BUILT_INS, "frost"])
    reactor = build_reactor("frost", load_settings({"CHOREO_REACTORS_FROST_LIMIT": "-2.5"}))
    assert reactor.name == "frost" and reactor.settings.limit == -2.5
    assert reactor.consumes == ("reading.v1",) and reactor.emits == {"alert.raised.v1"}


def test_an_unknown_reactor_names_the_installed_ones():
    with pytest.raises(ConfigError, match="unknown reactor 'frost'; installed: anomaly, availability, climate"):
        build_reactor("frost", load_settings({}))


def test_listing_names_does_not_import_a_plugin_and_a_broken_one_names_its_entry_point_and_error(install):
    install({"frost": "frost_broken:build"}, {"frost_broken": "raise RuntimeError('no frost today')"})
    assert "frost" in reactor_names()
    message = r"frost = 'frost_broken:build' \(choreo.reactors\) failed to load: RuntimeError: no frost today"
    with pytest.raises(ConfigError, match=message):
        build_reactor("frost", load_settings({}))


def test_a_missing_module_names_its_entry_point(install):
    install({"frost": "frost_nowhere:build"}, {})
    with pytest.raises(ConfigError, match="'frost_nowhere:build'.* failed to load: ModuleNotFoundError"):
        build_reactor("frost", load_settings({}))


@pytest.mark.parametrize("target, message", [
    ("frost_odd:NOT_A_FUNCTION", "'frost_odd:NOT_A_FUNCTION' .* is a int, not a build\\(settings\\) function"),
    ("frost_odd:build_nothing", "'frost_odd:build_nothing' .* returned NoneType, not a Reactor"),
    ("frost_odd:build_misnamed", "built a reactor named 'icicle'; the entry point's name must be the reactor's"),
])
def test_an_entry_point_that_builds_no_reactor_of_its_name_is_refused(install, target, message):
    install({"frost": target}, {"frost_odd": FROST})
    with pytest.raises(ConfigError, match=message):
        build_reactor("frost", load_settings({}))


def test_a_plugin_section_in_the_file_is_validated_by_its_model_without_echoing_secrets(install, tmp_path):
    install({"frost": "frost_settings:build"}, {"frost_settings": FROST})
    config = tmp_path / "choreo.toml"
    config.write_text('[reactors.frost]\nlimit = -1.5\ntoken = "s3cret"\n')
    settings = load_settings({"CHOREO_CONFIG": str(config)})
    assert build_reactor("frost", settings).settings.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    config.write_text("[reactors.frost]\ntoken = 982451653\nlimt = 1\n")
    with pytest.raises(ConfigError, match=r"\[reactors.frost\] limt: unknown setting; known: limit, token"):
        build_reactor("frost", load_settings({"CHOREO_CONFIG": str(config)}))
    config.write_text("[reactors.frost]\ntoken = 982451653\n")
    with pytest.raises(ConfigError) as raised:
        build_reactor("frost", load_settings({"CHOREO_CONFIG": str(config)}))
    assert "choreo.toml [reactors.frost] token: Input should be a valid string" in raised.value.message
    assert "982451653" not in raised.value.message


def test_a_variable_belongs_to_the_longest_installed_name_that_fits(install, tmp_path):
    install({"threshold-eu": "threshold_eu:build"}, {})  # never imported: only its settings are read here
    settings = load_settings({"CHOREO_REACTORS_THRESHOLD_EU_HIGH": "31", "CHOREO_REACTORS_THRESHOLD_HIGH": "29"})
    assert settings.reactor("threshold-eu", ThresholdSettings).high == 31
    assert settings.reactor("threshold", ThresholdSettings).high == 29
    config = tmp_path / "choreo.toml"
    config.write_text("[reactors.threshold-eu]\nlow = 2\n")
    assert load_settings({"CHOREO_CONFIG": str(config)}).reactor("threshold-eu", ThresholdSettings).low == 2
