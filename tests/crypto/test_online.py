"""Online-tier token derivation (docs/protocol.md §15): crypto/online.py."""

from __future__ import annotations

import pytest

from wlx.crypto import online, oprf
from wlx.crypto.errors import DecryptionError, MalformedError, VerificationError
from wlx.crypto.normalize import record_keys
from wlx.crypto.tokens import EpochKey

SEED = bytes(range(32))
IKEYS = [k.value for k in record_keys(["Wang Wei"], "1980-05-17", [("CHN", "E12345678")])]


def test_recipient_gets_the_origins_tokens_through_evaluate() -> None:
    key = online.OnlineKey.derive(SEED, "CN", "RU", 3)
    blinded = online.blind_keys(IKEYS)
    evaluation = key.evaluate([b.element for b in blinded])
    got = online.unblind_keys(key.public, blinded, evaluation, origin="CN", recipient="RU", epoch=3)
    assert got == [key.entry_keys(ik) for ik in IKEYS]


def test_keys_are_per_stream() -> None:
    streams = [("CN", "RU", 1), ("CN", "RU", 2), ("CN", "DE", 1), ("RU", "CN", 1)]
    keys = [online.OnlineKey.derive(SEED, *s) for s in streams]
    assert len({k.public for k in keys}) == len(streams)
    tokens = {k.entry_keys(IKEYS[0]).token for k in keys}
    assert len(tokens) == len(streams)
    other_seed = online.OnlineKey.derive(bytes(32), "CN", "RU", 1)
    assert other_seed.entry_keys(IKEYS[0]) != keys[0].entry_keys(IKEYS[0])


def test_online_tokens_never_equal_offline_tokens_and_seal_keys_differ() -> None:
    key = online.OnlineKey.derive(SEED, "CN", "RU", 1)
    for ik in IKEYS:
        entry = key.entry_keys(ik)
        assert len(entry.token) == 16 and len(entry.seal_key) == 32
        assert entry.token != entry.seal_key[:16]
    epoch_key = EpochKey(bytes(32), "CN", "RU", 1)
    assert not {key.entry_keys(ik).token for ik in IKEYS} & {epoch_key.token(ik) for ik in IKEYS}


def test_seal_as_opens_only_with_the_online_keys() -> None:
    key = online.OnlineKey.derive(SEED, "CN", "RU", 1)
    epoch_key = EpochKey(bytes(32), "CN", "RU", 1)
    entry = key.entry_keys(IKEYS[0])
    handle = bytes(16)
    sealed = epoch_key.seal_as(entry.token, entry.seal_key, handle, b"hit")
    assert epoch_key.open_as(entry.token, entry.seal_key, handle, sealed) == b"hit"
    wrong = key.entry_keys(IKEYS[1])
    with pytest.raises(DecryptionError):
        epoch_key.open_as(entry.token, wrong.seal_key, handle, sealed)
    with pytest.raises(DecryptionError):
        epoch_key.open(IKEYS[0], handle, sealed)  # the offline keys do not open it


def test_an_evaluation_under_another_streams_key_is_refused() -> None:
    committed = online.OnlineKey.derive(SEED, "CN", "RU", 2)
    used = online.OnlineKey.derive(SEED, "CN", "RU", 1)
    blinded = online.blind_keys(IKEYS)
    evaluation = used.evaluate([b.element for b in blinded])
    with pytest.raises(VerificationError):
        online.unblind_keys(
            committed.public, blinded, evaluation, origin="CN", recipient="RU", epoch=2
        )


def test_key_info_layout() -> None:
    assert online.key_info("CN", "RU", 1) == (
        b"wlx/v1 oprf-key\x00" + b"\x00\x02CN" + b"\x00\x02RU" + (1).to_bytes(8, "big")
    )


def test_bad_inputs() -> None:
    with pytest.raises(MalformedError):
        online.OnlineKey.derive(bytes(31), "CN", "RU", 1)
    with pytest.raises(MalformedError):
        online.OnlineKey.derive(SEED, "CN", "RU", 0)
    with pytest.raises(MalformedError):
        online.entry_keys(bytes(32), "CN", "RU", 1)
    key = online.OnlineKey.derive(SEED, "CN", "RU", 1)
    assert key.pair.secret.hex() not in repr(key)
    assert key.entry_keys(IKEYS[0]).seal_key.hex() not in repr(key.entry_keys(IKEYS[0]))
    assert oprf.OUTPUT_LEN == 64
