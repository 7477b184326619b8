"""Fuzz every other reader of untrusted bytes (extends test_codec_fuzz.py).

``test_codec_fuzz`` covers the wire decoders and the crypto parsers.  Here:
the receive path *with state* (a mutated batch or snapshot part changes
nothing but the rejection log), audit bundles (decode and verify), restore
declarations sent to a witness, record imports, manifests, credential files
and ``node.toml``.  Each may only raise its own error class, and decoding a
maximal input stays within a bounded multiple of its size in memory.

``scripts/fuzz`` runs the same targets under atheris (coverage-guided).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import fuzz_targets
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.nodes import FederationMaker, record
from test_codec_fuzz import mutated

from wlx.crypto.signing import Purpose
from wlx.node.audit import export
from wlx.node.audit.offline.bundle import encode
from wlx.node.core.errors import Rejection
from wlx.node.core.node import Node
from wlx.node.incoming import receiver
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import seal_presigned
from wlx.v1 import envelope_pb2

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def state_of(node: Node, peer: str) -> tuple[object, ...]:
    """Everything a rejected input must leave as it was (the rejection
    itself is recorded: the last error, the rejection log)."""
    with node.store.read() as tx:
        inbound = tx.get_inbound(peer)
        cursor = (
            (inbound.epoch, inbound.token_key, inbound.seq, inbound.digest, inbound.synced_at)
            if inbound is not None
            else None
        )
        return (cursor, tx.count_entries(peer), tx.witnessed(peer), tx.witnessed(peer, 1))


# ------------------------------------------------------------ receive path, with state


def test_mutated_batches_change_nothing(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(3)])
    fed.sync_all()
    ownlist.import_records(cn, [record("CN-9")])
    state = origin.materialise(cn, "RU")
    with cn.store.read() as tx:
        [row] = tx.outbox_after("RU", state.epoch, state.last_seq - 1, 10)
    sealed = seal_presigned(row.signed, Purpose.BATCH, sender="CN", to=ru.card)
    wire = codec.encode_sealed(sealed).SerializeToString()
    before = state_of(ru, "CN")

    @FUZZ
    @given(mutated({"sealed": wire}))
    def property_(data: bytes) -> None:
        message = envelope_pb2.SealedEnvelope()
        try:
            message.ParseFromString(data)
            candidate = codec.decode_sealed(message)
        except (DecodeError, Rejection):
            return  # not even an envelope: nothing reaches the node
        if candidate == sealed:
            return  # a mutation that gave back the same envelope (protobuf: last field wins)
        with pytest.raises(Rejection):
            receiver.apply_batch(ru, "CN", candidate)
        assert state_of(ru, "CN") == before

    property_()
    # The unmutated batch still applies: the rejections did not disturb the stream.
    receiver.apply_batch(ru, "CN", sealed)
    assert state_of(ru, "CN") != before


# ------------------------------------------------------------ audit bundles


def test_mutated_bundles_fail_verification_cleanly(federation: FederationMaker) -> None:
    from wlx.node.rpc.cosign import checkpoint_round

    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    checkpoint_round(fed["CN"].node)
    data = encode(export.from_store(fed["CN"].node))
    cards = [(n, fed[n].node.card.raw) for n in ("CN", "RU")]
    fuzz_targets.verify_bundle_target(cards)(data)  # the seed verifies

    @FUZZ
    @given(mutated({"bundle": data}))
    def property_(candidate: bytes) -> None:
        fuzz_targets.verify_bundle_target(cards)(candidate)

    property_()


# ------------------------------------------------------------ restore declarations


def test_random_restore_claims_are_rejected_and_change_nothing(
    federation: FederationMaker,
) -> None:
    from wlx.node.audit.checkpoints import make_checkpoint
    from wlx.node.rpc.cosign import checkpoint_round

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    checkpoint_round(cn)
    ownlist.import_records(cn, [record("CN-1")])
    checkpoint = make_checkpoint(cn)
    before = state_of(ru, "CN")

    @FUZZ
    @given(
        st.binary(max_size=300) | st.just(b"[" * 16000) | st.just(b"9" * 6000),
        st.integers(0, 2**40),
        st.lists(st.binary(min_size=32, max_size=32), max_size=8),
        st.integers(0, 2**40),
    )
    def property_(entry: bytes, index: int, proof: list[bytes], old_size: int) -> None:
        fuzz_targets.witness_restore_target(ru)(checkpoint.note, entry, index, proof, old_size)
        assert state_of(ru, "CN") == before

    property_()


# ------------------------------------------------------------ local files


HOSTILE = ["[" * 5000, '{"a": ' * 3000, "9" * 6000]
"""Deep nesting and huge numbers: JSON readers must refuse them, not crash."""
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400
) | st.sampled_from(
    ['{"id": "X\u2028Y"}\n', '{"id": "X\u0085Y"}\n', "\ufeff{}", "id;names;dob\n1;a;b\n"]
)


@FUZZ
@given(TEXT, st.sampled_from(["jsonl", "csv"]))
def test_record_imports_raise_only_record_errors(text: str, fmt: str) -> None:
    fuzz_targets.records_target(fmt)(text.encode("utf-8"))


@pytest.mark.parametrize("line", HOSTILE)
def test_hostile_record_lines_raise_only_record_errors(line: str) -> None:
    fuzz_targets.records_target("jsonl")(line.encode("utf-8"))


@pytest.mark.parametrize("line", HOSTILE)
def test_hostile_manifest_and_credential_lines(tmp_path: Path, line: str) -> None:
    fuzz_targets.manifest_target(tmp_path)(line.encode("utf-8"))
    fuzz_targets.credential_target(tmp_path)(b'{"wlx_credential": ' + line.encode())
    fuzz_targets.config_target(("x = " + line).encode())


@FUZZ
@given(TEXT)
def test_manifests_raise_only_user_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    fuzz_targets.manifest_target(tmp_path_factory.mktemp("m"))(text.encode("utf-8"))


@FUZZ
@given(TEXT | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_credential_files_raise_only_user_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    fuzz_targets.credential_target(tmp_path_factory.mktemp("c"))(text.encode("utf-8"))


@FUZZ
@given(TEXT)
def test_configurations_raise_only_user_errors(text: str) -> None:
    fuzz_targets.config_target(text.encode("utf-8"))


def test_a_valid_credential_file_survives_json_mutations(tmp_path: Path) -> None:
    # Sanity: the credential target accepts a real file (so mutations start deep).
    from wlx.node.rpc.transport import Credential

    good = Credential("RU", "127.0.0.1:1", "p", "officer", b"x", b"y", ca_cert=b"z").to_bytes()
    assert json.loads(good)["wlx_credential"] == 2
    fuzz_targets.credential_target(tmp_path)(good)


# ------------------------------------------------------------ memory


@pytest.mark.parametrize(
    ("name", "target", "size"),
    [
        ("batch", fuzz_targets.DECODERS["batch"], 8 << 20),
        ("snapshot_part", fuzz_targets.DECODERS["snapshot_part"], 8 << 20),
        ("bundle", fuzz_targets.decode_bundle_target, 8 << 20),
    ],
)
def test_decoding_a_maximal_hostile_input_has_bounded_memory(
    name: str, target: Callable[[bytes], None], size: int
) -> None:
    # Repeated short length-delimited fields: the worst ratio of objects to bytes.
    data = (b"\x0a\x00" * (size // 2))[:size]
    tracemalloc.start()
    try:
        target(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * size, (name, peak)
