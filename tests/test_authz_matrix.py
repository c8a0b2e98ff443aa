"""The authorization matrix: every route that takes an object id — in the path, the query or the
body — is called for customer A's and HZRCB's objects by everyone who must not have them
(customer B, customer C of LSRCB, LSRCB staff of the same role, HZRCB staff of a role without
the permission, a second partner platform, nobody); each is refused with 401/403/404 and never shown the object.
Every list and summary is read by B, by C (a customer of LSRCB), by LSRCB staff and by another
partner, with and without id filters, and must hold nothing of A's (or, but for B, of HZRCB's).

The routes come from the app's router and the OpenAPI document, and the ids and the required
permission from each handler's own decorators, so a route added later is walked without
anyone editing this file; an id this file cannot fill (a name not in PARAM_OBJECTS) fails the
test until it is mapped or exempted in EXEMPT with a reason.
"""

from __future__ import annotations

import itertools
import json
import re
import typing
from dataclasses import dataclass, field, fields, replace

from pydantic import BaseModel, ValidationError

from lending_core.org.models import Bank, Branch, Staff
from lending_core.org.roles import allows
from server.demo_data import BANK_STAFF, DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET
from tests import authz_world
from tests.authz_world import World
from tests.channels.signed_client import encode, signed_headers
from tests.support import bearer, customer_token, new_key, openapi_document, staff_token

# --- what each id names ----------------------------------------------------------------------------

# An id parameter or field name → the World attribute holding A's / HZRCB's object of that kind.
PARAM_OBJECTS = {
    "application_id": "application",
    "contract_id": "contract",
    "loan_id": "loan",
    "consent_id": "consent",
    "campaign_id": "campaign",
    "quota_id": "quota",
    "signal_id": "signal",
    "task_id": "task",
    "proposal_id": "proposal",
    "entry_id": "list_entry",
    "change_id": "change",
    "customer_id": "customer_a",
    "staff_id": "hz_staff",
    "branch_id": "hz_branch",
    "bank_id": "hz_bank",
    "referral_id": "referral",
    "code": "local_product",  # a product code: HZRCB's own local product
}

# Values for path parts that name no object of anyone's (each exempted in EXEMPT below).
PATH_VALUES = {"number": 1, "version": 1, "chart": "overdue"}

# Where one route means a particular object of a kind (the object the route can act on).
ROUTE_OBJECTS = {
    ("/api/v1/admin/secondary-marketing/applicants/{application_id}", "application_id"): "declined_application",
    ("/api/v1/admin/risk-rules/changes/{change_id}", "change_id"): "rule_change",
}

# Routes (or single ids of a route, "METHOD path id") the matrix does not walk, each with why.
EXEMPT = {
    "GET /api/v1/admin/products/{code}/versions/{version} version": "a version number within a product; the product (code) is walked",
    "POST /api/v1/invite-codes/{code}/scans": "invite codes are printed on posters: anyone may scan one (rate-limited)",
    "GET /api/v1/admin/monitoring/charts/{chart} chart": "a chart name, not an object; the bank is the bank_id query id, walked",
    "POST /api/v1/channels/{channel}/sessions": "a channel name; a bank's app signs for its own bank only (tests/channels)",
    "GET /api/v1/admin/risk-rules/versions/{number} number": "a version number within a book; the book is the bank_id query id, walked",
    "POST /api/v1/me/bank bank_id": "member banks are public: a customer may choose any of them",
    "POST /api/v1/channels/wechat/login bank_id": "member banks are public: a newcomer may choose any of them",
    "GET /api/v1/banks": "the public list of member banks, by city",
}

