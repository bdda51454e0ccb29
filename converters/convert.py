"""Conversion by file extension (placeholder until the converter work lands)."""


def convert(src, dst, **kwargs):  # pragma: no cover
    raise NotImplementedError
