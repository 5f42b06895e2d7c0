"""tokenizers_zoo: tokenizers as byte strings (SPEC §3).

Surface forms and token kinds, the byte tokenizer, byte-level conversion and
loading from any spec. Imports neither ``hypernet`` nor ``zett``.
"""

from .align import Aligner, PairAlignment, align
from .byte_map import BYTE_TO_CHAR, CHAR_TO_BYTE, from_byte_level, to_byte_level
from .byte_tokenizer import byte_tokenizer, is_byte_tokenizer
from .convert import convert_to_byte_level
from .loading import SHIPPED, load_tokenizer
from .sampler import Draw, TokenizerSampler
from .specials import added_specials, match_specials, special_ids, special_roles, start_token_id
from .surface import (
    SPIECE_SPACE,
    Family,
    Normalisation,
    TokenKind,
    Vocabulary,
    encode_text,
    expected_bytes,
    family,
    normalisation,
    surface_forms,
    token_kinds,
    verify_surface_forms,
    vocabulary,
)

__all__ = [
    "Aligner",
    "BYTE_TO_CHAR",
    "Draw",
    "TokenizerSampler",
    "CHAR_TO_BYTE",
    "PairAlignment",
    "SPIECE_SPACE",
    "align",
    "Family",
    "Normalisation",
    "SHIPPED",
    "TokenKind",
    "Vocabulary",
    "added_specials",
    "byte_tokenizer",
    "convert_to_byte_level",
    "encode_text",
    "expected_bytes",
    "family",
    "from_byte_level",
    "is_byte_tokenizer",
    "load_tokenizer",
    "match_specials",
    "normalisation",
    "special_ids",
    "special_roles",
    "start_token_id",
    "surface_forms",
    "to_byte_level",
    "token_kinds",
    "verify_surface_forms",
    "vocabulary",
]