# Example query strings and bodies for routes whose models need fields (ids are filled in by the
# matrix): an attacker must be refused for the id, not for a malformed request.
SAMPLES: dict[str, dict] = {
    "POST /api/v1/admin/staff": {"body": {"username": "authz.planted", "name": "冒名者", "roles": ["account_manager"], "password": "Strong-pass-2026"}},
    "POST /api/v1/admin/staff/{staff_id}/roles": {"body": {"roles": ["bank_admin"], "reason": "越权提权"}},
    "POST /api/v1/admin/customers/{customer_id}/unmask": {"body": {"field": "phone", "reason": "verifying the applicant by phone"}},
    "POST /api/v1/admin/risk-lists/{entry_id}/lift": {"body": {"reason": "核实后解除"}},
    "POST /api/v1/admin/risk-lists": {"body": {"level": "greylist", "phone": "13912345678", "reason": "越权加名单"}},
    "POST /api/v1/admin/risk-lists/import": {"body": {"csv": "level,id_number,phone,reason\ngreylist,,13912345678,越权导入\n"}},
    "POST /api/v1/admin/risk-rules/validate": {"body": {"changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]}},
    "POST /api/v1/admin/risk-rules/versions": {"body": {"note": "越权改规则", "changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]}},
    "GET /api/v1/admin/risk-rules/diff": {"query": {"from": 1, "to": 1}},
    "POST /api/v1/admin/applications/{application_id}/review": {"body": {"decision": "approve", "limit_yuan": 50_000, "note": "越权审批"}},
    "POST /api/v1/contracts/{contract_id}/sign": {"body": {"method": "sms_code", "code": "123456"}},
    "POST /api/v1/contracts/{contract_id}/drawdowns/preview": {"body": {"amount_fen": 100_000}},
    "POST /api/v1/contracts/{contract_id}/drawdowns": {"body": {"amount_fen": 100_000}},
    "POST /api/v1/loans/{loan_id}/repayments": {"body": {"amount_fen": 10_000}},
    "POST /api/v1/admin/quotas": {"body": {"period": "2026-12", "referrals_target": 5}},
    "POST /api/v1/admin/secondary-marketing/applicants/{application_id}/follow-ups": {"body": {"note": "电话回访", "outcome": "contacted"}},
    "POST /api/v1/admin/secondary-marketing/applicants/{application_id}/reinvitations": {"body": {"product_code": "SHUIYITONG", "channel": "sms"}},
    "POST /api/v1/admin/risk/tasks/{task_id}/notes": {"body": {"text": "已电话联系"}},
    "POST /api/v1/admin/risk/tasks/{task_id}/resolve": {"body": {"outcome": "已结清"}},
    "POST /api/v1/admin/risk/tasks/{task_id}/escalate": {"body": {"reason": "需上报"}},
    "POST /api/v1/admin/risk/list-proposals/{proposal_id}/reject": {"body": {"reason": "核实为误报"}},
    "GET /api/v1/admin/marketing/analytics": {"query": {"by": "staff"}},
    "GET /api/v1/admin/leaderboard": {"query": {"period": "2026-11"}},
    "PUT /api/v1/admin/campaigns/{campaign_id}/incentive-rule": {"body": {"per_disbursed_loan_fen": 20_000}},
    "POST /api/v1/products/{code}/quote": {"body": {"amount_yuan": 50_000, "term_months": 6, "repayment_method": "equal_instalment"}},
    "POST /api/v1/admin/products/{code}/simulations": {"body": {"csv": "label,id_number\n甲,110101199001011237\n"}},
    "GET /api/v1/open/products": {"query": {"bank_code": "LSRCB"}},
    "GET /api/v1/admin/marketing/analytics.csv": {"query": {"by": "staff"}},
}

# The object ids a list route returns as its items' "id" (its kind), to spot another's items.
LIST_KINDS = {
    "/api/v1/applications": ("application", "declined_application"),
    "/api/v1/contracts": ("contract",),
    "/api/v1/loans": ("loan",),
    "/api/v1/me/consents": ("consent",),
    "/api/v1/campaigns": ("campaign",),
    "/api/v1/admin/campaigns": ("campaign",),
    "/api/v1/admin/quotas": ("quota",),
    "/api/v1/admin/risk/signals": ("signal",),
    "/api/v1/admin/risk/tasks": ("task",),
    "/api/v1/admin/risk/list-proposals": ("proposal",),
    "/api/v1/admin/risk-lists": ("list_entry",),
    "/api/v1/admin/change-requests": ("change", "rule_change"),
    "/api/v1/admin/customers": ("customer_a",),
    "/api/v1/admin/staff": ("hz_staff",),
    "/api/v1/admin/branches": ("hz_branch",),
    "/api/v1/admin/banks": ("hz_bank",),
    "/api/v1/admin/loans": ("loan",),
    "/api/v1/admin/secondary-marketing": ("declined_application",),
    "/api/v1/admin/secondary-marketing/applicants": ("declined_application",),
    "/api/v1/open/referrals": ("referral",),
}

# Objects that are A's own (B must not see them); every object of the world is HZRCB's.
CUSTOMER_OWNED = {"customer_a", "application", "declined_application", "contract", "loan", "consent", "referral"}
# Keys under which responses name another object (keys outside PARAM_OBJECTS that hold one).
REFERENCE_KEYS = {"assigned_to": "hz_staff", "entry_id": "list_entry"}

REFUSED = {401, 403, 404}
# Refusals by another status, each with why it reveals nothing that is not already public.
ALSO_REFUSED = {
    (422, "PRODUCT_NOT_OFFERED"): "local products are advertised publicly; another bank's customer is told it is not offered at theirs",
}
ROUTE_PARAM = re.compile(r"<([a-zA-Z_]+)(?::[^>]+)?>")
DOC_ROUTES = re.compile(r"^/(docs|console)(/|$)|^/healthz$")


# --- the routes, as the app declares them ------------------------------------------------------------


@dataclass
class Route:
    method: str
    path: str  # as in the OpenAPI document: /api/v1/loans/{loan_id}
    audience: str  # customer, staff, partner, signed (another signer) or public
    permission: str | None = None
    path_params: list[str] = field(default_factory=list)
    query_ids: list[str] = field(default_factory=list)
    body_ids: list[str] = field(default_factory=list)
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _layers(handler):
    while handler is not None:
        yield handler
        handler = getattr(handler, "__wrapped__", None)


def _closure(fn) -> dict:
    found = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            found[name] = cell.cell_contents
        except ValueError:  # an empty cell
            pass
    return found


def _id_fields(model: type[BaseModel] | None) -> list[str]:
    """Fields of a body or query model that carry an object id (an integer named ``*_id``)."""
    if model is None:
        return []
    return [name for name, f in model.model_fields.items() if name.endswith("_id") and int in _types(f.annotation)]


def _types(annotation) -> set:
    args = typing.get_args(annotation)
    return {t for a in args for t in _types(a)} if args else {annotation}


def _documented_ids(operation: dict) -> tuple[list[str], list[str]]:
    """Query and body ids the OpenAPI document names (what a client generated from it would send)."""
    query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and _integer_id(p["name"], p.get("schema", {}))]
    schema = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema", {})
    body = [name for name, property_ in schema.get("properties", {}).items() if _integer_id(name, property_)]
    return query, body


def _integer_id(name: str, schema: dict) -> bool:
    kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    return name.endswith("_id") and "integer" in kinds


def routes_of(app, spec: dict) -> tuple[list[Route], list[str]]:
    """Every API route of the router, with what its decorators say; and the routes the OpenAPI document misses."""
    found, undocumented = [], []
    for route in app.router.routes:
        path = "/" + ROUTE_PARAM.sub(r"{\1}", route.path).rstrip("/")
        if DOC_ROUTES.search(path):
            continue
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is None:
                undocumented.append(f"{method} {path}")
            r = Route(method=method, path=path, audience="public", path_params=ROUTE_PARAM.findall(route.path))
            for layer in _layers(route.handler):
                # The code's own name: functools.wraps gives every wrapper the handler's __qualname__.
                qualname, closure = layer.__code__.co_qualname, _closure(layer)
                if qualname.startswith("customer_required."):
                    r.audience = "customer"
                elif qualname.startswith("staff_required."):
                    r.audience, r.permission = "staff", closure.get("permission")
                elif qualname.startswith("signed."):
                    r.audience = "partner" if getattr(closure.get("load"), "__name__", "") == "load_partner" else "signed"
                elif qualname.startswith("json_body."):
                    r.body_model = closure.get("model")
                elif qualname.startswith("query_params."):
                    r.query_model = closure.get("model")
            documented_query, documented_body = _documented_ids(operation or {})
            r.query_ids = sorted(set(_id_fields(r.query_model)) | set(documented_query))
            r.body_ids = sorted(set(_id_fields(r.body_model)) | set(documented_body))
            found.append(r)
    return found, undocumented


# --- who calls ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    label: str
    headers: dict = field(default_factory=dict)
    partner: tuple[str, str] | None = None  # (app key, secret): signs each request
    # B banks with HZRCB too: HZRCB's campaigns and products are B's to see; only A's objects are not.
    banks_with_hz: bool = False


ANONYMOUS = Caller("anonymous")


class Callers:
    """Tokens of the demo staff and the world's customers, made once each."""

    def __init__(self, app, client, world: World):
        self.app, self.client, self.world = app, client, world
        self._staff: dict[str, Caller] = {}
        self._customers: dict[int, Caller] = {}

    async def staff(self, username: str) -> Caller:
        if username not in self._staff:
            self._staff[username] = Caller(username, bearer(await staff_token(self.client, username)))
        return self._staff[username]

    async def customer(self, customer_id: int, label: str) -> Caller:
        if customer_id not in self._customers:
            token = await customer_token(self.app, customer_id, self.world.hz_bank)
            self._customers[customer_id] = Caller(label, bearer(token), banks_with_hz=True)
        return self._customers[customer_id]

    async def owner(self, route: Route) -> Caller | None:
        """Who may call the route for A's / HZRCB's objects: A, HZRCB staff with the permission, the referring partner."""
        if route.audience == "customer":
            return await self.customer(self.world.customer_a, "customer A")
        if route.audience == "staff":
            suffixes = _suffixes(route.permission, True)
            return await self.staff(f"hz.{suffixes[0]}") if suffixes else None
        if route.audience == "partner":
            return Caller("the referring partner", partner=(DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET))
        return None

    async def customer_c(self) -> Caller:
        if self.world.customer_c not in self._customers:
            token = await customer_token(self.app, self.world.customer_c, self.world.ls_bank)
            self._customers[self.world.customer_c] = Caller("customer C of LSRCB", bearer(token))
        return self._customers[self.world.customer_c]

    async def intruders(self, request: Attempt) -> list[Caller]:
        """Everyone who must not reach the request's objects: B (when it names A's own objects:
        HZRCB's campaigns and products are B's too), C of LSRCB, LSRCB staff of the same role,
        HZRCB staff of a role without the permission, nobody; for partner routes another partner."""
        route = request.route
        if route.audience == "partner":
            return [Caller("another partner", partner=(authz_world.OTHER_PARTNER_KEY, authz_world.OTHER_PARTNER_SECRET)), ANONYMOUS]
        callers = [await self.customer_c(), ANONYMOUS]
        if request.names_customer_object or route.audience == "staff":
            callers.append(await self.customer(self.world.customer_b, "customer B"))
        if route.audience != "staff":
            return [*callers, await self.staff("ls.admin")]  # a staff token on a customer route
        # Every LSRCB role that has the permission, every HZRCB role that lacks it.
        callers += [await self.staff(f"ls.{suffix}") for suffix in _suffixes(route.permission, True)]
        return callers + [await self.staff(f"hz.{suffix}") for suffix in _suffixes(route.permission, False)]

    async def readers(self, route: Route) -> list[Caller]:
        """Who reads the route's lists and must find nothing of A's / HZRCB's: B, C, LSRCB staff, another partner."""
        if route.audience == "customer":
            return [await self.customer(self.world.customer_b, "customer B"), await self.customer_c()]
        if route.audience == "staff":
            return [await self.staff(f"ls.{suffix}") for suffix in _suffixes(route.permission, True)]
        if route.audience == "partner":
            return [Caller("another partner", partner=(authz_world.OTHER_PARTNER_KEY, authz_world.OTHER_PARTNER_SECRET))]
        return []


def _suffixes(permission: str | None, allowed: bool) -> list[str]:
    """The demo bank roles (username suffixes: manager, marketer, ...) that have — or lack — the permission."""
    return [s for s, _, roles in BANK_STAFF if (permission is None or allows({r.value for r in roles}, permission)) == allowed]


# --- making the calls -------------------------------------------------------------------------------


def _attribute(route: Route, name: str) -> str | None:
    """The World attribute an id of the route names (None: a path value that names no object)."""
    special = next((a for (prefix, param), a in ROUTE_OBJECTS.items() if param == name and route.path.startswith(prefix)), None)
    return special or PARAM_OBJECTS.get(name)


def _object(world: World, route: Route, name: str) -> int | str:
    attribute = _attribute(route, name)
    return PATH_VALUES[name] if attribute is None else getattr(world, attribute)


def _sample(route: Route, part: str) -> dict:
    return dict(SAMPLES.get(route.key, {}).get(part, {}))


async def call(client, caller: Caller, method: str, path: str, query: dict, body: dict | None):
    query_string = "&".join(f"{k}={v}" for k, v in query.items())
    url = f"{path}?{query_string}" if query_string else path
    if caller.partner:
        raw = b"" if body is None else encode(body)
        headers = signed_headers(*caller.partner, method, url, raw)
        _, response = await client.request(method, url, content=raw, headers=headers)
        return response
    headers = dict(caller.headers)
    if method != "GET":
        headers["Idempotency-Key"] = new_key()
    _, response = await client.request(method, url, headers=headers, **({"json": body} if body is not None else {}))
    return response


@dataclass
class Attempt:
    """One request of the matrix: the route with A's / HZRCB's ids filled in where ``slot`` says."""

    route: Route
    slot: str  # "path", or the query/body id field it carries
    path: str
    query: dict
    body: dict | None
    objects: tuple[str, ...]  # the World attributes it names

    @property
    def names_customer_object(self) -> bool:
        return any(o in CUSTOMER_OWNED for o in self.objects)

    @property
    def label(self) -> str:
        return f"{self.route.key} [{self.slot}]"


def attempts_for(world: World, route: Route) -> list[Attempt]:
    """The route once with its path ids, and once more per query or body id (each alone)."""
    path = route.path
    for name in route.path_params:
        path = path.replace(f"{{{name}}}", str(_object(world, route, name)))
    base_body = _sample(route, "body") if route.body_model or route.method != "GET" else None
    in_path = tuple(a for a in (_attribute(route, n) for n in route.path_params) if a)
    made = []
    if in_path:
        made.append(Attempt(route, "path", path, _sample(route, "query"), base_body, in_path))
    for name in route.query_ids:
        query = {**_sample(route, "query"), name: _object(world, route, name)}
        made.append(Attempt(route, name, path, query, base_body, (*in_path, _attribute(route, name))))
    for name in route.body_ids:
        body = {**(base_body or {}), name: _object(world, route, name)}
        made.append(Attempt(route, name, path, _sample(route, "query"), body, (*in_path, _attribute(route, name))))
    return made


def unfillable(route: Route) -> list[str]:
    """Ids of the route the matrix cannot fill and nobody exempted: each must be mapped or exempted."""
    if route.key in EXEMPT:
        return []
    names = route.path_params + route.query_ids + route.body_ids
    return [n for n in names if n not in PARAM_OBJECTS and f"{route.key} {n}" not in EXEMPT]


def without_exempt_ids(route: Route) -> Route:
    keep = lambda names: [n for n in names if f"{route.key} {n}" not in EXEMPT]  # noqa: E731
    return replace(route, query_ids=keep(route.query_ids), body_ids=keep(route.body_ids))


def invalid_samples(route: Route) -> list[str]:
    """Models the matrix would send an invalid request to (a refusal for that proves nothing)."""
    problems = []
    for part, model in (("query", route.query_model), ("body", route.body_model)):
        if model is None:
            continue
        try:
            model.model_validate(_sample(route, part))
        except ValidationError as exc:
            problems.append(f"{route.key}: SAMPLES needs a valid {part} ({exc.error_count()} problems)")
    return problems


# --- spotting another's objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Markers:
    """What in a response would be A's or HZRCB's: referencing keys with their ids, item ids of a
    list's kind, and names printed in clear (HZRCB's name, its branches', its staff's, its local product's code)."""

    references: dict[str, set[int]]
    kinds: dict[str, set[int]]
    texts: frozenset[str]

    def found(self, path: str, payload, text: str) -> list[str]:
        hits = [t for t in self.texts if t in text]
        item_ids = self.kinds.get(path, set())

        def walk(node, in_items: bool):
            if isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(value, int) and value in self.references.get(key, ()):
                        hits.append(f"{key}={value}")
                    if in_items and key == "id" and value in item_ids:
                        hits.append(f"item id={value}")
                    walk(value, in_items=key == "items")
            elif isinstance(node, list):
                for item in node:
                    walk(item, in_items)

        walk(payload, in_items=isinstance(payload, list))
        return hits


async def markers(world: World, *, for_customer: bool) -> Markers:
    """Markers for B (A's own objects only: B banks with HZRCB too) or for LSRCB staff (all of HZRCB's)."""
    owned = lambda attribute: not for_customer or attribute in CUSTOMER_OWNED  # noqa: E731
    references: dict[str, set[int]] = {}
    named = [*PARAM_OBJECTS.items(), *REFERENCE_KEYS.items(), *((param, a) for (_, param), a in ROUTE_OBJECTS.items())]
    for key, attribute in named:
        if owned(attribute):
            references.setdefault(key, set()).add(getattr(world, attribute))
    kinds = {path: {getattr(world, a) for a in attributes if owned(a)} for path, attributes in LIST_KINDS.items()}
    texts: set[str] = set()
    if not for_customer:
        references["bank_id"] = {world.hz_bank}
        references["branch_id"] = set(await Branch.filter(bank_id=world.hz_bank).values_list("id", flat=True))
        hz_staff = set(await Staff.filter(bank_id=world.hz_bank).values_list("id", flat=True))
        references["staff_id"] = references["assigned_to"] = hz_staff
        bank = await Bank.get(id=world.hz_bank)
        texts = {bank.name, *await Branch.filter(bank_id=bank.id).values_list("name", flat=True)}
        texts |= set(await Staff.filter(bank_id=bank.id).values_list("name", flat=True)) | {world.local_product}
    return Markers(references, kinds, frozenset(texts))


@dataclass(frozen=True)
class Spotters:
    own_only: Markers  # A's own objects: for B, who banks with HZRCB too
    bank_wide: Markers  # everything of HZRCB's: for C, LSRCB staff and another partner

    def for_(self, caller: Caller) -> Markers:
        return self.own_only if caller.banks_with_hz else self.bank_wide


def _payload(response):
    try:
        return response.json
    except (json.JSONDecodeError, ValueError):
        return None


def _is_text(response) -> bool:
    return response.headers.get("content-type", "").split(";")[0] in ("application/json", "text/csv", "text/plain", "text/html")


# --- the matrix ----------------------------------------------------------------------------------------


async def test_the_authorization_matrix(app, client, demo, settings, redis):
    _, spec = await openapi_document(settings, redis)
    world = await authz_world.build()
    routes, undocumented = routes_of(app, spec)
    callers = Callers(app, client, world)
    spotters = Spotters(await markers(world, for_customer=True), await markers(world, for_customer=False))
    holes: list[str] = []  # what the app does wrong
    gaps: list[str] = []  # what this test cannot check: a route neither mapped nor exempted, a bad sample
    gaps += [f"{r} is served but not in the OpenAPI document" for r in undocumented]
    walked = 0

    for route in routes:
        if route.key in EXEMPT:
            continue
        if missing := unfillable(route):
            gaps.append(f"{route.key}: no object for {missing}: map it in PARAM_OBJECTS or exempt it in EXEMPT with a reason")
            continue
        route = without_exempt_ids(route)
        attempts = attempts_for(world, route)
        if not attempts:
            continue
        if route.audience in ("public", "signed"):
            gaps.append(f"{route.key}: takes an id but is {route.audience}: no caller to try it as; exempt it with a reason")
            continue
        if bad := invalid_samples(route):
            gaps += bad
            continue
        walked += 1
        owner = await callers.owner(route)
        for request in attempts:
            if route.method == "GET" and owner is not None and request.slot == "path":
                # The owner gets the object: the ids are real, so the intruders' refusals mean something.
                own = await call(client, owner, route.method, request.path, request.query, request.body)
                if own.status != 200:
                    gaps.append(f"{request.label}: the owner ({owner.label}) got {own.status}, not the object: {own.text[:160]}")
            for intruder in await callers.intruders(request):
                response = await call(client, intruder, route.method, request.path, request.query, request.body)
                holes += _judge(request, intruder, response, spotters.for_(intruder))

    lists_checked, seeing = await _lists(world, routes, callers, client, spotters, holes, gaps)
    gaps += [f"list {path}: the owner's own objects were not spotted in it (or no such route): fix LIST_KINDS" for path in set(LIST_KINDS) - seeing]
    print(f"authz matrix: {walked} routes walked, {lists_checked} list reads checked")
    # A floor well under today's count (about 90 routes, 200 reads): if the decorators stop being recognised
    # (every route judged public, say), the matrix would pass by walking nothing.
    assert walked >= 60 and lists_checked >= 40, (walked, lists_checked)
    assert not gaps and not holes, "\n".join(["HOLES:", *holes, "GAPS:", *gaps])


def _judge(request: Attempt, intruder: Caller, response, found: Markers) -> list[str]:
    who = f"{request.label} as {intruder.label}"
    error = (_payload(response) or {}).get("error") if isinstance(_payload(response), dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if response.status in REFUSED:
        return [] if code else [f"{who}: {response.status} without the standard error shape"]
    if (response.status, code) in ALSO_REFUSED:
        return []
    payload = _payload(response)
    if request.route.method == "GET" and request.slot != "path" and response.status == 200 and isinstance(payload, dict) and "items" in payload:
        # A list filtered by another's id may answer (an empty page), so long as it holds nothing of theirs.
        hits = found.found(request.route.path, payload, response.text)
        return [f"{who}: the filtered list shows A's / HZRCB's: {sorted(set(hits))[:6]}"] if hits else []
    if response.status == 422 or response.status == 400:
        return [f"{who}: {response.status} {response.text[:200]} (a malformed request proves nothing: fix SAMPLES)"]
    return [f"{who}: {response.status} {response.text[:200]}"]


async def _lists(
    world: World, routes: list[Route], callers: Callers, client, spotters: Spotters, holes: list[str], gaps: list[str]
) -> tuple[int, set[str]]:
    """Every GET without a path id, read by B, C, LSRCB staff, another partner, with and without id
    filters; returns how many reads were checked and the LIST_KINDS lists the owner was seen in."""
    checked, seeing = 0, set()
    for route in routes:
        if route.method != "GET" or route.path_params or route.key in EXEMPT:
            continue
        if route.audience in ("public", "signed"):
            gaps.append(f"{route.key}: a {route.audience} list: no reader to try it as; exempt it with a reason")
            continue
        if re.search(r"\.(png|svg)$", route.path):
            continue  # the caller's own invite code drawn as an image: no rows of anyone's
        owner = await callers.owner(route)
        if owner is None or unfillable(route):
            continue
        filters = [{}] + [{name: _object(world, route, name)} for name in without_exempt_ids(route).query_ids]
        for reader, extra in itertools.product(await callers.readers(route), filters):
            found = spotters.for_(reader)
            query = {**_sample(route, "query"), **extra}
            response = await call(client, reader, "GET", route.path, query, None)
            if response.status in REFUSED and extra:
                continue  # refusing a filter on another's id is as good as an empty answer
            if response.status != 200:
                holes.append(f"list {route.key} {query} as {reader.label}: {response.status} {response.text[:160]}")
                continue
            checked += 1
            if _is_text(response) and (hits := found.found(route.path, _payload(response), response.text)):
                holes.append(f"list {route.key} {query} as {reader.label} shows A's / HZRCB's: {sorted(set(hits))[:6]}")
        if route.path in LIST_KINDS:
            # The spotting is not blind: the owner's own list holds the world's objects under the very markers looked for.
            own = await call(client, owner, "GET", route.path, _sample(route, "query"), None)
            if own.status == 200 and spotters.bank_wide.found(route.path, _payload(own), own.text):
                seeing.add(route.path)
    return checked, seeing


def test_every_world_object_is_reachable_by_some_id():
    """Each object the world builds is named by an id the matrix fills in (else it is built for nothing)."""
    used = set(PARAM_OBJECTS.values()) | set(ROUTE_OBJECTS.values()) | {"customer_b", "customer_c", "ls_bank"}
    assert {f.name for f in fields(World)} <= used
