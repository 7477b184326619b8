"""Lookups: a person (or a manifest of people) against every list the node holds.

docs/protocol.md §9.  For each origin, the query's identifier keys become
that origin's tokens; matching rows are opened with the seal keys of the
same identifier keys.  Identifiers live only in memory for the length of the
call: nothing of a query is written to disk or to the log.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from wlx.crypto.errors import DecryptionError, InvalidIdentifier
from wlx.crypto.normalize import (
    NORMALISATION,
    IdentifierKey,
    KeyKind,
    QueryKeys,
    query_keys_checked,
)
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.audit.journal import Journal
from wlx.node.core import normalisation
from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import Rejection, UserError
from wlx.node.core.node import Node
from wlx.node.incoming import acceptance, online
from wlx.node.incoming.hit_memory import StoredHitMemory
from wlx.node.protocol import codec
from wlx.node.protocol.acceptance_rules import local_decision
from wlx.node.protocol.lookup_rules import (
    MAX_SCREEN_ENTRIES,
    LookupCall,
    check_person,
    lookup_charge,
    lookup_cost,
)
from wlx.node.store.base import InboundState, TokenRow, Tx

log = logging.getLogger("wlx.lookup")


@dataclass(frozen=True)
class Query:
    """What an officer knows of one person."""

    names: tuple[str, ...] = ()
    dob: str = ""
    documents: tuple[tuple[str, str, str], ...] = ()
    """``(type, country, number)`` triples."""

    def checked(self, version: str = NORMALISATION) -> QueryKeys:
        """The identifier keys of every usable field, and the fields left out.

        One invalid field (a two-letter country on a document) does not drop
        the person: the rest is checked and ``unusable`` names that field.

        Raises:
            UserError: no usable identifier at all (naming every bad field),
                or more names or documents than a person carries.
        """
        check_person(len(self.names), len(self.documents))
        try:
            return query_keys_checked(
                self.names, self.dob or None, [(c, n) for _, c, n in self.documents], version
            )
        except InvalidIdentifier as exc:
            raise UserError(str(exc)) from None

    def keys(self) -> list[IdentifierKey]:
        """The query's identifier keys: one unit each against rate limits.

        Raises:
            UserError: no usable identifier.
        """
        return self.checked().keys


@dataclass(frozen=True)
class Hit:
    """One listing that matched, as the officer sees it."""

    origin: str
    ref: str
    category: str
    action: str
    matched_on: str
    also_matched: tuple[str, ...]
    expires: str
    list_synced_at: int
    suspended: bool = False
    requested_action: str = ""
    """The origin's requested action (as ``action``)."""
    local_action: str = ""
    """What this node's acceptance policy for the origin makes of it."""
    rule: str = ""
    """Why ``local_action`` applies."""

    @property
    def strength(self) -> str:
        """``strong``, ``medium`` or ``weak`` (docs/matching.md), from ``matched_on``."""
        try:
            return KeyKind.parse(self.matched_on).level
        except ValueError:
            return "weak"


@dataclass(frozen=True)
class Result:
    """The hits of one query, or why it could not be checked.

    ``unusable`` names the fields that could not be used while the others
    were checked: such a person is *not fully checked*.
    """

    hits: tuple[Hit, ...] = ()
    error: str = ""
    not_checked: tuple[tuple[str, str], ...] = ()
    """``(origin, reason)`` of origins whose online-tier listings could not
    be checked (docs/protocol.md §15.6): no hit from them is *not* a miss."""
    unusable: tuple[str, ...] = ()


