// The risk officer's page (风险预警): disposal tasks and their workflow (take, note, resolve,
// escalate), warning signals, the list proposals waiting for a person, and product monitoring
// (figures and charts). Four tabs, chosen by the location's hash, so a task can be opened by
// link: risk.html#task-<id> (and a signal by risk.html#signal-<id>).
// The page offers only the moves the task's status table allows; the API checks them again (and
// who may make them), and its refusal is shown as it is.

import * as api from "./api.js";
import { h, mount, table, facts, section, fields, field, errorBox, act } from "./dom.js";
import { yuan, dateTime, statusText } from "./format.js";
import { start } from "./shell.js";

const { staff, main } = await start("risk.html");

const RISK = "admin/risk";
const SEVERITIES = { info: "提示", watch: "关注", warning: "预警", severe: "严重" };
const CATEGORIES = {
  repayment: "还款行为",
  account: "账户与资金流向",
  bureau: "征信变化",
  court: "司法涉诉",
  business: "经营状况",
  employment: "就业与收入",
  collateral: "押品与担保",
  parties: "关联人",
  realtime: "实时交易",
};
const TASK_STATUSES = ["open", "in_progress", "resolved", "escalated"];
const PROPOSAL_STATUSES = { proposed: "待确认", applied: "已生效", rejected: "已驳回" };
const LEVELS = { blacklist_prohibit: "黑名单（禁止级）", blacklist_restrict: "黑名单（限制级）", greylist: "灰名单" };
const BUCKETS = { current: "正常", "1-30": "逾期1-30天", "31-60": "逾期31-60天", "61-90": "逾期61-90天", "90+": "逾期90天以上" };
const CHARTS = [
  ["approvals", "审批通过率"],
  ["overdue", "逾期分布"],
  ["vintage", "账龄（Vintage）曲线"],
];

const canRead = api.can(staff, "risk.read");
const canManage = api.can(staff, "risk.manage");
const canMonitor = api.can(staff, "monitoring.read");
const TABS = [
  { key: "tasks", title: "处置任务", allowed: canRead },
  { key: "signals", title: "预警信号", allowed: canRead },
  { key: "proposals", title: "名单建议", allowed: canRead },
  { key: "monitoring", title: "产品监测", allowed: canMonitor },
].filter((tab) => tab.allowed);

const severityTag = (severity) => h("span", { class: `tag ${severity}` }, SEVERITIES[severity] || severity);
const statusTag = (status) => h("span", { class: `tag ${status}`, testid: "status" }, statusText(status));
const category = (code) => CATEGORIES[code] || code;
const loanRef = (loanId) => (loanId ? `借据 #${loanId}` : "客户级预警");
const staffName = (id) => (id === null || id === undefined ? "未分配" : id === staff.id ? `我（${staff.username}）` : `员工 #${id}`);
const percent = (rate) => (rate === null || rate === undefined ? "—" : `${(Number(rate) * 100).toFixed(2)}%`);

// A filter's choices, the first one "any" (an empty value: the filter is left out).
function select(name, choices, { testid, any = "全部" } = {}) {
  return h("select", { name, testid }, h("option", { value: "" }, any),
    Object.entries(choices).map(([value, label]) => h("option", { value }, label)));
}

// A signal's facts are figures and codes by field path; amounts (…_fen) are shown in yuan.
function factValue(name, value) {
  if (typeof value === "number" && name.endsWith("_fen")) return yuan(value);
  if (typeof value === "boolean") return value ? "是" : "否";
  return value === null || value === undefined ? "—" : String(value);
}

function factTable(signalFacts) {
  const rows = Object.entries(signalFacts || {}).map(([name, value]) => ({ name, value }));
  return table(rows, [
    { label: "指标", value: (r) => h("code", {}, r.name) },
    { label: "取值", value: (r) => factValue(r.name, r.value) },
  ], { empty: "无附带数据" });
}

// ---- the tabs and the hash ---------------------------------------------------------------------

const nav = h("nav", { class: "tabs", testid: "risk-tabs" },
  TABS.map((tab) => h("a", { href: `#${tab.key}`, "data-tab": tab.key, testid: `tab-${tab.key}` }, tab.title)));
const view = h("div", { testid: "risk-view" });
mount(main, h("h1", {}, "风险预警与处置"), nav, view);

