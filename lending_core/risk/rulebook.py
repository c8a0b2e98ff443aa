"""Warning rule books as data: versions in the database, published with maker-checker.

The shipped catalogue (``catalogue/*.toml``) is imported as version 1 of the association's book.
From then on a change is a new version — the whole book, or changes to single rules applied to
the live version — validated by the library's own checks (every problem named: which rule, what
is wrong; every fixture must still fire and stay quiet), proposed by one person and published
when a second approves. An invalid book never goes live: approval validates it again.

A member bank may keep a book of its own; it replaces the association's for that bank
(``current_rules``). Everything the batch needs comes from ``current_rules(bank_id)``.
"""

from __future__ import annotations

import copy
import hashlib
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import actors, audit, clock
from infra.actors import Actor
from infra.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lending_core import access
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.org.models import Bank
from lending_core.products.models import Product
from lending_core.risk import schema
from lending_core.risk.library import CATALOGUE, InvalidRuleFile, Library, Rule, catalogue_products, library_problems, parse_rule_file
from lending_core.risk.rulebook_models import ASSOCIATION_SCOPE, RuleBook, RuleBookVersion, bank_scope

PUBLISH = "risk_rules.publish"
TARGET = "rule_book_version"
# Which version is live changes rarely and is read by every batch chunk: kept for a few seconds
# per process. Publishing clears it here at once; other workers see it within CURRENT_TTL.
CURRENT_TTL_SECONDS = 5.0
MAX_CHANGES = 200


class RuleBookRefused(InvalidInput):
    """The rule book is invalid; details list every problem (which rule, what is wrong)."""


class RuleBookNotFound(NotFound):
    """No such rule book or version, or not one the caller may see."""


class RuleBookProposalPending(Conflict):
    """This rule book already has a proposal waiting for approval: approve, reject or withdraw it first."""


class RuleBookStale(Conflict):
    """The proposal was based on a version that is no longer the live one: propose it again."""


@dataclass(frozen=True)
class CurrentRules:
    """The warning rules live for one bank: which book and version, and the compiled library."""

    scope: str
    version: int
    library: Library

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.library.rules


# Compiled libraries by the digest of their rules (equal rules, equal library): a version never
# changes once written. Which version is live, per scope: (version row id, number, digest).
_compiled: dict[str, Library] = {}
_current: dict[str, tuple[float, tuple[int, int, str] | None]] = {}


def forget_cached() -> None:
    """Drop what this process keeps (after publishing, or when the database is replaced)."""
    _compiled.clear()
    _current.clear()


# ---- the book as data ---------------------------------------------------------------------------