class HitMemory:
    """For a while after a hit, the seal key of the identifier that matched.

    Held in memory, per caller, so that the officer who had the hit can
    prove it in a detail request (§11.2).  Bounded in size and age.  A node
    whose store several front-ends share keeps them in the store instead
    (``hit_memory.StoredHitMemory``, same interface).
    """

    def __init__(self, ttl: int = 24 * 3600, size: int = 100_000) -> None:
        self._ttl = ttl
        self._size = size
        self._items: OrderedDict[tuple[str, str, str], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, caller: str, origin: str, ref: str, seal_key: bytes, now: float) -> None:
        with self._lock:
            self._items[(caller, origin, ref)] = (seal_key, now + self._ttl)
            self._items.move_to_end((caller, origin, ref))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def remember_all(self, caller: str, hits: Sequence[tuple[str, str, bytes]], now: float) -> None:
        """``remember`` every ``(origin, ref, seal_key)`` of one call."""
        for origin, ref, seal_key in hits:
            self.remember(caller, origin, ref, seal_key, now)

    def origins(self, caller: str, ref: str, now: float) -> list[str]:
        """Origins of the caller's unexpired hits with this ref."""
        with self._lock:
            return sorted(
                o
                for (c, o, r), (_, until) in self._items.items()
                if c == caller and r == ref and until >= now
            )

    def recall(self, caller: str, origin: str, ref: str, now: float) -> bytes | None:
        with self._lock:
            item = self._items.get((caller, origin, ref))
        if item is None or item[1] < now:
            return None
        return item[0]