function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const task = /^task-(\d+)$/.exec(hash);
  const signal = /^signal-(\d+)$/.exec(hash);
  const tab = task ? "tasks" : signal ? "signals" : TABS.some((t) => t.key === hash) ? hash : TABS[0]?.key;
  for (const link of nav.querySelectorAll("a")) link.classList.toggle("current", link.dataset.tab === tab);
  if (!tab) return mount(view, h("p", { class: "empty" }, "您的角色无可用的风险功能。"));
  if (task) return showTask(Number(task[1]));
  if (signal) return showSignal(Number(signal[1]));
  return { tasks: showTasks, signals: showSignals, proposals: showProposals, monitoring: showMonitoring }[tab]();
}

window.addEventListener("hashchange", route);

// A list with filters and keyset paging: `load(query)` answers {items, next_after}; `render`
// draws the items. The filter form's values are the query.
function filteredList({ title, filterFields, load, render, testid }) {
  const status = h("div");
  const results = h("div", { testid });
  let query = {};
  const more = h("button", { type: "button", testid: "next-page", hidden: true, on: { click: () => run({ ...query, after: more.dataset.after }) } }, "下一页");
  async function run(q) {
    const page = await act(status, () => load(q));
    if (!page) return;
    mount(results, render(page.items));
    more.hidden = page.next_after === null;
    more.dataset.after = page.next_after ?? "";
  }
  const form = h("form", { class: "toolbar", testid: `${testid}-filters`, on: { submit: (event) => {
    event.preventDefault();
    query = fields(form);
    run(query);
  } } }, filterFields, h("button", { type: "submit", class: "primary" }, "筛选"));
  run(query);
  return section(title, form, status, results, more);
}

// ---- disposal tasks ----------------------------------------------------------------------------

function showTasks() {
  mount(view, filteredList({
    title: "处置任务",
    testid: "tasks",
    filterFields: [
      field("状态", select("status", Object.fromEntries(TASK_STATUSES.map((s) => [s, statusText(s)])), { testid: "filter-status" })),
      field("严重程度", select("severity", SEVERITIES, { testid: "filter-severity" })),
      field("范围", select("mine", { true: "仅我的任务" }, { any: "本行全部", testid: "filter-mine" })),
    ],
    load: (query) => api.get(`${RISK}/tasks`, { limit: 20, ...query }),
    render: (items) => table(items, [
      { label: "任务", value: (t) => h("a", { href: `#task-${t.id}`, testid: "task-link" }, `#${t.id}`) },
      { label: "预警规则", value: (t) => h("code", {}, t.rule_code) },
      { label: "类别", value: (t) => category(t.category) },
      { label: "借据", value: (t) => loanRef(t.loan_id) },
      { label: "产品", value: (t) => t.product_code },
      { label: "严重程度", value: (t) => severityTag(t.severity) },
      { label: "状态", value: (t) => statusTag(t.status) },
      { label: "处理人", value: (t) => staffName(t.assigned_to) },
      { label: "处理期限", value: (t) => dateTime(t.deadline) },
    ], { empty: "没有符合条件的处置任务", rowAttrs: (t) => ({ testid: `task-row-${t.id}`, "data-status": t.status }) }),
  }));
}

async function showTask(taskId) {
  const status = h("div");
  mount(view, h("p", { class: "hint" }, h("a", { href: "#tasks" }, "← 返回任务列表")), status);
  let task;
  try {
    task = await api.get(`${RISK}/tasks/${taskId}`);
  } catch (error) {
    mount(status, error.status === 404 ? h("p", { class: "error", testid: "not-found" }, `任务 #${taskId} 不存在或不属于本行`) : errorBox(error));
    return;
  }
  drawTask(task);
}

