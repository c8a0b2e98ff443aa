// 营销活动: a marketer's campaigns — the list with status, budget and spend; a form to create one
// (a draft, scheduled with 提交排期); and the selected campaign (campaigns.html#42, so it can be
// linked) with the actions its status allows, its funnel, budget, red-packet stock, leaderboard by
// branch and staff member, and CSV export. The server checks every call again; a campaign of
// another bank is "not found" to this page as it is to the API.

import * as api from "./api.js";
import { start } from "./shell.js";
import { h, mount, table, facts, section, fields, field, errorBox, notice, act, bars } from "./dom.js";
import { yuan, toFen, dateTime, isoFromLocal, statusText } from "./format.js";

const { staff, main } = await start("campaigns.html");
const MAY_ANALYSE = api.can(staff, "marketing.analytics");
const MAY_APPROVE = api.can(staff, "campaigns.approve");

const KINDS = { qr_share: "扫码分享", referral_reward: "推荐有礼", phone_credit: "话费奖励", red_packet: "拼手气红包" };
const MILESTONES = { registered: "注册", applied: "提交申请", approved: "审批通过", disbursed: "放款" };
const AUDIENCES = { all: "全部客户", new_customers: "新客户", public_sector: "公职人员", quality_business: "优质企业员工", farmers: "农户" };
const FIXED_REWARD = ["referral_reward", "phone_credit"];

// What each status lets a marketer do, in the order the buttons are shown (the server's
// transition table decides; this only avoids offering buttons that would be refused).
const ACTIONS = {
  draft: [{ event: "submit", label: "提交排期", primary: true }],
  pending_approval: [{ event: "approve", label: "复核通过", primary: true, approver: true }, { event: "withdraw", label: "撤回为草稿" }],
  scheduled: [{ event: "withdraw", label: "撤回为草稿" }, { event: "end", label: "结束活动", danger: true }],
  live: [{ event: "pause", label: "暂停" }, { event: "end", label: "结束活动", danger: true }],
  paused: [{ event: "resume", label: "恢复", primary: true }, { event: "end", label: "结束活动", danger: true }],
  ended: [],
};

const FUNNEL = [
  { key: "scans", label: "扫码" },
  { key: "registrations", label: "注册" },
  { key: "applications", label: "申请" },
  { key: "approvals", label: "审批通过" },
  { key: "disbursed_loans", label: "放款" },
];

const path = (id, rest = "") => `admin/campaigns/${id}${rest}`;
const tag = (status) => h("span", { class: `tag ${status}` }, statusText(status));
const period = (c) => `${dateTime(c.starts_at)} 至 ${dateTime(c.ends_at)}`;
const MINUTE = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };
const shortPeriod = (c) => `${new Date(c.starts_at).toLocaleString("zh-CN", MINUTE)} ~ ${new Date(c.ends_at).toLocaleString("zh-CN", MINUTE)}`;

// ---- the list ------------------------------------------------------------------------------------

const listHolder = h("div", { class: "campaign-list", testid: "campaign-list" }, h("p", { class: "empty" }, "加载中…"));
const detailHolder = h("div", { testid: "campaign-detail-holder" });

async function allCampaigns() {
  const found = [];
  for (let after = 0; after !== null; ) {
    const body = await api.get("admin/campaigns", { limit: 100, after });
    found.push(...body.items);
    after = body.next_after;
  }
  return found.reverse(); // newest first
}

async function showList() {
  try {
    const items = await allCampaigns();
    const selected = Number(location.hash.slice(1));
    mount(
      listHolder,
      table(
        items,
        [
          { label: "编号", value: (c) => String(c.id) },
          { label: "名称", value: (c) => h("a", { href: `#${c.id}`, testid: "campaign-link" }, c.name) },
          { label: "类型", value: (c) => KINDS[c.kind] || c.kind },
          { label: "状态", value: (c) => tag(c.status) },
          { label: "活动期间", value: shortPeriod },
          { label: "预算", value: (c) => yuan(c.budget_fen) },
          { label: "已使用", value: (c) => yuan(c.committed_fen) },
        ],
        { empty: "还没有活动，请在右侧新建。", rowAttrs: (c) => ({ testid: `campaign-${c.id}`, class: c.id === selected ? "selected" : null }) },
      ),
    );
  } catch (error) {
    mount(listHolder, errorBox(error));
  }
}

// ---- the create form -----------------------------------------------------------------------------

