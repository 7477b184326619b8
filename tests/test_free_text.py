"""Free text in the signed log is bounded (issue 8, item 15): what the node
refuses as a purpose or a case reference, from its officers and from peers."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from support.nodes import FederationMaker, record
from test_rejections import dump, query_rows

from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.outgoing import ownlist
from wlx.node.protocol import codec
from wlx.node.protocol.free_text import FreeTextError, check_case, check_purpose
from wlx.node.protocol.messages import DetailParams
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

PURPOSES_OK = ["border-check", "  arrest warrant 2026/114 ", "проверка на границе", "x" * 64]
PURPOSES_REFUSED = [
    ("", "must be stated"),
    ("   ", "must be stated"),
    ("x" * 65, "at most 64"),
    ("check\nIvan Petrov 1975-11-02", "one line"),
    ("check\u2028more", "one line"),
    ("check\x00", "one line"),
    ("check\u202eevil", "one line"),  # a bidi override
]
CASES_OK = ["", "K-1", "2026/114", "CASE#7:part_2", "A" * 32]
CASES_REFUSED = [
    ("Ivan Petrov", "no spaces"),
    ("A" * 33, "at most 32"),
    ("K-1\nK-2", "no spaces"),
    ("Петров", "no spaces"),
]


@pytest.mark.parametrize("text", PURPOSES_OK)
def test_a_plain_purpose_is_taken(text: str) -> None:
    assert check_purpose(text) == text.strip()


@pytest.mark.parametrize(("text", "why"), PURPOSES_REFUSED)
def test_a_purpose_that_is_not_one_short_line_is_refused(text: str, why: str) -> None:
    with pytest.raises(FreeTextError, match=why):
        check_purpose(text)


@pytest.mark.parametrize("text", CASES_OK)
def test_a_case_reference_is_taken(text: str) -> None:
    assert check_case(text) == text


@pytest.mark.parametrize(("text", "why"), CASES_REFUSED)
def test_a_case_reference_that_is_prose_is_refused(text: str, why: str) -> None:
    with pytest.raises(FreeTextError, match=why):
        check_case(text)


def test_officers_free_text_is_refused_before_anything_is_logged(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    stub = lookup_pb2_grpc.LookupStub(fed.channel("RU"))
    person = lookup_pb2.Person(names=["Test Person CN 1"], dob="1980-05-17")
    hit = stub.Check(lookup_pb2.CheckRequest(person=person, purpose="border-check")).hits[0]
    ru, cn = fed["RU"].node, fed["CN"].node
    before_ru, before_cn = dump(ru), dump(cn)
    log_sizes = [len(query_rows(n, "SELECT idx FROM audit_entries")) for n in (ru, cn)]
    calls: list[Callable[[], object]] = [
        lambda: stub.Check(lookup_pb2.CheckRequest(person=person, purpose="x\nIvan Petrov")),
        lambda: stub.Detail(lookup_pb2.DetailQuery(ref=hit.ref, purpose="p" * 65)),
        lambda: stub.Detail(
            lookup_pb2.DetailQuery(ref=hit.ref, purpose="check", case_id="Ivan Petrov 1975")
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (dump(ru), dump(cn)) == (before_ru, before_cn)
    assert [len(query_rows(n, "SELECT idx FROM audit_entries")) for n in (ru, cn)] == log_sizes


@pytest.mark.parametrize(
    ("purpose", "case"), [("p" * 65, ""), ("check", "Ivan Petrov"), ("a\nb", "")]
)
def test_a_peers_request_with_unbounded_text_is_malformed(purpose: str, case: str) -> None:
    params = DetailParams("RU", "CN", "CN-1", "Border Guard", "o-1", purpose, case, 1, bytes(16))
    with pytest.raises(Rejection) as err:
        codec.decode_detail_params(codec.encode_detail_params(params))
    assert err.value.reason is RejectReason.MALFORMED
