// 我的营销: an account manager's own page — my invite code with its QR and poster, my quota and
// rank for a period, and the declined applicants of my branch to follow up. Every member of staff
// may open it (org.read); each section is drawn only when the member's permissions let them use
// it (the API checks every call again).

import * as api from "./api.js";
import { start } from "./shell.js";
import { h, mount, table, facts, section, fields, field, errorBox, notice, act } from "./dom.js";
import { yuan, percentFromBps, dateTime } from "./format.js";

const { staff, main } = await start("me.html");

const OUTCOMES = {
  contacted: "已联系",
  no_answer: "未接通",
  interested: "有意向",
  not_interested: "无意向",
  reinvited: "已再次邀约",
  do_not_contact: "勿再联系",
};

// What a quota measures, beside the leaderboard figure it is measured against.
const TARGETS = [
  { target: "referrals_target", metric: "referrals", label: "推荐客户", money: false },
  { target: "applications_target", metric: "applications", label: "进件申请", money: false },
  { target: "approvals_target", metric: "approvals", label: "审批通过", money: false },
  { target: "disbursed_target_fen", metric: "disbursed_fen", label: "放款金额", money: true },
];

const PAGE = 50; // rows per request of the declined-applicant list

const RANK_BY = { disbursed_fen: "放款金额", approvals: "审批通过", applications: "进件申请", referrals: "推荐客户", attainment_bps: "任务完成率" };

// ---- my invite code ------------------------------------------------------------------------------

const DOWNLOADS = { "qr.png": "二维码", "poster.png": "海报", "wxacode.png": "小程序码" };

async function copy(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    mount(status, notice("已复制邀请码"));
  } catch {
    // No clipboard access (an old browser, or permission refused): the code is on screen to copy by hand.
    mount(status, notice(`请手动复制：${text}`));
  }
}

// An image the API serves only with the member's token, drawn once its blob: URL is ready.
function tokenImage(path, { alt, testid, className, query }) {
  const holder = h("div", { class: "image-holder" }, h("p", { class: "empty" }, "加载中…"));
  api
    .blobUrl(path, query)
    .then((src) => mount(holder, h("img", { src, alt, class: className, testid })))
    .catch((error) => mount(holder, errorBox(error)));
  return holder;
}

function inviteSection(invite) {
  const status = h("div");
  const download = (name, filename, query) =>
    h("button", { type: "button", testid: `download-${name.replace(".png", "")}`, on: { click: () => act(status, () => api.download(invite.images[name], query, filename)) } }, `下载${DOWNLOADS[name]}`);
  return section(
    "我的邀请码",
    h(
      "div",
      { class: "invite", testid: "invite" },
      h(
        "div",
        {},
        h("p", { class: "invite-code", testid: "invite-code" }, invite.code),
        h("button", { type: "button", class: "primary", testid: "copy-code", on: { click: () => copy(invite.code, status) } }, "复制邀请码"),
        facts([
          ["小程序路径", invite.page_path],
          invite.deep_link !== invite.page_path ? ["推广链接", invite.deep_link] : null,
          ["生成时间", dateTime(invite.created_at)],
        ].filter(Boolean)),
        h("div", { class: "toolbar" }, download("qr.png", `邀请码-${invite.code}.png`), download("poster.png", `海报-${invite.code}.png`), download("wxacode.png", `小程序码-${invite.code}.png`)),
        status,
      ),
      h("figure", {}, tokenImage(invite.images["qr.png"], { alt: `邀请码 ${invite.code} 的二维码`, testid: "invite-qr", className: "qr" }), h("figcaption", {}, "二维码")),
      h("figure", {}, tokenImage(invite.images["poster.png"], { alt: "分享海报", testid: "invite-poster", className: "poster" }), h("figcaption", {}, "分享海报")),
    ),
  );
}

// ---- my quota and rank ---------------------------------------------------------------------------

// Periods are the bank's calendar (Asia/Shanghai), as the API counts them.
function periods() {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "numeric" }).formatToParts(new Date()).map((p) => [p.type, p.value]),
  );
  const year = Number(parts.year);
  const month = Number(parts.month);
  const label = (y, m) => `${y}-${String(m).padStart(2, "0")}`;
  const previous = month === 1 ? label(year - 1, 12) : label(year, month - 1);
  const quarter = `${year}-Q${Math.ceil(month / 3)}`;
  return [
    { value: label(year, month), text: `本月（${label(year, month)}）` },
    { value: quarter, text: `本季度（${quarter}）` },
    { value: previous, text: `上月（${previous}）` },
  ];
}