function drawTask(task) {
  const { signal, rule } = task;
  const status = h("div", { testid: "task-status" });
  const notes = (task.notes || []).map((note) =>
    h("li", {}, h("span", { class: "hint" }, `${dateTime(note.at)} · ${staffName(note.staff_id)}：`), note.text));
  mount(
    view,
    h("p", { class: "hint" }, h("a", { href: "#tasks" }, "← 返回任务列表")),
    h("div", { class: "grid", testid: "task-detail", "data-task-id": task.id, "data-status": task.status },
      section(`处置任务 #${task.id}`,
        facts([
          ["状态", statusTag(task.status)],
          ["严重程度", severityTag(task.severity)],
          ["处理人", staffName(task.assigned_to)],
          ["处理期限", dateTime(task.deadline)],
          ["创建时间", dateTime(task.created_at)],
          ["结束时间", dateTime(task.closed_at)],
          ["处置结果", task.outcome ? h("span", { testid: "outcome" }, task.outcome) : "—"],
        ]),
        h("div", { class: "actions" }, status, taskActions(task, status))),
      section("预警信号",
        facts([
          ["规则", h("span", {}, h("code", {}, signal.rule_code), rule ? ` ${rule.name}` : "")],
          ["类别", category(signal.category)],
          ["借据", loanRef(signal.loan_id)],
          ["产品", signal.product_code],
          ["来源", signal.source === "realtime" ? "实时监测" : "日终批量"],
          ["信号状态", statusText(signal.status)],
          ["首次 / 最近触发", `${dateTime(signal.first_seen_at)} / ${dateTime(signal.last_seen_at)}（共 ${signal.times} 次）`],
        ]),
        h("h3", {}, "触发数据"),
        factTable(signal.facts)),
    ),
    section("建议处置措施",
      h("p", { testid: "disposal" }, rule ? rule.disposal : "实时交易预警：核实交易背景与资金去向，必要时联系客户并记录处置情况。")),
    section("处置记录",
      notes.length ? h("ol", { class: "steps", testid: "notes" }, notes) : h("p", { class: "empty", testid: "notes" }, "暂无处置记录")),
  );
}

// The buttons the task's status allows (see lending_core/risk/tasks.py STATUS): an open task is
// taken or escalated; a task in progress is worked by whoever took it (notes, resolve,
// escalate). Closed tasks offer nothing.
function taskActions(task, status) {
  if (!canManage) return h("p", { class: "hint" }, "您只有查看权限。");
  const path = (move) => `${RISK}/tasks/${task.id}/${move}`;
  const redraw = async (changed) => {
    if (changed) drawTask(await api.get(`${RISK}/tasks/${task.id}`));
  };
  const textForm = ({ testid, label, name, button, move, kind = "primary", key }) => {
    const input = h("textarea", { name, class: "note", required: true, maxlength: 1000, testid: `${testid}-text` });
    const form = h("form", { testid, on: { submit: async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      await redraw(await act(status, () => api.post(path(move), { [key]: text })));
    } } }, field(label, input), h("button", { type: "submit", class: kind, testid: `${testid}-submit` }, button));
    return form;
  };
  const escalate = textForm({ testid: "escalate", label: "升级原因", name: "reason", key: "reason", button: "升级处理", move: "escalate", kind: "danger" });
  if (task.status === "open") {
    const take = h("button", { type: "button", class: "primary", testid: "take", on: { click: async () => {
      await redraw(await act(status, () => api.post(path("take"))));
    } } }, "领取任务");
    return h("div", { testid: "task-actions" }, h("p", {}, take), escalate);
  }
  if (task.status === "in_progress") {
    if (task.assigned_to !== staff.id && staff.bank_id !== null) {
      return h("p", { class: "hint", testid: "task-actions" }, `此任务由${staffName(task.assigned_to)}处理中。`);
    }
    return h("div", { testid: "task-actions" },
      textForm({ testid: "add-note", label: "添加处置记录", name: "text", key: "text", button: "添加记录", move: "notes" }),
      textForm({ testid: "resolve", label: "处置结果", name: "outcome", key: "outcome", button: "办结任务", move: "resolve" }),
      escalate);
  }
  return h("p", { class: "hint", testid: "task-actions" }, "任务已结束。");
}

// ---- warning signals ---------------------------------------------------------------------------

function showSignals() {
  mount(view, filteredList({
    title: "预警信号",
    testid: "signals",
    filterFields: [
      field("状态", select("status", { open: "待处理", closed: "已关闭" }, { testid: "filter-signal-status" })),
      field("严重程度", select("severity", SEVERITIES, { testid: "filter-signal-severity" })),
      field("类别", select("category", CATEGORIES, { testid: "filter-category" })),
      field("来源", select("source", { batch: "日终批量", realtime: "实时监测" }, { testid: "filter-source" })),
    ],
    load: (query) => api.get(`${RISK}/signals`, { limit: 20, ...query }),
    render: (items) => table(items, [
      { label: "信号", value: (s) => h("a", { href: `#signal-${s.id}` }, `#${s.id}`) },
      { label: "预警规则", value: (s) => h("code", {}, s.rule_code) },
      { label: "类别", value: (s) => category(s.category) },
      { label: "借据", value: (s) => loanRef(s.loan_id) },
      { label: "产品", value: (s) => s.product_code },
      { label: "严重程度", value: (s) => severityTag(s.severity) },
      { label: "状态", value: (s) => statusText(s.status) },
      { label: "触发次数", value: (s) => String(s.times) },
      { label: "最近触发", value: (s) => dateTime(s.last_seen_at) },
    ], { empty: "没有符合条件的预警信号", rowAttrs: (s) => ({ testid: `signal-row-${s.id}` }) }),
  }));
}

