"""Loopback addresses of their own: taken ones and ones another process listens on are skipped."""

import socket

from localcloud.loopback import own_address

BLOCK = range(250, 251)  # far from the blocks the providers use


def test_an_address_is_skipped_when_taken_or_when_any_of_its_ports_is_in_use():
    first = own_address(BLOCK, (47001, 47002), set(), "tests")
    assert first == "127.0.250.1"
    assert own_address(BLOCK, (47001, 47002), {first}, "tests") == "127.0.250.2"
    with socket.socket() as busy:  # another process holds the second port of .1
        busy.bind((first, 47002))
        busy.listen(1)
        assert own_address(BLOCK, (47001, 47002), set(), "tests") == "127.0.250.2"
        assert own_address(BLOCK, (47001,), set(), "tests") == first


def test_a_block_with_no_free_address_gives_none():
    taken = {f"127.0.250.{n}" for n in range(1, 255)}
    assert own_address(BLOCK, (47001,), taken, "tests") is None