function localValue(date) {
  // A datetime-local input's value is local wall time without a zone.
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

function options(labels, { blank } = {}) {
  return [blank ? h("option", { value: "" }, blank) : null, ...Object.entries(labels).map(([value, label]) => h("option", { value }, label))];
}

// The problems the server named (CAMPAIGN_INVALID lists each field and what is wrong with it).
function problemBox(error) {
  const problems = Array.isArray(error.details) ? error.details : error.details?.problems;
  const box = h("div", {}, errorBox(error));
  if (Array.isArray(problems) && problems.length) {
    box.append(h("ul", { class: "reasons", testid: "problems" }, problems.map((p) => h("li", {}, [p.field, p.problem || p.message].filter(Boolean).join("：")))));
  }
  return box;
}

// Yuan fields turned into fen; a text that is not an amount is refused before anything is sent.
const MONEY_FIELDS = { budget_yuan: ["budget_fen", "预算"], reward_yuan: ["reward_fen", "单笔奖励"], packet_min_yuan: ["packet_min_fen", "红包最小金额"], packet_max_yuan: ["packet_max_fen", "红包最大金额"] };
const COUNT_FIELDS = ["per_person_limit", "per_day_limit", "packet_count", "payout_hold_minutes"];

function termsOf(values) {
  const terms = { kind: values.kind, name: values.name || "", audience: values.audience, starts_at: isoFromLocal(values.starts_at), ends_at: isoFromLocal(values.ends_at) };
  const wrong = [];
  for (const [name, [target, label]] of Object.entries(MONEY_FIELDS)) {
    if (values[name] === undefined) continue;
    const fen = toFen(values[name]);
    if (fen === null) wrong.push(`${label}“${values[name]}”不是有效金额（元，最多两位小数）`);
    else terms[target] = fen;
  }
  for (const name of COUNT_FIELDS) if (values[name] !== undefined) terms[name] = Number(values[name]);
  if (values.milestone) terms.milestone = values.milestone;
  if (!terms.starts_at || !terms.ends_at) wrong.push("请填写开始和结束时间");
  return { terms, wrong };
}

function createForm() {
  const status = h("div", { testid: "create-status" });
  const now = new Date();
  const money = (name, label, placeholder) => field(label, h("input", { name, inputmode: "decimal", placeholder, testid: `input-${name}` }));
  const kind = h("select", { name: "kind", testid: "input-kind" }, options(KINDS));
  const milestone = h("select", { name: "milestone", testid: "input-milestone" }, options(MILESTONES, { blank: "（不设）" }));
  const reward = money("reward_yuan", "单笔奖励（元）", "如 10");
  const packets = [
    field("红包个数", h("input", { name: "packet_count", type: "number", min: 1, testid: "input-packet_count" })),
    money("packet_min_yuan", "红包最小金额（元）", "如 1"),
    money("packet_max_yuan", "红包最大金额（元）", "如 8.88"),
  ];
  // A hold lets the payout's checks see a farm fill the winner's phone before any money leaves.
  const hold = field("发放等待（分钟）", h("input", { name: "payout_hold_minutes", type: "number", min: 0, max: 10080, value: "0", testid: "input-payout_hold_minutes" }));
  const form = h(
    "form",
    { testid: "create-form", novalidate: true },
    field("活动类型", kind),
    field("活动名称", h("input", { name: "name", maxlength: 64, required: true, testid: "input-name" })),
    field("开始时间", h("input", { name: "starts_at", type: "datetime-local", value: localValue(now), testid: "input-starts_at" })),
    field("结束时间", h("input", { name: "ends_at", type: "datetime-local", value: localValue(new Date(now.getTime() + 30 * 86_400_000)), testid: "input-ends_at" })),
    money("budget_yuan", "预算（元）", "如 20000"),
    field("目标客群", h("select", { name: "audience", testid: "input-audience" }, options(AUDIENCES))),
    field("每人奖励上限（次）", h("input", { name: "per_person_limit", type: "number", min: 1, value: "1", testid: "input-per_person_limit" })),
    field("每人每日上限（次）", h("input", { name: "per_day_limit", type: "number", min: 1, value: "1", testid: "input-per_day_limit" })),
    field("奖励节点", milestone),
    reward,
    packets,
    hold,
    h("button", { type: "submit", class: "primary", testid: "create" }, "创建活动（草稿）"),
    status,
  );
  // Only the fields the kind uses are shown and sent (a disabled input is left out of FormData).
  const fit = () => {
    const show = (label, on) => {
      // Through the CSSOM: a label's display:flex would outrank the hidden attribute.
      label.style.display = on ? "" : "none";
      label.querySelector("input, select").disabled = !on;
    };
    show(milestone.closest("label"), kind.value !== "red_packet");
    show(reward, FIXED_REWARD.includes(kind.value));
    for (const label of packets) show(label, kind.value === "red_packet");
    show(hold, kind.value === "red_packet" || FIXED_REWARD.includes(kind.value));
  };
  kind.addEventListener("change", fit);
  fit();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { terms, wrong } = termsOf(fields(form));
    if (wrong.length) return mount(status, h("p", { class: "error", role: "alert", testid: "error" }, wrong.join("；")));
    try {
      const created = await api.post("admin/campaigns", terms);
      form.reset();
      fit();
      mount(status, notice(`已创建活动 #${created.id}（草稿），请在详情中提交排期。`));
      location.hash = String(created.id);
      await showList();
    } catch (error) {
      mount(status, problemBox(error));
    }
  });
  return form;
}