// A period's bound as the bank's calendar day; the API's `until` is the first instant after it.
function businessDay(iso, { exclusive = false } = {}) {
  const instant = new Date(new Date(iso).getTime() - (exclusive ? 1 : 0));
  return new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" }).format(instant);
}

const rankText = (row, rows, unit) => (row ? `第 ${row.rank} 名 / 共 ${rows.length} ${unit}` : "未上榜");

function quotaTable(row) {
  if (!row?.quota) return h("p", { class: "empty", testid: "no-quota" }, "本期没有为您设定任务。");
  const shown = TARGETS.filter((t) => row.quota[t.target] > 0);
  const figure = (t, value) => (t.money ? yuan(value) : String(value));
  return h(
    "div",
    { testid: "my-quota" },
    table(shown, [
      { label: "指标", value: (t) => t.label },
      { label: "目标", value: (t) => h("span", { testid: `target-${t.metric}` }, figure(t, row.quota[t.target])) },
      { label: "已完成", value: (t) => h("span", { testid: `actual-${t.metric}` }, figure(t, row[t.metric])) },
      {
        label: "完成率",
        value: (t) =>
          h(
            "span",
            { class: "progress" },
            h("progress", { max: 10000, value: Math.min(row.attainment_bps[t.metric] ?? 0, 10000) }),
            percentFromBps(row.attainment_bps[t.metric]),
          ),
      },
    ]),
    h("p", {}, "综合完成率：", h("strong", { testid: "overall-attainment" }, percentFromBps(row.attainment_bps.overall))),
  );
}

function boardTable(rows, mine) {
  return table(
    rows,
    [
      { label: "名次", value: (r) => String(r.rank) },
      { label: "姓名", value: (r) => r.name },
      { label: "用户名", value: (r) => r.label },
      { label: "推荐客户", value: (r) => String(r.referrals) },
      { label: "进件", value: (r) => String(r.applications) },
      { label: "通过", value: (r) => String(r.approvals) },
      { label: "放款金额", value: (r) => yuan(r.disbursed_fen) },
      { label: "完成率", value: (r) => percentFromBps(r.attainment_bps.overall) },
    ],
    { empty: "本期尚无业绩", rowAttrs: (r) => ({ class: r.owner_id === mine ? "selected" : null, testid: `board-${r.label}` }) },
  );
}

async function drawPerformance(body, period, rankBy, isLatest) {
  const board = (query) => api.get("admin/leaderboard", { period, rank_by: rankBy, ...query });
  const [inBranch, inBank, branches] = await Promise.all([
    staff.branch_id ? board({ level: "staff", branch_id: staff.branch_id }) : null,
    board({ level: "staff", bank_id: staff.bank_id }),
    board({ level: "branch", bank_id: staff.bank_id }),
  ]);
  if (!isLatest()) return; // the member chose another period or ranking meanwhile
  const mine = inBank.rows.find((r) => r.owner_id === staff.id);
  const myBranch = branches.rows.find((r) => r.owner_id === staff.branch_id);
  mount(
    body,
    h("h3", {}, `我的任务（${inBank.period}：${businessDay(inBank.from)} 至 ${businessDay(inBank.until, { exclusive: true })}）`),
    quotaTable(mine),
    h("h3", {}, `我的排名（按${RANK_BY[rankBy]}）`),
    h(
      "div",
      { testid: "my-rank" },
      facts([
        ["网点内", inBranch ? h("span", { testid: "rank-branch" }, rankText(inBranch.rows.find((r) => r.owner_id === staff.id), inBranch.rows, "人")) : "—"],
        ["全行", h("span", { testid: "rank-bank" }, rankText(mine, inBank.rows, "人"))],
        ["本网点在全行", h("span", { testid: "rank-of-branch" }, rankText(myBranch, branches.rows, "个网点"))],
      ]),
    ),
    h("h3", {}, inBranch ? "本网点排行" : "全行排行"),
    h("div", { testid: "leaderboard" }, boardTable((inBranch || inBank).rows, staff.id)),
  );
}

function performanceSection() {
  const body = h("div", {}, h("p", { class: "empty" }, "加载中…"));
  const period = h("select", { name: "period", testid: "period" }, periods().map((p) => h("option", { value: p.value }, p.text)));
  const rankBy = h("select", { name: "rank_by", testid: "rank-by" }, Object.entries(RANK_BY).map(([value, text]) => h("option", { value }, text)));
  let asked = 0;
  const redraw = () => {
    const ask = ++asked;
    drawPerformance(body, period.value, rankBy.value, () => ask === asked).catch((error) => mount(body, errorBox(error)));
  };
  period.addEventListener("change", redraw);
  rankBy.addEventListener("change", redraw);
  redraw();
  return h("section", { class: "card", testid: "performance" }, h("h2", {}, "我的任务与排名"), h("div", { class: "toolbar" }, field("统计期间", period), field("排名依据", rankBy)), body);
}