def read_catalogue(directory: Path = CATALOGUE) -> dict[str, list[dict]]:
    """The shipped files as one book: category → its rule tables."""
    book: dict[str, list[dict]] = {}
    for path in sorted(directory.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        book.setdefault(raw.get("category"), []).extend(raw.get("rules", []))
    return book


def parse_book_toml(text: str) -> dict[str, list[dict]]:
    """A whole book written as TOML: one array of tables per category (``[[repayment]]`` …),
    each table one rule with the keys of a catalogue file's ``[[rules]]``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleBookRefused("the book is not valid TOML", details={"problems": [f"not valid TOML: {error}"]}) from None
    problems = [
        f"{key}: must be an array of rule tables ([[{key}]])"
        for key, value in raw.items()
        if not (isinstance(value, list) and all(isinstance(entry, dict) for entry in value))
    ]
    if problems:
        raise RuleBookRefused(details={"problems": problems})
    return raw


def canonical(book: Mapping[str, Any]) -> dict[str, list[dict]]:
    """Categories in the schema's order (unknown ones after, as given), rules as written."""
    ordered = [c for c in schema.CATEGORIES if c in book] + [c for c in book if c not in schema.CATEGORIES]
    return {category: list(book[category]) for category in ordered}


def digest(book: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(canonical(book), option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_book(book: Mapping[str, Any], *, product_codes: Iterable[str]) -> Library:
    """The compiled library, or ``RuleBookRefused`` naming every problem of every rule. The
    checks are the library's own (``library.parse_rule_file``), category by category, then
    across categories (a code used twice)."""
    codes = tuple(product_codes)
    problems: list[str] = []
    rules: list[Rule] = []
    if not isinstance(book, Mapping) or not book:
        raise RuleBookRefused(details={"problems": ["the book has no categories"]})
    for category, entries in canonical(book).items():
        if category not in schema.CATEGORIES:
            problems.append(f"{category}: not a category ({', '.join(schema.CATEGORIES)})")
            continue
        try:
            rules.extend(parse_rule_file({"category": category, "rules": entries}, source=category, product_codes=codes))
        except InvalidRuleFile as error:
            problems.extend(f"{error.source}: {problem}" for problem in error.problems)
    problems.extend(library_problems(rules))
    if problems:
        raise RuleBookRefused(f"the rule book has {len(problems)} problem(s)", details={"problems": problems})
    return Library(tuple(rules))


def apply_changes(book: Mapping[str, list[dict]], changes: list[Mapping[str, Any]]) -> dict[str, list[dict]]:
    """A new book from ``book`` with single-rule changes, in order:

    - ``{"op": "put", "category": c, "rule": {…}}`` adds the rule, or replaces the rule of that
      code (moving it to ``c`` if it was elsewhere);
    - ``{"op": "update", "code": x, "set": {key: value, …}}`` changes some keys of one rule;
    - ``{"op": "remove", "code": x}`` takes it out.

    Refuses a change that names no rule or the wrong shape, with its position. The result is
    checked as a whole afterwards (``check_book``)."""
    result = {category: [copy.deepcopy(dict(rule)) for rule in rules] for category, rules in book.items()}
    problems: list[str] = []
    if not changes:
        problems.append("changes: none given")
    if len(changes) > MAX_CHANGES:
        problems.append(f"changes: at most {MAX_CHANGES} in one proposal")
    for index, change in enumerate(changes[:MAX_CHANGES], start=1):
        where = f"changes[{index}]"
        if not isinstance(change, Mapping):
            problems.append(f"{where}: must be an object")
            continue
        op = change.get("op")
        allowed = {"put": {"op", "category", "rule"}, "update": {"op", "code", "set"}, "remove": {"op", "code"}}.get(op)
        if allowed is None:
            problems.append(f"{where}: op {op!r} is not one of put, update, remove")
            continue
        unknown = sorted(set(change) - allowed)
        if unknown:
            problems.append(f"{where}: unknown key {', '.join(unknown)} for {op}")
            continue
        if op == "put":
            category, rule = change.get("category"), change.get("rule")
            if category not in schema.CATEGORIES:
                problems.append(f"{where}: category {category!r} is not one of {', '.join(schema.CATEGORIES)}")
                continue
            if not isinstance(rule, Mapping) or not isinstance(rule.get("code"), str):
                problems.append(f"{where}: rule must be a table with a code")
                continue
            found = _find(result, rule["code"])
            if found is not None:
                del result[found[0]][found[1]]
            result.setdefault(category, []).append(copy.deepcopy(dict(rule)))
            continue
        code = change.get("code")
        found = _find(result, code) if isinstance(code, str) else None
        if found is None:
            problems.append(f"{where}: {op}: no rule {code!r} in the book")
            continue
        category, position = found
        if op == "remove":
            del result[category][position]
        else:
            values = change.get("set")
            if not isinstance(values, Mapping) or not values:
                problems.append(f"{where}: update: set must be a non-empty table of rule keys")
            elif "code" in values and values["code"] != code:
                problems.append(f"{where}: update: a rule's code cannot change (remove it and put a new one)")
            else:
                result[category][position].update(copy.deepcopy(dict(values)))
    if problems:
        raise RuleBookRefused(f"{len(problems)} change(s) could not be applied", details={"problems": problems})
    return {category: rules for category, rules in result.items() if rules}


def _find(book: Mapping[str, list[dict]], code: str) -> tuple[str, int] | None:
    for category, rules in book.items():
        for position, rule in enumerate(rules):
            if isinstance(rule, Mapping) and rule.get("code") == code:
                return category, position
    return None


def diff_books(old: Mapping[str, list[dict]], new: Mapping[str, list[dict]]) -> dict:
    """Rules added, removed and changed (which keys, from what to what), by code."""

    def by_code(book):
        return {rule["code"]: {**rule, "category": category} for category, rules in book.items() for rule in rules if isinstance(rule, Mapping) and "code" in rule}

    before, after = by_code(old), by_code(new)
    changed = []
    for code in sorted(set(before) & set(after)):
        keys = sorted(set(before[code]) | set(after[code]))
        fields = {key: {"from": before[code].get(key), "to": after[code].get(key)} for key in keys if before[code].get(key) != after[code].get(key)}
        if fields:
            changed.append({"code": code, "fields": fields})
    return {
        "added": [after[code] for code in sorted(set(after) - set(before))],
        "removed": [before[code] for code in sorted(set(before) - set(after))],
        "changed": changed,
        "unchanged": len(set(before) & set(after)) - len(changed),
    }


# ---- versions in the database -------------------------------------------------------------------


async def known_product_codes() -> tuple[str, ...]:
    """Products a rule may name: the shipped catalogue's and every product in the database."""
    return tuple(sorted(set(catalogue_products()) | set(await Product.all().values_list("code", flat=True))))


async def validate(book: Mapping[str, Any]) -> Library:
    return check_book(book, product_codes=await known_product_codes())


async def import_catalogue(actor: Actor, *, directory: Path = CATALOGUE) -> int:
    """The shipped files as version 1 of the association's book, if it has none yet (1 if
    imported, 0 if it was there already). The files must be valid."""
    if await RuleBook.filter(scope=ASSOCIATION_SCOPE).exists():
        return 0
    book = canonical(read_catalogue(directory))
    library = await validate(book)
    try:
        async with in_transaction():
            rule_book = await RuleBook.create(scope=ASSOCIATION_SCOPE, bank=None, published_version=1)
            await RuleBookVersion.create(
                book=rule_book, version=1, rules=book, rule_count=len(library), digest=digest(book), status="published",
                note=f"shipped catalogue ({directory.name})", created_by=actor.label, published_at=clock.now(),
            )
            await audit.record(actor, "risk_rules.import", "rule_book", rule_book.id, after={"version": 1, "rules": len(library)})
    except IntegrityError:
        return 0  # another worker imported it at the same moment
    _current.clear()
    return 1


async def current_rules(bank_id: int) -> CurrentRules:
    """The warning rules live for ``bank_id``: the bank's own book if it has published one, else
    the association's (imported from the shipped files the first time it is asked for)."""
    for scope in (bank_scope(bank_id), ASSOCIATION_SCOPE):
        live = await _live(scope)
        if live is None and scope == ASSOCIATION_SCOPE:
            await import_catalogue(actors.system("risk-rules"))
            _current.pop(scope, None)
            live = await _live(scope)
        if live is not None:
            version_id, number, rules_digest = live
            return CurrentRules(scope=scope, version=number, library=await _library_of(version_id, rules_digest))
    raise RuleBookNotFound("no published rule book")  # unreachable: the import publishes one


async def _live(scope: str) -> tuple[int, int, str] | None:
    cached = _current.get(scope)
    if cached is None or cached[0] < time.monotonic():
        book = await RuleBook.filter(scope=scope, published_version__not_isnull=True).first()
        live = None
        if book is not None:
            row = await RuleBookVersion.filter(book_id=book.id, version=book.published_version).only("id", "version", "digest").first()
            live = (row.id, row.version, row.digest) if row else None
        cached = _current[scope] = (time.monotonic() + CURRENT_TTL_SECONDS, live)
    return cached[1]


async def _library_of(version_id: int, rules_digest: str) -> Library:
    if rules_digest not in _compiled:
        row = await RuleBookVersion.get(id=version_id)
        _compiled[rules_digest] = check_book(row.rules, product_codes=await known_product_codes())
    return _compiled[rules_digest]


def _scope_of(actor: Actor, bank_id: int | None) -> str:
    """The book a staff member addresses: the association's (``bank_id`` None) or a bank's own."""
    if bank_id is None:
        return ASSOCIATION_SCOPE
    access.check_bank_visible(actor, bank_id)
    return bank_scope(bank_id)


async def book_for(actor: Actor, bank_id: int | None, *, permission: str = "risk_rules.read") -> RuleBook | None:
    access.require(actor, permission)
    scope = _scope_of(actor, bank_id)
    book = await RuleBook.filter(scope=scope).first()
    if book is None and scope == ASSOCIATION_SCOPE:
        await import_catalogue(actors.system("risk-rules"))  # the shipped files are version 1
        book = await RuleBook.filter(scope=scope).first()
    return book


async def versions(actor: Actor, bank_id: int | None) -> tuple[RuleBook | None, list[RuleBookVersion]]:
    book = await book_for(actor, bank_id)
    if book is None:
        return None, []
    await _settle_decided_proposals(book)
    return book, await RuleBookVersion.filter(book_id=book.id).order_by("version")


async def version(actor: Actor, bank_id: int | None, number: int) -> RuleBookVersion:
    book = await book_for(actor, bank_id)
    row = await RuleBookVersion.filter(book_id=book.id, version=number).first() if book else None
    if row is None:
        raise RuleBookNotFound("no such rule book version")
    await _settle_decided_proposals(book)
    return await RuleBookVersion.get(id=row.id)


async def diff(actor: Actor, bank_id: int | None, old: int, new: int) -> dict:
    before, after = await version(actor, bank_id, old), await version(actor, bank_id, new)
    return {"from": old, "to": new, **diff_books(before.rules, after.rules)}


async def _proposed_book(
    actor: Actor, bank_id: int | None, book: Mapping[str, Any] | None, book_toml: str | None, changes: list[Mapping[str, Any]] | None
) -> tuple[str, dict[str, list[dict]], int | None, Library]:
    """The book a proposal would publish, its scope, the live version it starts from, and its
    compiled library — or ``RuleBookRefused`` naming every problem."""
    access.require(actor, "risk_rules.manage")
    if sum(x is not None for x in (book, book_toml, changes)) != 1:
        raise RuleBookRefused("give exactly one of book, book_toml or changes")
    if bank_id is None and not actor.is_association:
        raise PermissionDenied("the association's rule book is changed by association staff")
    scope = _scope_of(actor, bank_id)
    if bank_id is not None and not await Bank.filter(id=bank_id).exists():
        raise RuleBookNotFound("no such bank")
    own = await _live_version(scope, required=False)
    if changes is not None:
        # A bank's first book of its own starts from the association's live one.
        base = own or await _live_version(ASSOCIATION_SCOPE)
        new_book = apply_changes(base.rules, list(changes))
    else:
        new_book = parse_book_toml(book_toml) if book_toml is not None else dict(book)
    new_book = canonical(new_book)
    return scope, new_book, own.version if own else None, await validate(new_book)


async def check_proposal(
    actor: Actor, *, bank_id: int | None, book: Mapping[str, Any] | None = None, book_toml: str | None = None,
    changes: list[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, list[dict]], Library]:
    """Validate a proposal without saving it: the book it would publish and its library."""
    _, new_book, _, library = await _proposed_book(actor, bank_id, book, book_toml, changes)
    return new_book, library


async def propose(
    actor: Actor,
    *,
    bank_id: int | None,
    note: str,
    book: Mapping[str, Any] | None = None,
    book_toml: str | None = None,
    changes: list[Mapping[str, Any]] | None = None,
) -> tuple[RuleBookVersion, ChangeRequest]:
    """A new version of the book: a whole book (as data or TOML) or changes to single rules of
    the live version. Validated now (refused with every problem), published when a second
    person approves the change request."""
    scope, new_book, based_on, library = await _proposed_book(actor, bank_id, book, book_toml, changes)
    async with in_transaction():
        rule_book = await RuleBook.filter(scope=scope).select_for_update().first()
        if rule_book is None:
            rule_book = await RuleBook.create(scope=scope, bank_id=bank_id)
        await _settle_decided_proposals(rule_book)
        if await RuleBookVersion.filter(book_id=rule_book.id, status="proposed").exists():
            raise RuleBookProposalPending()
        latest = await RuleBookVersion.filter(book_id=rule_book.id).order_by("-version").first()
        row = await RuleBookVersion.create(
            book=rule_book, version=(latest.version + 1) if latest else 1, rules=new_book, rule_count=len(library),
            digest=digest(new_book), based_on=based_on, note=note, created_by=actor.label,
        )
        change = await approvals.propose(
            actor, PUBLISH, bank_id=bank_id, target_type=TARGET, target_id=row.id,
            payload={"scope": scope, "version": row.version, "based_on": based_on, "rules": len(library)}, reason=note,
        )
    return row, change


async def live(actor: Actor, bank_id: int | None) -> tuple[str, RuleBookVersion]:
    """What is live for a bank (its own book, else the association's): the caller's bank unless
    named; the association's for association staff who name none."""
    access.require(actor, "risk_rules.read")
    if bank_id is None and not actor.is_association:
        bank_id = actor.bank_id
    scope = _scope_of(actor, bank_id)
    row = await _live_version(scope, required=False) if bank_id is not None else None
    if row is None:
        scope, row = ASSOCIATION_SCOPE, await _live_version(ASSOCIATION_SCOPE)
    return scope, row


async def _live_version(scope: str, *, required: bool = True) -> RuleBookVersion | None:
    if scope == ASSOCIATION_SCOPE and not await RuleBook.filter(scope=scope).exists():
        await import_catalogue(actors.system("risk-rules"))
    book = await RuleBook.filter(scope=scope, published_version__not_isnull=True).first()
    row = await RuleBookVersion.filter(book_id=book.id, version=book.published_version).first() if book else None
    if row is None and required:
        raise RuleBookNotFound("the rule book has no published version")
    return row


async def _settle_decided_proposals(book: RuleBook) -> None:
    """A proposal whose change request was rejected or withdrawn is no longer waiting."""
    for row in await RuleBookVersion.filter(book_id=book.id, status="proposed"):
        change = await ChangeRequest.filter(kind=PUBLISH, target_type=TARGET, target_id=str(row.id)).first()
        if change is not None and change.status in ("rejected", "withdrawn"):
            await RuleBookVersion.filter(id=row.id, status="proposed").update(status=change.status)


async def approve(actor: Actor, change_id: int, note: str | None = None) -> ChangeRequest:
    """Approve a rule-book change request (not one's own): publishes the version."""
    change = await approvals.change(actor, change_id)
    if change.kind != PUBLISH:
        raise RuleBookNotFound("no such rule book change")
    return await approvals.approve(actor, change_id, note)


async def _publish(change: ChangeRequest, checker: Actor) -> None:
    row = await RuleBookVersion.filter(id=int(change.target_id)).select_related("book").get()
    book = await RuleBook.filter(id=row.book_id).select_for_update().get()
    if row.based_on is not None and book.published_version != row.based_on:
        raise RuleBookStale(details={"based_on": row.based_on, "live": book.published_version})
    # Validated again: a product named by a rule may have gone since it was proposed.
    library = await validate(row.rules)
    await RuleBookVersion.filter(book_id=book.id, status="published").update(status="retired")
    row.status, row.published_at = "published", clock.now()
    await row.save(update_fields=["status", "published_at"])
    book.published_version = row.version
    await book.save(update_fields=["published_version"])
    forget_cached()
    await audit.record(
        checker, "risk_rules.publish", "rule_book", book.id, bank_id=book.bank_id,
        after={"scope": book.scope, "version": row.version, "rules": len(library), "digest": row.digest},
    )


approvals.register(approvals.ChangeKind(name=PUBLISH, propose_permission="risk_rules.manage", approve_permission="risk_rules.manage", apply=_publish))