class Lookup:
    """Answers queries from the node's store; caches unwrapped epoch keys."""

    def __init__(self, node: Node, journal: Journal | None = None) -> None:
        self._node = node
        self._keys: dict[bytes, EpochKey] = {}
        self._journal = journal
        self.hits: HitMemory | StoredHitMemory = (
            StoredHitMemory(node) if node.store.shared else HitMemory()
        )
        self.evaluate_send: online.Transport | None = None
        """How online-tier evaluations reach origins (the server sets gRPC over
        mutual TLS); without one, online listings are reported not checked."""
        self.charge: Callable[[str, int], None] | None = None
        """``charge(call, tokens)``: charges the caller of the RPC being
        handled (the server sets its rate limits; ``lookup_rules``), raising
        ``RateLimited`` to refuse; called once per lookup, after its keys
        are derived and before any is tested.  None: nothing is charged."""

    def _epoch_keys(self, tx: Tx, states: Sequence[InboundState]) -> dict[str, EpochKey]:
        """The epoch key of each origin's list, by origin; the versions of
        keys not cached yet read in one statement."""
        me = self._node.node_id
        missing = [s for s in states if s.token_key not in self._keys]
        versions = normalisation.of_epochs(tx, me, [(s.origin, s.epoch) for s in missing])
        for state in missing:
            self._keys[state.token_key] = self._node.epoch_key(
                state.origin, me, state.epoch, state.token_key, normalisation=versions[state.origin]
            )
        return {s.origin: self._keys[s.token_key] for s in states}

    def _versions(self) -> set[str]:
        """The normalisation versions of the lists a lookup tests now."""
        with self._node.store.read() as tx:
            held = [(state.origin, state.epoch) for state in tx.list_inbound() if state.epoch]
            return set(normalisation.of_epochs(tx, self._node.node_id, held).values())

    def check(self, query: Query, caller: str = "", purpose: str = "") -> tuple[Hit, ...]:
        """Every hit of one query, strongest match first.

        Raises:
            UserError: the query has no usable identifier.
        """
        return self.check_result(query, caller, purpose).hits

    def check_result(self, query: Query, caller: str = "", purpose: str = "") -> Result:
        """``check`` with the origins whose online listings were not checked.

        Raises:
            UserError: the query has no usable identifier.
        """
        result = self.screen([query], caller, purpose, call=LookupCall.CHECK)[0]
        if result.error:
            raise UserError(result.error)
        return result

    def screen(
        self,
        queries: Sequence[Query],
        caller: str = "",
        purpose: str = "",
        call: LookupCall = LookupCall.SCREEN,
    ) -> list[Result]:
        """Check many people at once (a manifest); one result per query.

        Charged (``charge``) one token per identifier key tested, under every
        normalisation version in use, before anything is tested.  A query
        without a usable identifier gets an error result; the others are
        still checked.

        Raises:
            UserError: more than 2,000 queries, or a query with more names or
                documents than a person carries (nothing is checked).
            RateLimited: ``charge`` refused the keys (nothing is checked).
        """
        if len(queries) > MAX_SCREEN_ENTRIES:
            raise UserError(f"at most {MAX_SCREEN_ENTRIES} people per screening")
        for query in queries:
            check_person(len(query.names), len(query.documents))
        keys, unusable = _checked_queries(queries)
        by_version = _KeysByVersion(queries, call, self.charge)
        by_version.charge_first(keys, self._versions() - {NORMALISATION})
        found: Found = [{} for _ in queries]
        withheld: set[str] = set()
        remembered: list[tuple[str, str, bytes]] = []
        now, today = self._node.now(), self._node.today()
        accepting, targets = self._match_held(
            queries, by_version, remembered, now, today, found, withheld
        )
        not_checked = self._match_online(
            queries, by_version, remembered, accepting, targets, found, withheld
        )
        self.hits.remember_all(caller, remembered, now)  # before the answer: any front-end
        results = _results(keys, unusable, found, not_checked)
        self._record(caller, purpose, call, results, by_version.tested, sorted(withheld))
        return results

    def _match_online(
        self,
        queries: Sequence[Query],
        by_version: _KeysByVersion,
        remembered: list[tuple[str, str, bytes]],
        accepting: Mapping[str, AcceptancePolicy],
        targets: Sequence[online.Target],
        found: Found,
        withheld: set[str],
    ) -> tuple[tuple[str, str], ...]:
        """Have the origins evaluate the queries against their online-tier
        listings, adding the hits to ``found``, ``remembered`` and
        ``withheld`` as ``_match_held`` does; returns the origins (with the
        reason) whose online listings were not checked."""
        extra = online.lookup_online(
            self._node, by_version.keys, self.evaluate_send, self._journal, targets
        )
        for match in extra.hits:
            hit = _online_hit(match)
            shown = _localise(hit, self._node.node_id, accepting)
            if shown is None:
                withheld.add(f"{hit.origin}:{hit.ref}")
                continue
            remembered.append((hit.origin, hit.ref, match.seal_key))
            found[match.index].setdefault((hit.origin, hit.ref), []).append(
                (_how(match.kind, hit.matched_on), shown)
            )
        return tuple((origin, reason.value) for origin, reason in extra.not_checked)

    def _match_held(
        self,
        queries: Sequence[Query],
        by_version: _KeysByVersion,
        remembered: list[tuple[str, str, bytes]],
        now: int,
        today: str,
        found: Found,
        withheld: set[str],
    ) -> tuple[Mapping[str, AcceptancePolicy], list[online.Target]]:
        """Match every query against the listings the store holds, adding the
        hits to ``found`` (per query), their ``(origin, ref, seal key)`` to
        ``remembered`` and the hits of declined categories to ``withheld``;
        returns the acceptance policies the hits were shown by, and the
        origins whose online listings must be evaluated (read in the same
        transaction: one fewer per lookup).

        ``by_version`` gives each query's identifier keys (or its error) per
        normalisation version, deriving and charging a version first met
        here (an epoch that migrated since the lookup was charged).
        """
        with self._node.store.read() as tx:
            accepting = acceptance.policies(tx)
            # epoch 0: a peer whose first snapshot has not arrived
            held = [state for state in tx.list_inbound() if state.epoch]
            keys = self._epoch_keys(tx, held)
            # Each distinct identifier key (per version), then its token at each origin.
            stand_for = {
                v: _by_value(by_version.keys(v))
                for v in dict.fromkeys(k.normalisation for k in keys.values())
            }
            tokens = {
                origin: {key.token(value): value for value in stand_for[key.normalisation]}
                for origin, key in keys.items()
                if stand_for[key.normalisation]
            }
            rows = tx.find_tokens_of({origin: list(wanted) for origin, wanted in tokens.items()})
            targets = online.online_targets(tx, self._node.node_id, held)
        synced = {s.origin: now if s.origin == self._node.node_id else s.synced_at for s in held}
        for row in rows:
            if row.expires < today:
                continue
            key = keys[row.origin]
            for index, ikey in stand_for[key.normalisation][tokens[row.origin][row.token]]:
                hit = self._open(key, ikey, row, synced[row.origin])
                if hit is None:
                    continue
                shown = _localise(hit, self._node.node_id, accepting)
                if shown is None:  # a category this node declines
                    withheld.add(f"{hit.origin}:{hit.ref}")
                    continue
                remembered.append((hit.origin, hit.ref, key.seal_key(ikey.value)))
                found[index].setdefault((hit.origin, hit.ref), []).append(
                    (_how(ikey.kind, hit.matched_on), shown)
                )
        return accepting, targets

    def _record(
        self,
        caller: str,
        purpose: str,
        call: LookupCall,
        results: Sequence[Result],
        tested: int,
        withheld: Sequence[str] = (),
    ) -> None:
        """Log the lookup: who, why, how many people and identifier keys, which
        listings hit; no identifier."""
        refs = sorted({f"{h.origin}:{h.ref}" for r in results for h in r.hits})
        fields: dict[str, Field] = {
            "call": call,
            "credential": caller,
            "purpose": purpose,
            "people": len(results),
            "identifiers": tested,
            "unchecked": sum(1 for r in results if r.error),
            "hits": refs,
        }
        not_checked = sorted({origin for r in results for origin, _ in r.not_checked})
        if not_checked:
            fields["online_not_checked"] = not_checked
        if withheld:
            fields["withheld"] = list(withheld)
        if self._journal is not None:
            self._journal.record(Event.LOOKUP, **fields)
            return
        with self._node.store.write() as tx:
            exchange_log.record(tx, self._node, kind=Event.LOOKUP, **fields)

    def _open(self, key: EpochKey, ikey: IdentifierKey, row: TokenRow, synced: int) -> Hit | None:
        """The hit of a stored token row, opened with the query's key: a
        protocol-2 row (a ``wrap``) opens its listing's sealed hit data, and
        its wrap gives ``matched_on``, the listing key's kind (§4.3)."""
        try:
            if row.wrap:
                opened, kind = key.open_listing(ikey.value, row.handle, row.wrap, row.sealed)
                data = replace(codec.decode_hit(opened), matched_on=kind.value)
            else:
                data = codec.decode_hit(key.open(ikey.value, row.handle, row.sealed))
        except (DecryptionError, Rejection):
            log.error("a stored entry of %s does not open: store damaged or tampered", key.origin)
            return None
        return Hit(
            origin=key.origin,
            ref=data.ref,
            category=data.category,
            action=data.action,
            matched_on=data.matched_on,
            also_matched=(),
            expires=data.expires,
            list_synced_at=synced,
            suspended=data.suspended,
        )