async function showSignal(signalId) {
  const status = h("div");
  mount(view, status);
  let signal;
  try {
    signal = await api.get(`${RISK}/signals/${signalId}`);
  } catch (error) {
    mount(status, error.status === 404 ? h("p", { class: "error", testid: "not-found" }, `信号 #${signalId} 不存在或不属于本行`) : errorBox(error));
    return;
  }
  const { rule } = signal;
  mount(
    view,
    h("p", { class: "hint" }, h("a", { href: "#signals" }, "← 返回信号列表")),
    section(`预警信号 #${signal.id}`,
      facts([
        ["规则", h("span", {}, h("code", {}, signal.rule_code), rule ? ` ${rule.name}` : "")],
        ["类别", category(signal.category)],
        ["严重程度", severityTag(signal.severity)],
        ["借据", loanRef(signal.loan_id)],
        ["产品", signal.product_code],
        ["状态", statusText(signal.status)],
        ["首次 / 最近触发", `${dateTime(signal.first_seen_at)} / ${dateTime(signal.last_seen_at)}（共 ${signal.times} 次）`],
        ["关闭原因", signal.closed_reason],
      ]),
      h("h3", {}, "触发数据"),
      factTable(signal.facts),
      h("h3", {}, "建议处置措施"),
      h("p", { testid: "disposal" }, rule ? rule.disposal : "—")),
  );
}

// ---- list proposals ----------------------------------------------------------------------------

function showProposals() {
  mount(view, filteredList({
    title: "名单建议（贷后预警提出，待风险经理确认）",
    testid: "proposals",
    filterFields: [field("状态", h("select", { name: "status", testid: "filter-proposal-status" },
      Object.entries(PROPOSAL_STATUSES).map(([value, label]) => h("option", { value }, label))))],
    load: (query) => api.get(`${RISK}/list-proposals`, { limit: 20, status: "proposed", ...query }),
    render: (items) => table(items, [
      { label: "建议", value: (p) => `#${p.id}` },
      { label: "客户", value: (p) => `客户 #${p.customer_id}` },
      { label: "名单", value: (p) => LEVELS[p.level] || p.level },
      { label: "依据", value: (p) => h("span", {}, p.reason, " ", h("code", {}, p.policy)) },
      { label: "预警信号", value: (p) => (p.signal_id ? h("a", { href: `#signal-${p.signal_id}` }, `#${p.signal_id}`) : "—") },
      { label: "状态", value: (p) => PROPOSAL_STATUSES[p.status] || p.status },
      { label: "提出时间", value: (p) => dateTime(p.created_at) },
      { label: "操作", value: (p) => proposalActions(p) },
    ], { empty: "没有待确认的名单建议", rowAttrs: (p) => ({ testid: `proposal-row-${p.id}` }) }),
  }));
}

function proposalActions(proposal) {
  if (proposal.status !== "proposed") return proposal.decided_by ? `${proposal.decided_by} · ${dateTime(proposal.decided_at)}` : "—";
  if (!canManage) return "—";
  const status = h("div");
  const cell = h("div", {});
  const reason = h("input", { name: "reason", required: true, maxlength: 500, placeholder: "驳回原因", testid: "reject-reason" });
  const decided = (done) => (result) => {
    if (result) mount(cell, `${done}（${PROPOSAL_STATUSES[result.status] || result.status}）`);
  };
  const confirm = h("button", { type: "button", class: "primary", testid: "confirm", on: { click: async () => {
    decided("已确认")(await act(status, () => api.post(`${RISK}/list-proposals/${proposal.id}/confirm`)));
  } } }, "确认列入");
  const reject = h("form", { class: "toolbar", on: { submit: async (event) => {
    event.preventDefault();
    decided("已驳回")(await act(status, () => api.post(`${RISK}/list-proposals/${proposal.id}/reject`, { reason: reason.value.trim() })));
  } } }, reason, h("button", { type: "submit", class: "danger", testid: "reject" }, "驳回"));
  mount(cell, h("div", { class: "toolbar" }, confirm), reject, status);
  return cell;
}

// ---- product monitoring ------------------------------------------------------------------------

