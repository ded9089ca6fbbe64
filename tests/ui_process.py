"""Helpers for tests that start `seedvar ui` (or any supervised server) as a real process tree."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from seedvar.serving.supervise import port_free


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


class Server:
    """`python -m study ui ...` with its output collected line by line in the background."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seedvar", "ui", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        """The first output line matching pattern, once it is printed; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            assert self.proc.poll() is None, f"seedvar ui ended early:\n{self.output}"
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.output}")

    def stop(self, sig: int, port: int) -> None:
        """Send sig and check what a user relies on: exit 0, every process it started gone, port free."""
        tree = descendants(self.proc.pid)
        assert tree, "seedvar ui started no server"
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        assert self.proc.returncode == 0, self.output
        assert "MLflow UI stopped" in self.output
        assert not alive(tree), f"left running after the signal: {alive(tree)}"
        assert port_free("127.0.0.1", port)


# Flags that let Debian's chromium run headless as root in a container, talking to nothing but the page.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def headless_chromium(browser: str, driver_path: str, profile: Path, size: str = "1600,900"):
    """A selenium driver for the given chromium and chromedriver binaries, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--window-size={size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver_path))


def chromium_or_skip() -> tuple[str, str]:
    """Debian's chromium and its driver, else a pytest skip that says how to get them (nothing is
    downloaded)."""
    import shutil

    import pytest

    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "no browser for the page test: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver)"
        )
    return browser, driver