def _localise(hit: Hit, me: str, accepting: Mapping[str, AcceptancePolicy]) -> Hit | None:
    """``hit`` with the local action its origin's acceptance policy maps it to
    (``acceptance_rules.local_decision``); None for a hit of a category this
    node declines: it is withheld, never shown (docs/operations.md)."""
    policy = None if hit.origin == me else accepting.get(hit.origin, AcceptancePolicy())
    decision = local_decision(
        policy,
        origin=hit.origin,
        category=hit.category,
        action=hit.action,
        suspended=hit.suspended,
    )
    if decision is None:
        return None
    return replace(
        hit,
        requested_action=hit.action,
        local_action=decision.local_action,
        rule=decision.rule,
    )


def _online_hit(match: online.OnlineHit) -> Hit:
    data = match.hit
    return Hit(
        origin=match.origin,
        ref=data.ref,
        category=data.category,
        action=data.action,
        matched_on=data.matched_on,
        also_matched=(),
        expires=data.expires,
        list_synced_at=match.synced_at,
        suspended=data.suspended,
    )


Found = list[dict[tuple[str, str], list[tuple[KeyKind, Hit]]]]
"""Per query, the matches of each listing ``(origin, ref)`` it hit."""


def _checked_queries(
    queries: Sequence[Query],
) -> tuple[list[list[IdentifierKey] | str], list[tuple[str, ...]]]:
    """Per query, its identifier keys (or why it has none usable) and the
    fields left out of it."""
    keys: list[list[IdentifierKey] | str] = []
    unusable: list[tuple[str, ...]] = []
    for query in queries:
        try:
            checked = query.checked()
            keys.append(checked.keys)
            unusable.append(checked.unusable)
        except UserError as exc:
            keys.append(str(exc))
            unusable.append(())
    return keys, unusable


