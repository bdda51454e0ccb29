"""A bounded check of the HDF5 global heap collections that variable-length strings live in.

libhdf5 (2.0.0) can loop forever decoding a corrupt collection (an object whose size runs past the
collection's end), and every vlen string of a file shares that collection: one flipped byte makes
any string read hang. Before libhdf5 touches a collection, :class:`HeapCheck` walks it in Python from
the raw file bytes (format spec, "Global Heap") and refuses one whose objects do not tile it exactly.
Only contiguous datasets (what h5py writes) can be checked; other layouts are read unchecked.
"""

from __future__ import annotations

from typing import BinaryIO

from h5py import h5d, h5f

from ._h5values import BadValue, Budget

_ALIGN = 8


class HeapCheck:
    """Checks the collections a vlen dataset points into, each once, reading the file through `raw`, and
    charges the strings' lengths to `budget` (many items may name one large string)."""

    def __init__(self, fid: h5f.FileID, raw: BinaryIO, budget: Budget):
        self.raw = raw
        self.budget = budget
        self.size = fid.get_filesize()
        self.base = fid.get_create_plist().get_userblock()
        self.addr_size, self.len_size = fid.get_create_plist().get_sizes()
        self.checked: set[int] = set()

    def __call__(self, dsid: h5d.DatasetID, count: int) -> None:
        """BadValue unless every heap object the `count` elements of a contiguous dataset name is intact."""
        offset = dsid.get_offset()
        if offset is None:
            return  # compact or chunked: libhdf5 reads it unchecked
        item = 4 + self.addr_size + 4  # sequence length, collection address, object index
        data = self.bytes(offset, item * count, "string data")
        self.budget.charge(sum(self.unpack(data, i * item, (4,))[0] for i in range(count)), "strings")
        for i in range(count):
            (addr,) = self.unpack(data, i * item + 4, (self.addr_size,))
            if addr:  # 0 is a null sequence, which libhdf5 does not look up
                self.collection(addr)

    def collection(self, addr: int) -> None:
        """Walk one collection's objects as libhdf5 will, refusing any that leave its bounds."""
        if addr in self.checked:
            return
        head = self.bytes(addr, 8 + self.len_size, f"global heap at {addr}")
        if head[:5] != b"GCOL\x01":
            raise BadValue(f"global heap at {addr} has no valid collection signature")
        (total,) = self.unpack(head, 8, (self.len_size,))
        body = self.bytes(addr, total, f"global heap at {addr}")
        header = 8 + self.len_size  # index, reference count, reserved, size
        p = 8 + self.len_size
        while p + header <= total:
            index, size = self.unpack(body, p, (2, 2, 4, self.len_size))[::3]
            need = header + -(-size // _ALIGN) * _ALIGN if index else size
            if need < header or p + need > total:
                raise BadValue(f"global heap at {addr} is corrupt (object {index} of {size} bytes at {p})")
            p += need
        self.checked.add(addr)

    def bytes(self, addr: int, n: int, what: str) -> bytes:
        """`n` bytes at file address `addr`; BadValue when they lie beyond the end of the file."""
        start = self.base + addr
        if start + n > self.size:
            raise BadValue(f"{what} ({n} bytes) lies beyond the end of the file")
        self.raw.seek(start)
        return self.raw.read(n)

    @staticmethod
    def unpack(data: bytes, at: int, widths: tuple[int, ...]) -> list[int]:
        """Little-endian unsigned ints of the given byte widths, read one after another from `at`."""
        out = []
        for width in widths:
            out.append(int.from_bytes(data[at:at + width], "little"))
            at += width
        return out
