"""A write in one process wakes the publisher of the same store; rings nobody hears and
bells of other stores change nothing."""

from __future__ import annotations

import sys
import threading

import pytest

from infra.publisher_doorbell import Bell, Listener, address
from infra.settings import Settings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="abstract Unix sockets are Linux-only")


def test_a_ring_wakes_the_listener(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    woken = threading.Event()
    listener = Listener(settings, woken.set).start()
    bell = Bell(settings)
    try:
        bell.ring()
        assert woken.wait(5)
    finally:
        bell.close()
        listener.stop()


def test_a_ring_with_nobody_listening_is_harmless(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bell = Bell(Settings(data_dir=tmp_path))
    for _ in range(1000):  # more than a socket queue holds
        bell.ring()
    bell.close()


def test_each_store_has_its_own_bell(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one, other = Settings(data_dir=tmp_path / "a"), Settings(data_dir=tmp_path / "b")
    assert address(one) != address(other)
    woken = threading.Event()
    listener = Listener(one, woken.set).start()
    bell = Bell(other)
    try:
        bell.ring()
        assert not woken.wait(0.3)
    finally:
        bell.close()
        listener.stop()


def test_a_second_listener_of_one_store_falls_back_to_polling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    first = Listener(settings, lambda: None).start()
    second = Listener(settings, lambda: None).start()  # logs and does nothing
    second.stop()
    first.stop()