// ---- secondary marketing -------------------------------------------------------------------------

function followUpSummary(item) {
  const f = item.follow_ups;
  if (!f.count) return h("span", { class: "tag warning" }, "未跟进");
  return h(
    "span",
    { testid: "last-follow-up" },
    `${OUTCOMES[f.last_outcome] || f.last_outcome}（${dateTime(f.last_at)}，共 ${f.count} 次）`,
    f.next_contact_on ? h("br") : null,
    f.next_contact_on ? `下次联系：${f.next_contact_on.slice(0, 10)}` : null,
  );
}

function followUpForm(item, onSaved) {
  const status = h("div");
  const today = new Date().toISOString().slice(0, 10);
  const form = h(
    "form",
    { class: "follow-up", testid: "follow-up-form" },
    field("跟进结果", h("select", { name: "outcome", required: true }, Object.entries(OUTCOMES).map(([value, text]) => h("option", { value }, text)))),
    field("跟进记录（请勿填写身份证号、手机号或卡号）", h("textarea", { name: "note", class: "note", required: true, maxlength: 1000 })),
    field("下次联系日期", h("input", { name: "next_contact_on", type: "date", min: today })),
    h("button", { type: "submit", class: "primary" }, "保存跟进"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const saved = await act(status, () => api.post(`admin/secondary-marketing/applicants/${item.application_id}/follow-ups`, fields(form)));
    if (saved) await onSaved().catch((error) => mount(status, errorBox(error)));
  });
  return form;
}

const CHANNELS = { sms: "短信", wechat: "微信" };

function reinviteForm(item, offers, onSent) {
  const status = h("div");
  if (!offers.length) return h("p", { class: "empty" }, "本行暂无可再次邀约的其他产品");
  const form = h(
    "form",
    { class: "follow-up", testid: "reinvite-form" },
    field("邀约产品", h("select", { name: "product_code", required: true }, offers.map((o) => h("option", { value: o.code }, `${o.name}（${o.code}）`)))),
    field("发送方式", h("select", { name: "channel", required: true }, Object.entries(CHANNELS).map(([value, text]) => h("option", { value }, text)))),
    h("button", { type: "submit", class: "primary" }, "发送再次邀约"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sent = await act(status, () => api.post(`admin/secondary-marketing/applicants/${item.application_id}/reinvitations`, fields(form)));
    if (sent) await onSent().catch((error) => mount(status, errorBox(error)));
  });
  return form;
}

// One applicant: their follow-ups and re-invitations, with the forms to add either (for members
// who may follow up). `done` is the outcome of the action that led here, shown on top.
async function drawDetail(detail, item, refreshList, { done } = {}) {
  const base = `admin/secondary-marketing/applicants/${item.application_id}`;
  const mayAct = api.can(staff, "secondary_marketing.follow_up");
  const [history, invitations, offers] = await Promise.all([
    api.get(`${base}/follow-ups`, { limit: 100 }),
    api.get(`${base}/reinvitations`),
    mayAct ? api.get(`${base}/reinvitation-offers`) : { items: [] },
  ]);
  const redraw = (message) => drawDetail(detail, item, refreshList, { done: message });
  const productNames = Object.fromEntries(offers.items.map((o) => [o.code, o.name]));
  mount(
    detail,
    h("h3", {}, `客户：${item.customer.name}（申请 #${item.application_id}，${item.product_code}）`),
    done ? notice(done) : null,
    h(
      "div",
      { class: "grid" },
      h(
        "div",
        {},
        h("h3", {}, "跟进记录"),
        table(
          history.items,
          [
            { label: "时间", value: (f) => dateTime(f.created_at) },
            { label: "结果", value: (f) => OUTCOMES[f.outcome] || f.outcome },
            { label: "记录", value: (f) => f.note },
            { label: "下次联系", value: (f) => (f.next_contact_on ? f.next_contact_on.slice(0, 10) : null) },
          ],
          { empty: "尚无跟进记录", rowAttrs: (f) => ({ testid: `follow-up-${f.id}` }) },
        ),
        mayAct ? followUpForm(item, () => refreshList(item.application_id)) : null,
      ),
      h(
        "div",
        { testid: "reinvitations" },
        h("h3", {}, "再次邀约（推荐本行其他产品，不影响授信审批）"),
        table(
          invitations.items,
          [
            { label: "时间", value: (r) => dateTime(r.created_at) },
            { label: "产品", value: (r) => (productNames[r.product_code] ? `${productNames[r.product_code]}（${r.product_code}）` : r.product_code) },
            { label: "方式", value: (r) => CHANNELS[r.channel] || r.channel },
          ],
          { empty: "尚未再次邀约", rowAttrs: (r) => ({ testid: `reinvitation-${r.product_code}` }) },
        ),
        mayAct ? reinviteForm(item, offers.items, () => redraw("再次邀约已发送")) : null,
      ),
    ),
  );
}

