import socket

from gateway.cli import main
from gateway.service import EXIT_CONFIG, EXIT_FAILED


def test_beyond_loopback_without_a_token_the_console_does_not_start(capsys, monkeypatch):
    monkeypatch.delenv("CHOREO_CONSOLE_TOKEN", raising=False)
    assert main(["console", "--host", "0.0.0.0", "--port", "0"]) == EXIT_CONFIG
    assert "needs a token" in capsys.readouterr().err


def test_an_unreadable_token_file_is_a_setting_error(capsys, tmp_path):
    assert main(["console", "--token-file", str(tmp_path / "missing")]) == EXIT_CONFIG
    assert "cannot read it" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["console", "--port", str(port)]) == EXIT_FAILED
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_port_out_of_range_is_refused(capsys):
    assert main(["console", "--port", "70000"]) == EXIT_CONFIG
    assert "--port 70000" in capsys.readouterr().err
