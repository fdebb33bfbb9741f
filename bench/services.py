"""Service processes for the benchmarks: started as deployed, ready once they announce themselves."""
from __future__ import annotations

import subprocess

from gateway.localstack import LocalStack
from tests.helpers import MqttObserver, wait_for


def wait_online(stack: LocalStack, name: str, pids: list[int], timeout: float = 60) -> None:
    """Until every process has announced itself online on choreo/services/{name}..., which it does once subscribed."""
    def online(pid: int, documents: list[dict]) -> bool:
        return any(d["status"] == "online" and d["instance"].endswith(f":{pid}") for d in documents)

    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], f"bench-status-{name}") as observer:
        observer.subscribe("choreo/services/#")
        wait_for(lambda: all(online(pid, observer.manifests(name)) for pid in pids), timeout,
                 f"{name} online")


def stop(processes: list[subprocess.Popen], timeout: float = 60) -> None:
    """SIGTERM for a clean stop; SIGKILL for whatever has not stopped by then."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
