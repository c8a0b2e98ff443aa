// The reviewer's page: the bank's manual-review queue, one case's decision explained (admission
// rules, scorecard, limit and rate derivation, data sources that did not answer), and the
// approve/reject form. The page decides nothing: the API checks the reviewer's rights (a plain
// reviewer may not go above the model's limit) and the page shows its refusal as it is.
// A case can be opened by link: reviews.html#<application id>.

import * as api from "./api.js";
import { h, mount, table, facts, section, field, errorBox, notice, act } from "./dom.js";
import { yuan, percentFromBps, dateTime, statusText, elapsed, DATA_SOURCES, REPAYMENT_METHODS as METHODS } from "./format.js";
import { start } from "./shell.js";

const { main } = await start("reviews.html");

const sourceName = (source) => DATA_SOURCES[source] || source;
const sourceList = (text) => text.split(/,\s*/).map(sourceName).join("、");

const OUTCOMES = { approved: "自动批准", rejected: "拒绝", manual_review: "转人工审查", approve: "批准", refer: "转人工", reject: "拒绝" };
const UNAVAILABLE = /^data source (\w+) did not answer$/;

// The engine explains itself in fixed English phrases; reviewers read Chinese. Each phrase the
// engine writes has a pattern here; anything else is shown as written (and always in the tooltip).
const REVIEW_REASONS = [
  [UNAVAILABLE, (m) => `数据源「${sourceName(m[1])}」未响应`],
  [/^rule (\w+) not evaluated: missing (.+)$/, (m) => `规则 ${m[1]} 未评估：缺少${sourceList(m[2])}数据`],
  [/^rule (\w+) refers to a person$/, (m) => `规则 ${m[1]} 未通过，需人工审查`],
  [/^on the blacklist \(restrict\): no automatic approval$/, () => "命中黑名单（限制级），不自动批准"],
  [/^on the blacklist \(prohibit\)$/, () => "命中黑名单（禁止级）"],
  [/^score band (\w+) on incomplete data$/, (m) => `评分档位 ${m[1]}，但评分数据不完整`],
  [/^score band (\w+) refers to a person$/, (m) => `评分档位 ${m[1]} 需人工审查`],
];
const LIMIT_STEPS = [
  [/^(\w+): no (\S+)$/, (m) => `${m[1]}：无 ${m[2]} 数据，不参与测算`],
  [/^(\w+): (\S+) ([\d.]+) × ([\d.]+) = ([\d.]+) yuan$/, (m) => `${m[1]}：${m[2]} ¥${m[3]} × ${m[4]} = ¥${m[5]}`],
  [/^smallest basis × band (\w+) factor ([\d.]+) = ([\d.]+) yuan$/, (m) => `取最小基数 × ${m[1]} 档系数 ${m[2]} = ¥${m[3]}`],
  [/^capped at the product maximum (\d+) yuan$/, (m) => `不超过产品最高额度 ¥${m[1]}`],
  [/^capped by the association's unsecured-credit limit: ([\d.]+) yuan left$/, (m) => `受省联社信用贷款总额上限约束：尚余 ¥${m[1]}`],
  [/^rounded down to (\d+) yuan: (\d+) yuan$/, (m) => `按 ${m[1]} 元向下取整：¥${m[2]}`],
  [/^capped for the restrict list at (\d+) yuan$/, (m) => `黑名单（限制级）额度上限 ¥${m[1]}`],
];
const RATE_STEPS = [
  [/^LPR (\w+) (\d+) bps \+ band (\w+) spread (\d+) bps$/, (m) => `LPR（${m[1]}）${m[2]}bp + ${m[3]} 档加点 ${m[4]}bp`],
  [/^bank adjustment ([+-]\d+) bps$/, (m) => `本行调整 ${m[1]}bp`],
  [/^raised to the floor (\d+) bps$/, (m) => `低于利率下限，取下限 ${m[1]}bp`],
  [/^lowered to the cap (\d+) bps$/, (m) => `高于利率上限，取上限 ${m[1]}bp`],
  [/^= (\d+) bps a year \(([\d.]+)%\)$/, (m) => `= 年利率 ${m[1]}bp（${m[2]}%）`],
];

function translated(text, patterns) {
  for (const [pattern, render] of patterns) {
    const match = pattern.exec(text);
    if (match) return render(match);
  }
  return text;
}

function phrases(texts, patterns, { testid, ordered = false } = {}) {
  if (!texts.length) return h("p", { class: "empty", testid }, "无");
  return h(ordered ? "ol" : "ul", { class: "steps", testid }, texts.map((text) => h("li", { title: text }, translated(text, patterns))));
}

function tag(text, kind) {
  return h("span", { class: `tag ${kind || ""}` }, text);
}

function ruleResult(passed) {
  if (passed === null || passed === undefined) return tag("未评估", "warning");
  return passed ? tag("通过", "approved") : tag("未通过", "rejected");
}

// Scorecard values are stored as text ("24.0"): whole numbers read better without the ".0".
const plain = (value) => (value === null || value === undefined ? "—" : String(value).replace(/^(-?\d+)\.0+$/, "$1"));

// ---- the queue -------------------------------------------------------------------------------

const queueBody = h("div", { testid: "queue" });
const detail = h("div", { testid: "case" });
let cases = [];
let nextAfter = null;

async function loadQueue({ more = false } = {}) {
  const page = await api.get("admin/review-queue", { after: more ? nextAfter : undefined });
  cases = more ? [...cases, ...page.items] : page.items;
  nextAfter = page.next_after;
  drawQueue();
}

function drawQueue() {
  const current = selectedId();
  mount(
    queueBody,
    table(
      cases,
      [
        { label: "申请编号", value: (c) => h("button", { type: "button", class: "link", testid: `open-${c.id}` }, `#${c.id}`) },
        { label: "产品", value: (c) => c.product_code },
        { label: "申请金额", value: (c) => yuan(c.amount_yuan * 100) },
        { label: "申请人", value: (c) => c.applicant_name },
        { label: "等待自", value: (c) => `${dateTime(c.created_at)}（${elapsed(c.created_at)}）` },
        { label: "转人工原因", value: (c) => phrases(firstReasons(c.decision.review_reasons || []), REVIEW_REASONS) },
      ],
      {
        empty: "审查队列中暂无待审案件",
        rowAttrs: (c) => ({ testid: `row-${c.id}`, class: c.id === current ? "selected clickable" : "clickable", on: { click: () => select(c.id) } }),
      },
    ),
    nextAfter ? h("button", { testid: "more", on: { click: () => loadQueue({ more: true }) } }, "加载更多") : null,
  );
}

// A case whose sources did not answer has a reason per rule: the queue shows the first few.
const QUEUE_REASONS = 3;
function firstReasons(reasons) {
  if (reasons.length <= QUEUE_REASONS) return reasons;
  return [...reasons.slice(0, QUEUE_REASONS), `…另 ${reasons.length - QUEUE_REASONS} 项，见案件详情`];
}

function selectedId() {
  const id = Number(location.hash.slice(1));
  return Number.isInteger(id) && id > 0 ? id : null;
}

function select(id) {
  if (selectedId() === id) showCase(id);
  else location.hash = `#${id}`; // hashchange opens it; the link can be shared
}

// ---- one case --------------------------------------------------------------------------------

async function showCase(id, { done } = {}) {
  drawQueue();
  if (!id) {
    mount(detail, h("p", { class: "empty" }, "在上方队列中选择一个案件查看决策解释。"));
    return;
  }
  mount(detail, h("p", { class: "empty" }, "加载中…"));
  let application;
  try {
    application = await api.get(`admin/applications/${id}`);
  } catch (error) {
    mount(detail, section(`案件 #${id}`, errorBox(error)));
    return;
  }
  if (selectedId() !== id) return; // another case was chosen while this one loaded
  mount(detail, explanation(application, done));
}

function explanation(a, done) {
  const d = a.decision;
  const terms = a.product_terms;
  const unavailable = (d.review_reasons || []).map((r) => UNAVAILABLE.exec(r)).filter(Boolean).map((m) => sourceName(m[1]));
  return h(
    "div",
    { testid: "case-detail", "data-id": a.id },
    section(
      `案件 #${a.id} · ${a.product_name}（${a.product_code} v${a.product_version}）`,
      facts([
        ["申请人", a.applicant_name],
        ["申请金额", yuan(a.amount_yuan * 100)],
        ["期限", `${a.term_months} 个月`],
        ["还款方式", METHODS[a.repayment_method] || a.repayment_method],
        ["渠道", a.channel],
        ["提交时间", `${dateTime(a.created_at)}（已等待 ${elapsed(a.created_at)}）`],
        ["状态", h("span", { testid: "case-status" }, tag(statusText(a.status), a.status))],
        ["模型结论", OUTCOMES[d.outcome] || d.outcome],
        ["模型额度", h("span", { testid: "model-limit" }, yuan(d.limit_fen))],
        ["模型利率", `${percentFromBps(d.rate_bps)}（年化利率 APR ${percentFromBps(d.apr_bps)}）`],
        ["标记", d.flags?.length ? d.flags.map((f) => tag(f === "greylist" ? "灰名单" : f, "warning")) : "无"],
      ]),
      h("h3", {}, "转人工原因"),
      phrases(d.review_reasons || [], REVIEW_REASONS, { testid: "review-reasons" }),
      h("h3", {}, "未响应的数据源"),
      unavailable.length
        ? h("p", { testid: "unavailable-sources" }, unavailable.map((s) => tag(s, "warning")))
        : h("p", { class: "empty", testid: "unavailable-sources" }, "无：所有数据源均已响应"),
    ),
    // A decided case shows its outcome first; an open one ends with the form, after the
    // explanation it rests on.
    a.status === "manual_review" ? null : outcome(a, done),
    section(
      "准入规则",
      table(
        d.rules || [],
        [
          { label: "规则", value: (r) => r.code },
          { label: "条件", value: (r) => h("code", {}, r.condition || "—") },
          { label: "说明（告知客户的原因）", value: (r) => r.reason },
          { label: "不通过时", value: (r) => OUTCOMES[r.on_fail] || r.on_fail },
          { label: "结果", value: (r) => ruleResult(r.passed) },
        ],
        { rowAttrs: (r) => ({ testid: `rule-${r.code}` }) },
      ),
    ),
    h(
      "div",
      { class: "grid" },
      section("评分卡", scorecard(d, terms)),
      section(
        "额度测算",
        phrases(d.limit_steps || [], LIMIT_STEPS, { testid: "limit-steps", ordered: true }),
        facts([
          ["模型额度", yuan(d.limit_fen)],
          ["产品额度范围", `${yuan(terms.amount_yuan.min * 100)} – ${yuan(terms.amount_yuan.max * 100)}`],
        ]),
      ),
      section(
        "利率测算",
        phrases(d.rate_steps || [], RATE_STEPS, { testid: "rate-steps", ordered: true }),
        facts([
          ["LPR 期限", terms.lpr_term === "5y" ? "5年期以上" : "1年期"],
          ["产品利率下限 / 上限", `${percentFromBps(terms.rate_floor_bps)} / ${percentFromBps(terms.rate_cap_bps)}`],
          ["执行年利率", h("span", { testid: "rate" }, percentFromBps(d.rate_bps))],
          // No fees are charged, so the annualised rate equals the contract rate.
          ["年化利率（APR）", percentFromBps(d.apr_bps)],
        ]),
      ),
    ),
    a.status === "manual_review" ? reviewForm(a) : null,
  );
}

function scorecard(d, terms) {
  const parts = d.score_parts || [];
  const rows = [
    { attribute: "基础分", value: null, points: terms.score_base, evaluated: true, base: true },
    ...parts,
  ];
  const bands = terms.score_bands.map((b) => `${b.band} ≥ ${b.min_score}（${OUTCOMES[b.outcome] || b.outcome}）`).join("；");
  return [
    table(rows, [
      { label: "属性", value: (p) => p.attribute },
      { label: "取值", value: (p) => (p.base ? "" : p.evaluated ? plain(p.value) : tag("缺少数据，未评分", "warning")) },
      { label: "得分", value: (p) => String(p.points) },
    ], { rowAttrs: (p) => ({ testid: p.base ? "score-base" : `score-${p.attribute}` }) }),
    facts([
      ["总分", h("span", { testid: "score-total" }, `${d.score}（${d.band} 档）`)],
      ["档位", bands],
    ]),
  ];
}

function outcome(a, done) {
  return section(
    "审查结果",
    done ? notice(done) : null,
    facts([
      ["结论", tag(statusText(a.status), a.status)],
      ["核定额度", yuan(a.limit_yuan * 100)],
      ["执行年利率", percentFromBps(a.annual_rate_bps)],
      ["审批意见", a.review_note],
      ["审查时间", dateTime(a.decided_at)],
    ]),
  );
}

function reviewForm(a) {
  const status = h("div", { testid: "review-status" });
  const model = a.decision.limit_fen;
  const limit = h("input", { name: "limit_yuan", inputmode: "numeric", testid: "limit", value: model > 0 ? String(model / 100) : "" });
  const note = h("textarea", { name: "note", class: "note", testid: "note", maxlength: "500", placeholder: "审批意见：核实了什么、为何批准或拒绝" });

  async function decide(decision) {
    const text = note.value.trim();
    if (!text) {
      mount(status, errorBox({ message: "请填写审批意见：批准和拒绝都需要写明理由" }));
      note.focus();
      return;
    }
    const body = { decision, note: text };
    if (decision === "approve" && limit.value.trim() !== "") {
      if (!/^\d{1,9}$/.test(limit.value.trim())) {
        mount(status, errorBox({ message: "核定额度请填写整数元" }));
        return;
      }
      body.limit_yuan = Number(limit.value.trim());
    }
    const reviewed = await act(status, () => api.post(`admin/applications/${a.id}/review`, body));
    if (!reviewed) return; // the server's refusal is shown in `status`; nothing changed
    const done = decision === "approve" ? `已批准，核定额度 ${yuan(reviewed.limit_yuan * 100)}` : "已拒绝，审批意见已作为拒绝原因告知客户";
    await Promise.all([loadQueue(), showCase(a.id, { done })]);
  }

  return section(
    "审查决定",
    h("form", { testid: "review-form", class: "review-form", on: { submit: (event) => event.preventDefault() } },
      field(`核定额度（元）— 模型额度 ${yuan(model)}，产品范围 ${a.product_terms.amount_yuan.min}–${a.product_terms.amount_yuan.max} 元；高于模型额度须高级审查员`, limit),
      field("审批意见（必填；拒绝时将作为拒绝原因告知客户）", note),
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "primary", testid: "approve", on: { click: () => decide("approve") } }, "批准"),
        h("button", { type: "button", class: "danger", testid: "reject", on: { click: () => decide("reject") } }, "拒绝"),
      ),
      status,
    ),
  );
}

// ---- the page --------------------------------------------------------------------------------

const refreshStatus = h("span");
const refresh = h("button", { testid: "refresh", on: { click: () => act(refreshStatus, () => loadQueue()) } }, "刷新");
mount(
  main,
  h("h1", {}, "人工审查"),
  section("待审查案件", h("div", { class: "toolbar" }, refresh, refreshStatus), queueBody),
  detail,
);
window.addEventListener("hashchange", () => showCase(selectedId()));
try {
  await loadQueue();
} catch (error) {
  mount(queueBody, errorBox(error));
}
await showCase(selectedId());
