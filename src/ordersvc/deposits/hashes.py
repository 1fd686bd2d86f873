"""On-chain transaction hashes and addresses in one canonical form per network.

One transfer must have one spelling, or the on-chain unique key (network, tx hash, address) sees
`0xDEADBEEF...` and `0xdeadbeef...` as two deposits and credits both. Every network we take writes
its transaction id as 64 hex digits, which explorers, nodes and processors print in either case,
with or without `0x`:

- BTC, LTC: the txid, 64 hex digits, no prefix (as `bitcoin-cli` prints it);
- USDT-TRC20: the Tron txID, 64 hex digits, no prefix (as Tronscan prints it; some tools add `0x`);
- USDT-ERC20: the Ethereum transaction hash, `0x` + 64 hex digits (as nodes and Etherscan print it).

The canonical form is lower case, with `0x` on Ethereum and without it elsewhere. A hash that is
not 64 hex digits (after an optional `0x`) is refused, not stored: no real transfer has one, and
a form we cannot normalise could not be deduplicated either. A network we do not take (a
NOWPayments `pay_currency` such as `usdtbsc`) keeps its hash as given: we do not know its
alphabet (base58 hashes, for one, are case-sensitive), and the pool never holds its addresses.

Addresses are in that key too, and name the account. Where a network's addresses are not
case-sensitive, they have one spelling: an Ethereum address (`0x` + 40 hex digits, mixed case
only as its EIP-55 checksum) and a bech32 address (`bc1...`, `ltc1...`, one case by definition)
are lower case. Base58 addresses (BTC's and LTC's legacy ones, Tron's `T...`) are case-sensitive
and kept as written."""

from __future__ import annotations

import re

from ordersvc.deposits.models import Network
from ordersvc.errors import InvalidParams

_HEX_TX_ID = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")
_ETHEREUM_ADDRESS = re.compile(r"0[xX]([0-9a-fA-F]{40})")
_BECH32_PREFIXES = ("bc1", "tb1", "bcrt1", "ltc1", "tltc1", "rltc1")
# Networks whose canonical form carries the `0x` prefix.
_PREFIXED = frozenset({Network.USDT_ERC20})


class InvalidTxHash(InvalidParams):
    code = "invalid_tx_hash"
    message = "A transaction hash is 64 hex digits (optionally prefixed with 0x)."


def _known_network(network: str | None) -> Network | None:
    try:
        return Network(network) if network is not None else None
    except ValueError:
        return None


def normalise_tx_hash(network: str | None, tx_hash: str | None) -> str | None:
    """The canonical spelling of a transaction hash on a network (see the module docstring);
    None stays None. Idempotent: a canonical hash is returned unchanged."""
    if tx_hash is None:
        return None
    known = _known_network(network)
    if known is None:
        return tx_hash
    match = _HEX_TX_ID.fullmatch(tx_hash.strip())
    if match is None:
        raise InvalidTxHash(f"A {known.value} transaction hash is 64 hex digits (optionally prefixed with 0x).")
    digits = match[1].lower()
    return f"0x{digits}" if known in _PREFIXED else digits


def hex_digits(network: str | None, tx_hash: str | None) -> str | None:
    """The 64 lower-case hex digits of a hash on a network we take, whatever its spelling;
    None for another network or a hash that is not one (e.g. a row stored before 0012)."""
    if _known_network(network) is None or tx_hash is None:
        return None
    match = _HEX_TX_ID.fullmatch(tx_hash.strip())
    return match[1].lower() if match else None


def normalise_address(network: str | None, address: str | None) -> str | None:
    """The one spelling of an address whose network ignores its case (see the module
    docstring); any other address, and None, unchanged. Idempotent."""
    if address is None:
        return None
    known = _known_network(network)
    if known is Network.USDT_ERC20:
        match = _ETHEREUM_ADDRESS.fullmatch(address)
        return f"0x{match[1].lower()}" if match else address
    if known in (Network.BTC, Network.LTC) and address.lower().startswith(_BECH32_PREFIXES):
        return address.lower()
    return address