// ---- one campaign --------------------------------------------------------------------------------

function termsFacts(c) {
  const pairs = [
    ["编号", String(c.id)],
    ["名称", c.name],
    ["类型", KINDS[c.kind] || c.kind],
    ["状态", h("span", { class: `tag ${c.status}`, testid: "detail-status", "data-status": c.status }, statusText(c.status))],
    ["活动期间", period(c)],
    ["目标客群", AUDIENCES[c.audience] || c.audience],
    ["渠道", c.channels?.length ? c.channels.join("、") : "全部渠道"],
    ["每人上限 / 每日上限", `${c.per_person_limit} 次 / ${c.per_day_limit} 次`],
  ];
  if (c.milestone) pairs.push(["奖励节点", MILESTONES[c.milestone] || c.milestone]);
  if (c.reward_fen) pairs.push(["单笔奖励", yuan(c.reward_fen)]);
  if (c.kind === "red_packet") pairs.push(["红包", `${c.packet_count} 个，每个 ${yuan(c.packet_min_fen)} ~ ${yuan(c.packet_max_fen)}`]);
  if (c.payout_hold_minutes) pairs.push(["发放等待", `${c.payout_hold_minutes} 分钟`]);
  if (c.change_request_id) pairs.push(["预算复核单", `#${c.change_request_id}${c.approved_by ? "（已复核）" : ""}`]);
  pairs.push(["创建时间", dateTime(c.created_at)]);
  return facts(pairs);
}

function budget(c) {
  // Percent of the budget committed, in whole tenths computed on integers (no float on money).
  const tenths = c.budget_fen ? Math.floor((c.committed_fen * 1000) / c.budget_fen) : 0;
  return h(
    "div",
    { testid: "budget" },
    h("div", { class: "meter" }, h("span", { class: "meter-fill", style: { width: `${Math.min(100, tenths / 10)}%` } })),
    facts([
      ["总预算", yuan(c.budget_fen)],
      ["已使用", h("span", { testid: "budget-spent" }, yuan(c.committed_fen))],
      ["剩余", yuan(c.budget_fen - c.committed_fen)],
      ["使用比例", `${Math.floor(tenths / 10)}.${tenths % 10}%`],
    ]),
  );
}

function actions(c, refresh) {
  const status = h("div", { testid: "action-status" });
  const run = (step) => async () => {
    const moved = await act(
      status,
      () =>
        step.event === "approve"
          ? api.post(`admin/change-requests/${c.change_request_id}/approve`, { note: "控制台复核通过" })
          : api.post(path(c.id, `/${step.event}`)),
      { done: `已${step.label}` },
    );
    if (moved !== undefined) await refresh(status.firstChild);
  };
  const offered = (ACTIONS[c.status] || []).filter((step) => !step.approver || (MAY_APPROVE && c.change_request_id && c.created_by !== staff.id));
  return h(
    "div",
    {},
    h(
      "div",
      { class: "toolbar", testid: "actions" },
      offered.length
        ? offered.map((step) => h("button", { type: "button", class: step.primary ? "primary" : step.danger ? "danger" : null, testid: `action-${step.event}`, on: { click: run(step) } }, step.label))
        : h("span", { class: "empty" }, c.status === "pending_approval" ? "等待有复核权限的同事审批预算" : "此状态下没有可执行的操作"),
    ),
    status,
  );
}

function packetStock(c) {
  const holder = h("div", { testid: "packet-stock" }, h("p", { class: "empty" }, "加载中…"));
  const status = h("div");
  const load = async () => {
    try {
      const pool = await api.get(path(c.id, "/pool"));
      // Before the first grab the pool is not in Redis yet: every packet is still there.
      const left = pool.loaded ? pool.packets_left : c.packet_count;
      mount(
        holder,
        bars([{ key: "packets_left", label: "剩余红包", value: left }, { key: "packets_taken", label: "已领取", value: c.packet_count - left }]),
        facts([["红包总数", `${c.packet_count} 个`], ["领取人数", `${pool.people} 人`], ["库存状态", pool.loaded ? "已装入" : "尚未装入（首次领取时装入）"]]),
        h("div", { class: "toolbar" }, h("button", { type: "button", testid: "rebuild-pool", on: { click: () => act(status, () => api.post(path(c.id, "/pool/rebuild")).then(load), { done: "已按数据库重建库存" }) } }, "按数据库重建库存")),
        status,
      );
    } catch (error) {
      mount(holder, errorBox(error));
    }
  };
  load();
  return holder;
}

