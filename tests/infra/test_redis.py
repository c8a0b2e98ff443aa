"""The Redis client's command packing: hiredis's bytes are redis-py's own, argument for argument."""

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from infra.redis import HiredisPackingConnection

COMMANDS = [
    ("SET", "rcb:{cmp:42}:meta", "9f2c"),
    ("EVALSHA", "a" * 40, 2, "rcb:{cmp:42}:pool", "rcb:{cmp:42}:taken", 1, 172800, "12345", "", -7),
    ("SET", "name", "张三".encode(), "EX", 60),
    ("INCRBYFLOAT", "f", 0.1),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"rcb"),
    ("HSET", "h", "k", b"\x00\xff binary"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_packs_the_bytes_redis_py_packs(command):
    ours = HiredisPackingConnection().pack_command(*command)
    theirs = Connection().pack_command(*command)
    assert b"".join(ours) == b"".join(theirs)


def test_a_value_redis_cannot_take_is_a_data_error():
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "k", None)
