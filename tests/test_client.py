"""``wlx.client``: the Python API a border system embeds, against real nodes over mutual TLS."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from support.nodes import Federation, FederationMaker, record

import wlx.client as client_api
from wlx.client import (
    AccessDenied,
    Client,
    ClientError,
    CredentialError,
    Document,
    Entry,
    InvalidRequest,
    NodeUnavailable,
)
from wlx.node.core.config import write_private
from wlx.node.outgoing import ownlist
from wlx.node.trust import credentials

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def _credential(fed: Federation, node_id: str, role: str, path: Path) -> Path:
    issued = credentials.issue(fed[node_id].node, name=f"{role}-{path.stem}", role=role)
    # The node listens on port 0 in tests; the credential names the real port.
    write_private(path, replace(issued, address=fed[node_id].address).to_bytes())
    return path


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(
        fed["CN"].node,
        [
            record("CN-1", names=["Wang Wei"]),
            record(
                "CN-ANNA",
                names=["Anna Maria Eriksson"],
                dob="1974-08-12",
                documents=[{"type": "P", "country": "UTO", "number": "L898902C3"}],
            ),
        ],
    )
    fed.sync_all()
    return fed


@pytest.fixture
def officer(fed: Federation, tmp_path: Path) -> Path:
    return _credential(fed, "RU", "officer", tmp_path / "post1.json")


def test_the_public_names_are_exported() -> None:
    for name in client_api.__all__:
        assert hasattr(client_api, name), name
    assert issubclass(InvalidRequest, ClientError) and issubclass(NodeUnavailable, ClientError)


def test_building_entries_raises_the_client_errors() -> None:
    with pytest.raises(InvalidRequest, match="TYPE:COUNTRY:NUMBER"):
        Entry.build("1", documents=["P:CHN"])
    with pytest.raises(InvalidRequest, match="check digit of the date of birth"):
        client_api.read_mrz(TD3.replace("7408122", "7408123"))
    with pytest.raises(InvalidRequest, match="as an MRZ"):
        Document.parse(TD3.split("\n")[1])
    assert client_api.read_mrz(TD3).document_number == "L898902C3"


def test_lookup_by_name_document_and_mrz(fed: Federation, officer: Path) -> None:
    with Client.from_credential(officer) as node:
        hits = node.lookup(names=["WEI Wang"], dob="1980-05-17")
        # Listed as "Wang Wei": part order is kept, the other order is a reordered match.
        assert [(h.origin, h.ref, h.matched_on) for h in hits] == [
            ("CN", "CN-1", "name+dob (reordered)")
        ]
        assert node.lookup(documents=["P:CHN:X1"]) == []
        by_doc = node.lookup(documents=[Document("P", "UTO", "L898902C3")])
        assert [h.ref for h in by_doc] == ["CN-ANNA"]
        by_mrz = node.lookup(mrz=TD3)
        assert [(h.ref, h.matched_on, h.also_matched) for h in by_mrz] == [
            ("CN-ANNA", "document", ("name+dob", "name+dob (phonetic)"))
        ]
        assert by_mrz[0].action == "arrest" and by_mrz[0].list_synced_at > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "document, or a name"),
        ({"names": ["A B"]}, "date of birth"),
        ({"documents": ["P:CHN"]}, "TYPE:COUNTRY:NUMBER"),
        ({"mrz": TD3.replace("<10", "<11")}, "composite"),
        ({"mrz": TD3, "dob": "1975-01-01"}, "differs from the MRZ"),
    ],
)
def test_an_unusable_lookup_is_refused_before_the_call(
    fed: Federation, officer: Path, kwargs: dict[str, object], match: str
) -> None:
    with Client.from_credential(officer) as node, pytest.raises(InvalidRequest, match=match):
        node.lookup(**kwargs)  # type: ignore[arg-type]


def test_screen_splits_into_batches_and_keeps_the_order(fed: Federation, officer: Path) -> None:
    entries = [Entry(id=f"seat-{i}", names=("Nobody Here",), dob="1990") for i in range(7)]
    entries.insert(3, Entry.build("seat-X", mrz=TD3))
    entries.append(Entry(id="seat-Y", names=("Only A Name",)))
    done: list[int] = []
    node = Client.from_credential(officer)
    node.batch_size = 3
    with node:
        results = node.screen(entries, progress=done.append)
    assert [r.id for r in results] == [e.id for e in entries]
    assert done == [3, 6, 9]
    assert [h.ref for h in results[3].hits] == ["CN-ANNA"]
    assert not results[-1].checked and "date of birth" in results[-1].error
    assert sum(len(r.hits) for r in results) == 1


def test_detail_and_status_by_role(fed: Federation, officer: Path, tmp_path: Path) -> None:
    operator = _credential(fed, "RU", "operator", tmp_path / "ops.json")
    with Client.from_credential(officer) as node:
        node.lookup(documents=["P:UTO:L898902C3"])
        result = node.detail("CN-ANNA", purpose="secondary inspection", case="C-1")
        assert result.granted and result.record is not None
        assert result.record["id"] == "CN-ANNA"
        with pytest.raises(AccessDenied):
            node.status()
    with Client.from_credential(operator) as admin:
        state = admin.status()
        assert state.node_id == "RU" and [p.peer for p in state.peers] == ["CN"]
        assert state.peers[0].listings == 2
        with pytest.raises(AccessDenied):
            admin.lookup(documents=["P:CHN:X1"])


def test_one_client_shared_by_threads(fed: Federation, officer: Path) -> None:
    errors: list[BaseException] = []
    found: list[int] = []
    with Client.from_credential(officer) as node:

        def work() -> None:
            try:
                for _ in range(5):
                    found.append(len(node.lookup(documents=["P:UTO:L898902C3"])))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and found == [1] * 40


def test_errors_are_the_documented_ones(fed: Federation, officer: Path, tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="missing"):
        Client.from_credential(tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    write_private(junk, b"{}")
    with pytest.raises(CredentialError, match="not a wlx credential"):
        Client.from_credential(junk)
    with pytest.raises(InvalidRequest, match="HOST:PORT"):
        Client.from_credential(officer, address="nowhere")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with (
        Client.from_credential(officer, address=f"127.0.0.1:{free}", timeout=2) as node,
        pytest.raises(NodeUnavailable),
    ):
        node.lookup(documents=["P:CHN:X1"])
    node = Client.from_credential(officer)
    node.close()
    with pytest.raises(ClientError, match="closed"):
        node.lookup(documents=["P:CHN:X1"])
    with Client.from_credential(officer) as node, pytest.raises(InvalidRequest, match="purpose"):
        node.lookup(documents=["P:CHN:X1"], purpose=" ")


def test_the_example_in_docs_client_md_runs(
    fed: Federation,
    officer: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (Path(__file__).parent.parent / "docs" / "client.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("WLX_CREDENTIAL", str(officer))
    exec(compile(code, "docs/client.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "HIT CN CN-ANNA: arrest (matched on document)" in out
    assert "record: {" in out and "HIT 12B: CN CN-ANNA arrest" in out
    assert "NOT CHECKED 12C:" in out and "refused: " in out