function secondarySection() {
  const list = h("div", {}, h("p", { class: "empty" }, "加载中…"));
  const detail = h("div", { testid: "follow-up-detail" });
  const more = h("div");
  const bankWide = api.can(staff, "secondary_marketing.bank_wide");
  const branch = h("select", { name: "branch_id", testid: "branch-filter" }, h("option", { value: "" }, "全行"));
  let items = [];
  let selected = null;

  const columns = [
    { label: "申请号", value: (i) => `#${i.application_id}` },
    { label: "客户", value: (i) => i.customer.name },
    { label: "手机", value: (i) => i.customer.phone },
    { label: "产品", value: (i) => i.product_code },
    { label: "拒绝原因", value: (i) => (i.reasons.length ? h("ul", { class: "reasons" }, i.reasons.map((r) => h("li", {}, r))) : null) },
    { label: "拒绝时间", value: (i) => dateTime(i.declined_at) },
    { label: "最近跟进", value: followUpSummary },
    { label: "", value: (i) => h("button", { type: "button", class: "link", testid: "open-follow-up", on: { click: () => choose(i) } }, "跟进") },
  ];

  function draw() {
    mount(
      list,
      table(items, columns, {
        empty: "暂无被拒绝的申请客户",
        rowAttrs: (i) => ({ testid: `declined-${i.application_id}`, class: i.application_id === selected ? "selected" : null }),
      }),
    );
  }

  async function choose(item) {
    selected = item.application_id;
    draw();
    await drawDetail(detail, item, reload).catch((error) => mount(detail, errorBox(error)));
  }

  // One page after another (oldest first, as the API pages them) until the member stops asking;
  // `atLeast` reloads as many rows as were on screen.
  async function load(after, atLeast = 0) {
    let fetched = after ? items : [];
    let next = after;
    do {
      const body = await api.get("admin/secondary-marketing/applicants", { limit: PAGE, after: next, branch_id: branch.value });
      fetched = [...fetched, ...body.items];
      next = body.next_after;
    } while (next && fetched.length < atLeast);
    items = fetched;
    draw();
    mount(more, next ? h("button", { type: "button", testid: "more-declined", on: { click: () => load(next).catch((e) => mount(more, errorBox(e))) } }, "加载更多") : null);
  }

  // After a follow-up: the list again (its summary changed), and the applicant's history.
  async function reload(applicationId) {
    await load(0, items.length);
    const item = items.find((i) => i.application_id === applicationId);
    if (item) await drawDetail(detail, item, reload, { done: "跟进已记录" });
  }

  branch.addEventListener("change", () => {
    selected = null;
    detail.replaceChildren();
    load(0).catch((error) => mount(list, errorBox(error)));
  });
  if (bankWide) {
    api
      .get("admin/branches", { limit: 100, bank_id: staff.bank_id })
      .then((body) => body.items.forEach((b) => branch.append(h("option", { value: b.id }, b.name))))
      .catch((error) => mount(more, errorBox(error)));
  }
  load(0).catch((error) => mount(list, errorBox(error)));
  return h(
    "section",
    { class: "card", testid: "secondary" },
    h("h2", {}, bankWide ? "二次营销（全行被拒客户）" : "二次营销（本网点被拒客户）"),
    bankWide ? h("div", { class: "toolbar" }, field("网点", branch)) : null,
    list,
    more,
    detail,
  );
}

// ---- the page ------------------------------------------------------------------------------------

const inviteHolder = h("div", {}, section("我的邀请码", h("p", { class: "empty" }, "加载中…")));
mount(
  main,
  h("h1", {}, "我的营销"),
  inviteHolder,
  // Quotas and leaderboards are per bank: association staff have neither.
  staff.bank_id ? performanceSection() : null,
  api.can(staff, "secondary_marketing.read") ? secondarySection() : null,
);
api
  .get("admin/invite-code")
  .then((invite) => mount(inviteHolder, inviteSection(invite)))
  .catch((error) => mount(inviteHolder, section("我的邀请码", errorBox(error))));
