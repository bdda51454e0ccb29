"""Byte-level mutations shared by the .t1c and ONNX mutators."""

from __future__ import annotations

import random


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip bits, overwrite, truncate, insert or delete a run of bytes."""
    buf = bytearray(data)
    op = rng.randrange(5)
    if not buf:
        return bytes(buf)
    at = rng.randrange(len(buf))
    if op == 0:
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        n = rng.randint(1, 256)
        buf[at:at + n] = bytes([rng.choice([0, 0xFF, rng.randrange(256)])]) * len(buf[at:at + n])
    elif op == 2:
        del buf[at:]
    elif op == 3:
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        del buf[at:at + rng.randint(1, 64)]
    return bytes(buf)


