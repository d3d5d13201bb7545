"""Binary hash codes for scale: hashing heads, Hamming search and their evaluation.

Hashers (``create_hasher(name, bits)``; names from ``list_hashers()``): ``lsh`` (random
projections), ``itq`` (PCA + Iterative Quantization), ``tbh`` (twin-bottleneck auto-encoding
hashing), ``tbh-sim`` (TBH with the KOLAA similarity loss) and ``supervised`` (label-aware: CSQ hash
centres, ``fit(features, labels=...)``). Codes are packed ``uint8``
arrays ``(N, bits // 8)`` in ``np.packbits`` order.

Search: :class:`HammingIndex` (exact linear scan) and :class:`MultiIndexHammingIndex`
(exact radius search with substring tables, Norouzi et al.'s multi-index hashing).
"""

from .base import (
    BaseHasher,
    Hasher,
    create_hasher,
    list_hashers,
    load_hasher,
    register_hasher,
)
from .codes import as_codes, hamming_distances, pack_bits, unpack_bits
from .evaluate import (
    default_query_count,
    float_map_at_k,
    hashing_map_at_k,
    stratified_queries,
)
from .hamming import HammingIndex, load_index
from .linear import ITQHasher, LSHHasher
from .multi_index import MultiIndexHammingIndex
from .supervised import CSQHasher, hash_centres
from .tbh import TBHHasher, TBHSimHasher

__all__ = [
    "BaseHasher",
    "CSQHasher",
    "Hasher",
    "HammingIndex",
    "ITQHasher",
    "LSHHasher",
    "MultiIndexHammingIndex",
    "TBHHasher",
    "TBHSimHasher",
    "as_codes",
    "create_hasher",
    "float_map_at_k",
    "hamming_distances",
    "hash_centres",
    "hashing_map_at_k",
    "list_hashers",
    "load_hasher",
    "load_index",
    "pack_bits",
    "register_hasher",
    "stratified_queries",
    "default_query_count",
    "unpack_bits",
]
