"""The one safe way this project opens the members of an HDF5 file (.t1c and NIR readers alike).

Before anything is read: soft and external links, external and virtual storage are refused (they would read
other files); every object may be reached by one link only, so a walk visits each object once and its work
and memory stay bounded by the file's size (hard-linked groups would turn a small file into an exponential
tree, and one dataset linked many times into many copies); nesting is limited to MAX_DEPTH groups; every
dataset's declared bytes are charged to one budget (by default the file's size: an unfiltered dataset cannot
hold more than the file), and an unfiltered dataset must store all the bytes it
declares (never-written chunked datasets would be materialised from their fill value).
"""

from __future__ import annotations

import math
from typing import Any, BinaryIO

import h5py
from h5py import h5d, h5g, h5l, h5o, h5z

from ._gheap import HeapCheck
from ._h5values import MAX_DEPTH, BadValue, Budget, Stored

# filters the NIR files written by nir.write may use; .t1c files use none
NIR_FILTERS = frozenset({h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32, h5z.FILTER_SZIP, 32000})


class Refused(BadValue):
    """A member refused by the rules (or unreadable); `key` is its link name."""

    def __init__(self, key: str | None, message: str):
        self.key = key
        super().__init__(message)


class SafeFile:
    """Opens members of one open HDF5 file (read also through `raw` for the heap check) under the rules above."""

    def __init__(self, h5: h5py.File, raw: BinaryIO, budget: int | None = None, filters: frozenset[int] = frozenset()):
        """`budget`: bytes all values may take (default: the file's size); `filters`: HDF5 filter ids allowed."""
        self.budget = Budget(h5.id.get_filesize() if budget is None else budget)
        self.heap = HeapCheck(h5.id, raw, self.budget)
        self.filters = filters
        self.seen: set[Any] = set()

    def members(self, gid: h5g.GroupID, where: str) -> dict[str, Any]:
        """A group's members (GroupID or Stored) by link name; BadValue (Refused naming the member) otherwise."""
        if where.count("/") > MAX_DEPTH:
            raise BadValue(f"{where} is nested too deeply (more than {MAX_DEPTH} levels)")
        out: dict[str, Any] = {}
        for raw in list(gid):
            key = raw.decode("utf-8", "surrogateescape")
            try:
                out[key] = self.member(gid, raw, f"{where}/{key}")
            except Refused:
                raise
            except BadValue as exc:
                raise Refused(key, str(exc)) from None
            except (OSError, RuntimeError, KeyError) as exc:  # truncated or corrupt structures
                raise Refused(key, f"{where}/{key} cannot be read ({exc})") from None
        return out

    def member(self, gid: h5g.GroupID, raw: bytes, where: str) -> Any:
        if gid.links.get_info(raw).type != h5l.TYPE_HARD:
            raise Refused(None, f"{where} is a soft or external link; links are refused")
        obj = h5o.open(gid, raw)
        if obj in self.seen:  # ObjectIDs compare by file and address
            raise BadValue(f"{where} is a second link to an object already read; shared objects are refused")
        self.seen.add(obj)
        if not isinstance(obj, h5d.DatasetID):
            return obj
        plist = obj.get_create_plist()
        if plist.get_layout() == h5d.VIRTUAL or plist.get_external_count():
            raise BadValue(f"{where} stores its data outside the file; refused")
        filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
        if filters - self.filters:
            raise BadValue(f"{where} uses HDF5 filters {sorted(filters - self.filters)} this format does not allow")
        stored = Stored(obj, self.budget, self.heap)
        declared = 0 if stored.shape is None else math.prod(stored.shape) * stored.dtype.itemsize
        if not filters and obj.get_storage_size() < declared:
            raise BadValue(f"{where} declares {declared} bytes but stores {obj.get_storage_size()} (never written)")
        return stored


def walk(safe: SafeFile, gid: h5g.GroupID, where: str = "") -> None:
    """Open every member of the file below `gid` (groups depth first), applying every rule and checking the heap
    of every string dataset; BadValue on the first refusal. A reader that then reads what this walk accepted
    (another library's reader, such as nir.read) stays inside the rules."""
    for key, obj in safe.members(gid, where).items():
        if isinstance(obj, h5g.GroupID):
            walk(safe, obj, f"{where}/{key}")
        elif obj.is_str and obj.shape is not None and h5py.check_string_dtype(obj.dtype).length is None:
            safe.heap(obj.id, math.prod(obj.shape))