async function showMonitoring() {
  const status = h("div");
  const figuresBox = h("div", { testid: "figures" });
  const chartsBox = h("div", { class: "grid", testid: "charts" });
  const product = h("select", { name: "product", testid: "monitoring-product" }, h("option", { value: "" }, "全部产品"));
  const months = h("select", { name: "months", testid: "monitoring-months" },
    [6, 12, 24].map((n) => h("option", { value: n, selected: n === 12 }, `近 ${n} 个月`)));
  const form = h("form", { class: "toolbar", on: { submit: (event) => {
    event.preventDefault();
    draw(fields(form));
  } } }, field("产品", product), field("期间", months), h("button", { type: "submit", class: "primary", testid: "monitoring-show" }, "查看"));
  mount(view, section("产品监测", form, status, figuresBox), section("图表", chartsBox));

  const listed = await act(status, () => api.get("admin/monitoring/products"));
  for (const p of listed?.items || []) product.append(h("option", { value: p.code }, `${p.name}（${p.code}）`));

  // Only the latest choice is drawn: an earlier one still loading is dropped when it answers.
  let latest = 0;
  let shown = [];
  async function draw(query) {
    const drawing = ++latest;
    const selected = query.product || "all";
    const figures = await act(status, () => api.get("admin/monitoring/figures", query));
    if (!figures || drawing !== latest) return;
    mount(figuresBox, figureTables(figures));
    figuresBox.dataset.product = selected;
    // The old charts' blob: URLs are freed once new ones replace them.
    for (const url of shown) URL.revokeObjectURL(url);
    shown = [];
    chartsBox.dataset.product = selected;
    mount(chartsBox, CHARTS.map(([chart, title]) => {
      const img = h("img", { class: "chart", alt: title, testid: `chart-${chart}`, hidden: true });
      const waiting = h("p", { class: "hint" }, "图表生成中…");
      api.blobUrl(`admin/monitoring/charts/${chart}`, query).then((url) => {
        if (drawing !== latest) return URL.revokeObjectURL(url);
        shown.push(url);
        img.addEventListener("load", () => {
          img.dataset.loaded = "true";
          img.hidden = false;
          waiting.remove();
        }, { once: true });
        img.src = url;
      }, (error) => waiting.replaceWith(errorBox(error)));
      return h("figure", {}, h("figcaption", { class: "hint" }, title), waiting, img);
    }));
  }
  draw(fields(form));
}

function figureTables(figures) {
  const { approvals, overdue, warnings } = figures;
  return h("div", { class: "grid" },
    h("div", {},
      h("h3", {}, `审批（截至 ${figures.as_of}）`),
      facts([
        ["申请", String(approvals.applications)],
        ["批准", String(approvals.approved)],
        ["拒绝", String(approvals.rejected)],
        ["审查中", String(approvals.in_review)],
        ["通过率", h("span", { testid: "approval-rate" }, percent(approvals.approval_rate))],
      ]),
      h("h3", {}, "不良（逾期90天以上）"),
      facts([
        ["借据数", String(figures.default.loans)],
        ["余额", yuan(figures.default.outstanding_fen)],
        ["余额占比", percent(figures.default.principal_rate)],
      ])),
    h("div", {},
      h("h3", {}, `贷款余额 ${yuan(overdue.outstanding_fen)}，逾期 ${yuan(overdue.overdue_fen)}（${percent(overdue.principal_rate)}）`),
      table(overdue.buckets, [
        { label: "逾期档", value: (b) => BUCKETS[b.bucket] || b.bucket },
        { label: "借据数", value: (b) => String(b.loans) },
        { label: "余额", value: (b) => yuan(b.outstanding_fen) },
        { label: "余额占比", value: (b) => percent(b.principal_rate) },
      ], { rowAttrs: (b) => ({ testid: `bucket-${b.bucket}` }) })),
    h("div", {},
      h("h3", {}, `预警信号（待处理 ${warnings.open}，已关闭 ${warnings.closed}）`),
      table(warnings.by_category, [
        { label: "类别", value: (w) => category(w.category) },
        { label: "待处理", value: (w) => String(w.open) },
        { label: "已关闭", value: (w) => String(w.closed) },
        { label: "待处理按严重程度", value: (w) => Object.entries(w.open_by_severity || {}).map(([s, n]) => `${SEVERITIES[s] || s} ${n}`).join("，") || "—" },
      ], { empty: "暂无预警信号" })),
  );
}

route();