def _by_value(
    per_query: Sequence[list[IdentifierKey] | str],
) -> dict[bytes, list[tuple[int, IdentifierKey]]]:
    """Every distinct identifier key of the queries, by value, with the
    queries (by index) and keys it stands for: hashed once per origin however
    many people share it."""
    by_value: dict[bytes, list[tuple[int, IdentifierKey]]] = {}
    for index, query_keys_ in enumerate(per_query):
        if isinstance(query_keys_, str):
            continue
        for ikey in query_keys_:
            by_value.setdefault(ikey.value, []).append((index, ikey))
    return by_value


def _results(
    keys: Sequence[list[IdentifierKey] | str],
    unusable: Sequence[tuple[str, ...]],
    found: Found,
    not_checked: tuple[tuple[str, str], ...],
) -> list[Result]:
    """One result per query: its error, or its merged hits."""
    results = []
    for index, entry in enumerate(keys):
        if isinstance(entry, str):
            results.append(Result(error=entry))
        else:
            results.append(
                Result(
                    hits=_merge(found[index]),
                    not_checked=not_checked,
                    unusable=unusable[index],
                )
            )
    return results


PerQuery = list[list[IdentifierKey] | str]
"""Each query's identifier keys under one normalisation version, or its error."""


class _KeysByVersion:
    """One lookup's identifier keys per normalisation version, derived once
    each, every key charged before it is tested.

    ``charge_first`` charges the versions known at the start in one go
    (``lookup_charge``: never less than the identifiers presented); a
    version first asked for later (an epoch migrated meanwhile, or an
    online-tier origin's) is charged when ``keys`` derives it, so a lookup
    pays for every key it tests.  ``tested`` counts them for the log.
    """

    def __init__(
        self, queries: Sequence[Query], call: LookupCall, charge: Callable[[str, int], None] | None
    ) -> None:
        self._queries = queries
        self._call = call
        self._charge = charge
        self._by_version: dict[str, PerQuery] = {}
        self.tested = 0

    def charge_first(self, current: PerQuery, others: set[str]) -> None:
        """Charge the keys under ``NORMALISATION`` (``current``) and ``others``.

        Raises:
            RateLimited: refused (nothing is tested).
        """
        self._by_version[NORMALISATION] = current
        for version in others:
            self._by_version[version] = self._derive(version)
        self.tested = sum(_count(keys) for keys in self._by_version.values())
        if self._charge is not None:
            presented = lookup_cost([(len(q.names), len(q.documents)) for q in self._queries])
            self._charge(self._call, lookup_charge(presented, self.tested))

    def keys(self, version: str) -> PerQuery:
        """The keys under ``version``, derived and charged on first use.

        Raises:
            RateLimited: the keys of a new version were refused.
        """
        keys = self._by_version.get(version)
        if keys is None:
            keys = self._derive(version)
            if self._charge is not None:
                self._charge(self._call, _count(keys))
            self.tested += _count(keys)
            self._by_version[version] = keys
        return keys

    def _derive(self, version: str) -> PerQuery:
        return [_keys_or_error(q, version) for q in self._queries]


def _count(keys: PerQuery) -> int:
    return sum(len(k) for k in keys if not isinstance(k, str))


def _keys_or_error(query: Query, version: str) -> list[IdentifierKey] | str:
    try:
        return query.checked(version).keys
    except UserError as exc:
        return str(exc)


def _how(queried: KeyKind, listed: str) -> KeyKind:
    """How a query key matched a listing key (the origin sealed the listing's kind)."""
    try:
        return queried.combine(KeyKind.parse(listed))
    except ValueError:
        return queried


def _merge(found: dict[tuple[str, str], list[tuple[KeyKind, Hit]]]) -> tuple[Hit, ...]:
    hits = []
    for matches in found.values():
        matches.sort(key=lambda m: (m[0].strength, m[0]))
        kinds = list(dict.fromkeys(kind.value for kind, _ in matches))
        best = matches[0][1]
        hits.append(replace(best, matched_on=kinds[0], also_matched=tuple(kinds[1:])))
    hits.sort(key=lambda h: (KeyKind.parse(h.matched_on).strength, h.origin, h.ref))
    return tuple(hits)
