"""The record compression codecs of RecordBatch v2, decoded with a bound on the output.

A batch's ``attributes`` bits 0-2 name the codec of everything after its
61-byte header (the records, compressed as one block): 0 none, 1 gzip,
2 snappy, 3 lz4, 4 zstd.  MiniMQ stores client batches compressed as they
came and decompresses them only to hand records to readers that want them
decoded (HTTP, SSE, the UI) and to check a batch at produce.

* gzip: the standard library's ``zlib`` (gzip wrapper, one or more members);
* snappy: either raw snappy or the xerial framing Java clients write
  (a 16-byte header ``0x82 "SNAPPY" 0x00``, version, compatible version, then
  blocks of ``int32 length`` + raw snappy), detected by that header;
* lz4: the LZ4 frame format (KIP-57); zstd: a zstd frame; both via ``cramjam``.

Why a bound.  A few kilobytes of zstd or gzip can expand to gigabytes.  Every
decompression here writes into at most ``limit`` bytes and raises
:class:`DecompressionFailed` beyond, so a batch can never cost more memory
or decode time than ``limit`` bytes of plain records would.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

import cramjam

NONE: Final = 0
GZIP: Final = 1
SNAPPY: Final = 2
LZ4: Final = 3
ZSTD: Final = 4
CODEC_MASK: Final = 0x07
CODEC_NAMES: Final = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

_XERIAL_MAGIC: Final = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE: Final = 16
_BLOCK_LENGTH: Final = struct.Struct(">i")
# First try for lz4/zstd, whose frames need not state their decoded size: a
# buffer this many times the input (most batches compress far less), then the limit.
_FIRST_GUESS_RATIO: Final = 16
_FIRST_GUESS_MIN: Final = 64 * 1024
_GZIP_ANY_HEADER: Final = 16 + zlib.MAX_WBITS

Buffer = bytes | bytearray | memoryview


class DecompressionFailed(ValueError):
    """The payload is not valid for its codec, or decodes to more than the limit."""


def decompress(codec: int, payload: Buffer, limit: int) -> bytes | memoryview:
    """The decoded bytes of ``payload`` (at most ``limit``), else ``DecompressionFailed``."""
    try:
        if codec == GZIP:
            return _gunzip(payload, limit)
        if codec == SNAPPY:
            return _unsnappy(payload, limit)
        if codec in (LZ4, ZSTD):
            module = cramjam.lz4 if codec == LZ4 else cramjam.zstd
            guess = min(limit, max(_FIRST_GUESS_MIN, _FIRST_GUESS_RATIO * len(payload)))
            for size in (guess, limit) if guess < limit else (limit,):
                out = bytearray(size)
                try:
                    written = module.decompress_into(payload, out)
                except cramjam.DecompressionError:
                    continue
                return memoryview(out)[:written]
            raise DecompressionFailed(
                f"{CODEC_NAMES[codec]} payload is corrupt or decodes to more than {limit} bytes"
            )
    except (zlib.error, cramjam.DecompressionError, struct.error) as exc:
        raise DecompressionFailed(f"{CODEC_NAMES[codec]} payload is corrupt: {exc}") from None
    raise DecompressionFailed(f"unknown compression codec {codec}")


def _gunzip(payload: Buffer, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    data = bytes(payload)
    while data:
        inflater = zlib.decompressobj(_GZIP_ANY_HEADER)
        part = inflater.decompress(data, limit - total + 1)
        total += len(part)
        if total > limit or inflater.unconsumed_tail:
            raise DecompressionFailed(f"gzip payload decodes to more than {limit} bytes")
        if not inflater.eof:
            raise DecompressionFailed("gzip payload is truncated")
        parts.append(part)
        data = inflater.unused_data  # a further gzip member, if any
    return b"".join(parts)


def _unsnappy(payload: Buffer, limit: int) -> bytes | memoryview:
    view = memoryview(payload)
    if bytes(view[: len(_XERIAL_MAGIC)]) != _XERIAL_MAGIC:
        return _raw_snappy(view, limit)
    parts: list[bytes | memoryview] = []
    total = 0
    cursor = _XERIAL_HEADER_SIZE
    while cursor < len(view):
        (length,) = _BLOCK_LENGTH.unpack_from(view, cursor)
        cursor += _BLOCK_LENGTH.size
        if length < 0 or cursor + length > len(view):
            raise DecompressionFailed("xerial snappy block runs past the payload")
        part = _raw_snappy(view[cursor : cursor + length], limit - total)
        total += len(part)
        parts.append(part)
        cursor += length
    return b"".join(parts)


def _raw_snappy(block: memoryview, limit: int) -> memoryview:
    # Raw snappy states its decoded length up front: refuse before decoding.
    size = cramjam.snappy.decompress_raw_len(block)
    if size > limit:
        raise DecompressionFailed(f"snappy payload decodes to more than {limit} bytes")
    out = bytearray(size)
    written = cramjam.snappy.decompress_raw_into(block, out)
    return memoryview(out)[:written]
