"""The GPT-2 byte-to-unicode map that byte-level tokenizers write their pieces in.

Every byte 0x00-0xFF gets one printable character; a byte-level piece is the
string of those characters. This module is the only place that knows the map.
"""

from __future__ import annotations


def _byte_to_char() -> list[str]:
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return [table[b] for b in range(256)]


BYTE_TO_CHAR: list[str] = _byte_to_char()
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(BYTE_TO_CHAR)}


_LATIN1_TO_CHAR = {b: c for b, c in enumerate(BYTE_TO_CHAR)}  # str.translate table: chr(b) -> byte b's character


def to_byte_level(data: bytes) -> str:
    """Write ``data`` as a byte-level string (one character per byte)."""
    return data.decode("latin-1").translate(_LATIN1_TO_CHAR)


# str.translate table: each byte's character -> chr(byte); other characters below 256 (whose UTF-8 is not their
# Latin-1 byte) -> a character Latin-1 cannot encode, so that such pieces take the loop below
_CHAR_TO_LATIN1 = {ord(c): b for b, c in enumerate(BYTE_TO_CHAR)}
_CHAR_TO_LATIN1.update({c: 0x100 for c in range(0x80, 0x100) if chr(c) not in CHAR_TO_BYTE})


def from_byte_level(piece: str) -> bytes:
    """Inverse of :func:`to_byte_level`; characters outside the map are kept as UTF-8."""
    try:
        return piece.translate(_CHAR_TO_LATIN1).encode("latin-1")
    except UnicodeEncodeError:  # characters outside the map (and outside ASCII): one at a time
        pass
    out = bytearray()
    for ch in piece:
        b = CHAR_TO_BYTE.get(ch)
        if b is None:
            out += ch.encode("utf-8")
        else:
            out.append(b)
    return bytes(out)


def is_byte_level(piece: str) -> bool:
    return all(ch in CHAR_TO_BYTE for ch in piece)