function leaderboard(rows, nobody) {
  const ranked = [...rows].sort(
    (a, b) => b.disbursed_fen - a.disbursed_fen || b.approvals - a.approvals || b.applications - a.applications || b.registrations - a.registrations || b.scans - a.scans,
  );
  return table(
    ranked,
    [
      { label: "名次", value: (r) => String(ranked.indexOf(r) + 1) },
      { label: "名称", value: (r) => r.label || nobody },
      { label: "扫码", value: (r) => String(r.scans) },
      { label: "注册", value: (r) => String(r.registrations) },
      { label: "申请", value: (r) => String(r.applications) },
      { label: "通过", value: (r) => String(r.approvals) },
      { label: "放款笔数", value: (r) => String(r.disbursed_loans) },
      { label: "放款金额", value: (r) => yuan(r.disbursed_fen) },
      { label: "奖励成本", value: (r) => yuan(r.cost_fen) },
    ],
    { empty: "暂无业绩", rowAttrs: (r) => ({ testid: `row-${r.key ?? "none"}` }) },
  );
}

function analyticsSections(c) {
  const funnel = h("div", { testid: "funnel-holder" }, h("p", { class: "empty" }, "加载中…"));
  const byBranch = h("div", { testid: "leaderboard-branch" }, h("p", { class: "empty" }, "加载中…"));
  const byStaff = h("div", { testid: "leaderboard-staff" }, h("p", { class: "empty" }, "加载中…"));
  const status = h("div");
  const csv = (by, label) =>
    h("button", { type: "button", testid: `export-${by}`, on: { click: () => act(status, () => api.download(path(c.id, "/analytics.csv"), { by }, `活动${c.id}-${label}.csv`)) } }, `导出${label} CSV`);
  Promise.all([api.get(path(c.id, "/analytics"), { by: "staff" }), api.get(path(c.id, "/analytics"), { by: "branch" })])
    .then(([staffReport, branchReport]) => {
      const total = staffReport.total;
      mount(
        funnel,
        bars(FUNNEL.map((step) => ({ ...step, value: total[step.key] })), { testid: "funnel" }),
        facts([
          ["放款金额", yuan(total.disbursed_fen)],
          ["奖励成本", yuan(total.cost_fen)],
          ["每笔放款成本", yuan(total.cost_per_disbursed_loan_fen)],
          ["统计截至", dateTime(staffReport.until)],
        ]),
      );
      mount(byBranch, leaderboard(branchReport.rows, "无网点（客户分享）"));
      mount(byStaff, leaderboard(staffReport.rows, "无员工（客户分享）"));
    })
    .catch((error) => [funnel, byBranch, byStaff].forEach((holder) => mount(holder, errorBox(error))));
  return [
    section("转化漏斗", funnel, h("p", { class: "hint" }, "扫码按活动期间本行邀请码统计；注册及之后按活动期间绑定（或指定本活动）的推荐关系统计，后续节点随时计入。")),
    h("div", { class: "grid" }, section("网点排行", byBranch), section("员工排行", byStaff)),
    section("导出", h("div", { class: "toolbar" }, csv("staff", "员工明细"), csv("branch", "网点明细")), status),
  ];
}

async function showDetail() {
  const id = location.hash.slice(1);
  if (!id) return mount(detailHolder, section("活动详情", h("p", { class: "empty" }, "在列表中选择一个活动查看详情。")));
  mount(detailHolder, h("p", { class: "empty" }, "加载中…"));
  let c;
  try {
    c = await api.get(path(encodeURIComponent(id)));
  } catch (error) {
    // Another bank's campaign is "not found" too: the page says no more than the API does.
    if (error.status === 404) return mount(detailHolder, h("p", { class: "error", role: "alert", testid: "not-found" }, `未找到活动 #${id}：它不存在，或不属于您所在的银行。`));
    return mount(detailHolder, errorBox(error));
  }
  const refresh = async (outcome) => {
    await showDetail();
    if (outcome) detailHolder.querySelector("[data-testid=action-status]")?.replaceChildren(outcome);
    await showList();
  };
  mount(
    detailHolder,
    h(
      "div",
      { testid: "campaign-detail", "data-campaign-id": c.id },
      section(`活动 #${c.id} ${c.name}`, termsFacts(c), actions(c, refresh)),
      h("div", { class: "grid" }, section("预算使用", budget(c)), c.kind === "red_packet" ? section("红包库存", packetStock(c)) : null),
      MAY_ANALYSE ? analyticsSections(c) : null,
    ),
  );
}

mount(
  main,
  h("h1", {}, "营销活动"),
  h("div", { class: "split" }, section("活动列表", listHolder), section("新建活动", createForm())),
  detailHolder,
);
window.addEventListener("hashchange", async () => {
  await showDetail();
  await showList();
});
await Promise.all([showList(), showDetail()]);
