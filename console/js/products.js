// The product staff's page: the catalogue with each product's versions, a definition shown as
// readable tables (admission rules, scorecard, limit model, pricing, bounds), an editor for a new
// version in the definition's file format (validate, propose; a second product manager approves
// here too), and a champion/challenger simulation over an uploaded applicant CSV.
// The page decides nothing: validation, maker-checker and the simulation are the API's.
// A product can be opened by link: products.html#<CODE>.

import * as api from "./api.js";
import { h, mount, table, facts, section, field, errorBox, notice, act } from "./dom.js";
import { yuan, percentFromBps, dateTime, CHANNELS, DATA_SOURCES as SOURCES, REPAYMENT_METHODS as METHODS } from "./format.js";
import { start } from "./shell.js";

const { staff, main } = await start("products.html");

const TARGETS = { individual: "个人", sole_proprietor: "个体工商户", small_firm: "小微企业" };
const COLLATERAL = { none: "无（信用）", deposit_pledge: "存单质押", property_mortgage: "房产抵押" };
const SIGNATORIES = { guarantor: "担保人", co_borrower: "共同借款人" };
const BAND_OUTCOMES = { approve: "批准", refer: "转人工", reject: "拒绝" };
const ON_FAIL = { reject: "拒绝", refer: "转人工" };
const OUTCOMES = { approved: "自动批准", manual_review: "人工审查", rejected: "拒绝" };
const VERSION_STATUS = { published: "已发布", proposed: "待复核", retired: "已停用", rejected: "已驳回" };
const OVERRIDABLE = { amount_max: "最高额度（元）", rate_floor_bps: "利率下限（bp）", spread_adjust_bps: "加点调整（bp）", restrict_list_cap: "限制级名单额度上限（元）" };
const LPR_TERMS = { "1y": "1年期 LPR", "5y": "5年期以上 LPR" };

const names = (values, dictionary) => (values || []).map((v) => dictionary[v] || v).join("、") || "—";
const yuanWhole = (value) => (value === undefined || value === null ? "—" : yuan(value * 100));
const tag = (text, kind) => h("span", { class: `tag ${kind || ""}` }, text);
const percent = (share) => (share === null || share === undefined ? "—" : `${(share * 100).toFixed(1)}%`);
const code = (text) => h("code", {}, text);

const page = {
  products: [],
  code: location.hash.slice(1) || null,
  versions: null,
  shown: null, // the version whose definition is on screen: {version, definition, text, ...}
  flash: null, // {where, text}: what the last action did, shown once after the product is redrawn
};

// The outcome of an action that redraws the product, shown in the redrawn card.
function flashed(where) {
  const box = h("div", { testid: `${where}-status` });
  if (page.flash?.where === where) {
    mount(box, notice(page.flash.text));
    page.flash = null;
  }
  return box;
}

const catalogueBox = h("div", { testid: "products" });
const productBox = h("div", { testid: "product" });
mount(main, h("h1", {}, "产品管理"), section("产品目录", catalogueBox), productBox);

async function loadCatalogue() {
  page.products = (await api.get("admin/products")).items;
  mount(
    catalogueBox,
    table(
      page.products,
      [
        { label: "产品代码", value: (p) => p.code },
        { label: "名称", value: (p) => p.name },
        { label: "归属", value: (p) => (p.owner === "association" ? "省联社（全省通用）" : `${p.owner_name || ""}（${p.owner}）`) },
        { label: "当前版本", value: (p) => (p.published_version ? `v${p.published_version}` : "未发布") },
        { label: "渠道", value: (p) => names(p.channels, CHANNELS) },
        { label: "待复核", value: (p) => (p.pending ? tag(`v${p.pending.version} 待复核`, "warning") : "") },
      ],
      {
        empty: "没有您可管理的产品",
        rowAttrs: (p) => ({
          class: `clickable${p.code === page.code ? " selected" : ""}`,
          testid: `product-${p.code}`,
          on: { click: () => choose(p.code) },
        }),
      },
    ),
  );
}

async function choose(productCode, version) {
  page.code = productCode;
  history.replaceState(null, "", `#${productCode}`);
  for (const row of catalogueBox.querySelectorAll("tr[data-testid]")) row.classList.toggle("selected", row.dataset.testid === `product-${productCode}`);
  try {
    page.versions = await api.get(`admin/products/${productCode}/versions`);
    const listing = page.products.find((p) => p.code === productCode);
    const chosen = version || page.versions.published_version || listing?.pending?.version || page.versions.versions.at(-1)?.version;
    page.shown = await api.get(`admin/products/${productCode}/versions/${chosen}`);
    drawProduct();
  } catch (error) {
    mount(productBox, errorBox(error));
  }
}

function drawProduct() {
  const listing = page.products.find((p) => p.code === page.code);
  mount(
    productBox,
    h(
      "div",
      { class: "split" },
      h("div", {}, versionsCard(listing), definitionCard(page.shown)),
      h("div", {}, editorCard()),
    ),
    simulationCard(),
  );
}

// Versions, and the proposal waiting for a second product manager.
function versionsCard(listing) {
  const status = flashed("versions");
  const pending = listing?.pending;
  let waiting = null;
  if (pending) {
    const mine = pending.proposed_by_id === staff.id;
    const decide = (verb, done) => () =>
      act(status, async () => {
        await api.post(`admin/change-requests/${pending.change_request_id}/${verb}`, { note: verb === "approve" ? "复核同意" : "复核驳回" });
        page.flash = { where: "versions", text: done };
        await loadCatalogue();
        await choose(page.code);
      });
    waiting = h(
      "div",
      { class: "notice", testid: "pending" },
      `v${pending.version} 等待第二位产品经理复核${pending.note ? `：${pending.note}` : ""}。`,
      mine
        ? h("span", {}, "（由您提出，需另一位产品经理复核）")
        : h(
            "span",
            { class: "toolbar" },
            h("button", { class: "primary", testid: "approve-version", on: { click: decide("approve", "已批准并发布") } }, "批准发布"),
            h("button", { class: "danger", testid: "reject-version", on: { click: decide("reject", "已驳回") } }, "驳回"),
          ),
    );
  }
  return section(
    `${page.versions.code} 的版本`,
    waiting,
    status,
    h(
      "div",
      { testid: "versions" },
      table(
        page.versions.versions,
        [
          { label: "版本", value: (v) => `v${v.version}` },
          { label: "状态", value: (v) => tag(VERSION_STATUS[v.status] || v.status, v.status === "published" ? "approved" : v.status === "proposed" ? "warning" : "") },
          { label: "说明", value: (v) => v.note || "—" },
          { label: "提出时间", value: (v) => dateTime(v.created_at) },
          { label: "发布时间", value: (v) => dateTime(v.published_at) },
        ],
        {
          rowAttrs: (v) => ({
            class: `clickable${v.version === page.shown.version ? " selected" : ""}`,
            testid: `version-${v.version}`,
            on: { click: () => choose(page.code, v.version) },
          }),
        },
      ),
    ),
  );
}

// A definition as a product manager reads it: tables, not TOML.
function definitionCard(shown) {
  const d = shown.definition;
  const policy = d.policy || {};
  const pricing = d.pricing || {};
  const limit = d.limit || {};
  const bands = d.score_bands || [];
  return h(
    "section",
    { class: "card", testid: "definition" },
    h("h2", {}, `${d.name || d.code} · v${shown.version}（${VERSION_STATUS[shown.status] || shown.status}）`),
    facts([
      ["产品代码", d.code],
      ["英文名", d.name_en],
      ["产品族", d.family],
      ["归属", d.owner === "association" ? "省联社" : d.owner],
      ["渠道", names(d.channels, CHANNELS)],
      ["客群", names(d.target_customers, TARGETS)],
      ["数据源", names(d.data_sources, SOURCES)],
      ["担保方式", COLLATERAL[d.collateral] || d.collateral],
      ["签署方", names(d.signatories, SIGNATORIES)],
      ["还款方式", names(d.repayment_methods, METHODS)],
      ["金额", d.amount_yuan ? `${yuanWhole(d.amount_yuan.min)} – ${yuanWhole(d.amount_yuan.max)}` : "—"],
      ["期限", d.term_months ? `${d.term_months.min} – ${d.term_months.max} 个月` : "—"],
      ["冷静期", `${policy.cooling_off_days ?? "—"} 天`],
      ["同时在途申请", policy.max_live_applications],
      ["限制级名单额度上限", yuanWhole(policy.restrict_list_cap_yuan)],
    ]),
    h("h3", {}, "准入规则"),
    h(
      "div",
      { testid: "admission" },
      table(d.admission || [], [
        { label: "规则", value: (r) => r.code },
        { label: "条件", value: (r) => code(r.rule) },
        { label: "不满足时", value: (r) => tag(ON_FAIL[r.on_fail || "reject"], (r.on_fail || "reject") === "reject" ? "rejected" : "warning") },
        { label: "告知客户的原因", value: (r) => r.reason },
      ]),
    ),
    h("h3", {}, `评分卡（基础分 ${d.scorecard?.base ?? "—"}）`),
    h(
      "div",
      { testid: "scorecard" },
      table(d.scorecard?.attributes || [], [
        { label: "变量", value: (a) => a.name },
        { label: "取值", value: (a) => code(a.value) },
        { label: "分箱 → 得分", value: (a) => h("ul", { class: "steps" }, (a.bins || []).map((b) => h("li", {}, code(b.when), ` → ${b.points} 分`))) },
      ]),
    ),
    h("h3", {}, "评分档位、额度系数与定价加点"),
    h(
      "div",
      { testid: "bands" },
      table(bands, [
        { label: "档位", value: (b) => b.band },
        { label: "最低分", value: (b) => b.min_score },
        { label: "结果", value: (b) => BAND_OUTCOMES[b.outcome || "approve"] },
        { label: "额度系数", value: (b) => limit.band_factors?.[b.band] ?? "—" },
        { label: "LPR 加点", value: (b) => (pricing.spread_bps?.[b.band] === undefined ? "—" : `${pricing.spread_bps[b.band]} bp`) },
        { label: "原因", value: (b) => b.reason || "—" },
      ]),
    ),
    h("h3", {}, "额度模型"),
    h("p", { class: "hint" }, `取有数据的各基数中最小者 × 档位系数，按 ${limit.round_down_to_yuan ?? "—"} 元向下取整，并在产品金额范围内。`),
    table(limit.bases || [], [
      { label: "基数", value: (b) => b.name },
      { label: "字段", value: (b) => code(b.field) },
      { label: "倍数", value: (b) => `× ${b.times}` },
    ]),
    h("h3", {}, "定价"),
    h(
      "div",
      { testid: "pricing" },
      facts([
        ["基准", LPR_TERMS[pricing.lpr_term] || pricing.lpr_term],
        ["利率下限", percentFromBps(pricing.floor_bps)],
        ["利率上限", percentFromBps(pricing.cap_bps)],
      ]),
    ),
    h("h3", {}, "法人行可调参数范围"),
    table(Object.entries(d.overridable || {}), [
      { label: "参数", value: ([name]) => OVERRIDABLE[name] || name },
      { label: "最小", value: ([, b]) => b.min },
      { label: "最大", value: ([, b]) => b.max },
    ], { empty: "法人行不可调整" }),
  );
}

function problemList(error) {
  const problems = error.details?.problems;
  if (!Array.isArray(problems) || !problems.length) return errorBox(error);
  const what = error.code === "APPLICANTS_REFUSED" ? "申请人文件有误" : "产品定义有误";
  return h(
    "div",
    { class: "error", role: "alert", testid: "problems" },
    `${what}（${error.code}），共 ${error.details.count || problems.length} 处：`,
    h("ul", { class: "steps" }, problems.map((p) => h("li", {}, typeof p === "string" ? p : `第 ${p.line} 行：${p.problem}`))),
  );
}

// Run an action whose refusal may list problems (a definition's, a CSV's lines).
async function attempt(status, action) {
  const button = document.activeElement instanceof HTMLButtonElement ? document.activeElement : null;
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    mount(status, problemList(error));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

let editorText = null;

function editorCard() {
  const text = h("textarea", { name: "text", testid: "definition-text", rows: 24, spellcheck: "false", class: "definition-text" });
  text.value = page.shown.text;
  editorText = text;
  const note = h("input", { name: "note", testid: "version-note", maxlength: 500, placeholder: "例如：A 档加点下调 10bp" });
  const status = flashed("editor");
  const validate = () =>
    attempt(status, async () => {
      const result = await api.post("admin/products/validate", { text: text.value });
      mount(status, notice(`校验通过：${result.code}，需客户授权 ${result.consents.length} 项`));
    });
  const propose = () =>
    attempt(status, async () => {
      const result = await api.post("admin/products/versions", { text: text.value, note: note.value });
      page.flash = { where: "editor", text: `已提交 v${result.version.version}，等待第二位产品经理复核后发布。` };
      await loadCatalogue();
      await choose(result.change_request.payload.code, result.version.version);
    });
  return section(
    "编辑新版本",
    h("p", { class: "hint" }, `以 v${page.shown.version} 的定义为底稿（TOML 格式，与产品目录文件相同）。提交后须由另一位产品经理复核才会发布。`),
    field("产品定义", text),
    field("变更说明", note),
    h(
      "div",
      { class: "toolbar" },
      h("button", { testid: "validate", on: { click: validate } }, "校验"),
      h("button", { class: "primary", testid: "propose", on: { click: propose } }, "提交新版本"),
    ),
    status,
  );
}

function simulationCard() {
  const file = h("input", { type: "file", accept: ".csv,text/csv", name: "csv", testid: "csv-file" });
  const others = page.versions.versions.filter((v) => v.version !== page.versions.published_version && v.status !== "rejected");
  const challenger = h(
    "select",
    { name: "challenger", testid: "challenger" },
    h("option", { value: "" }, "无（仅运行当前版本）"),
    others.map((v) => h("option", { value: `v${v.version}` }, `v${v.version}（${VERSION_STATUS[v.status] || v.status}）`)),
    h("option", { value: "editor" }, "编辑器中的定义（不保存）"),
  );
  const status = h("div");
  const result = h("div", { testid: "simulation-result" });
  const run = () =>
    attempt(status, async () => {
      status.replaceChildren();
      const chosen = file.files[0];
      if (!chosen) {
        mount(status, h("p", { class: "error", role: "alert", testid: "error" }, "请先选择申请人 CSV 文件"));
        return;
      }
      const body = { csv: await chosen.text() };
      if (challenger.value === "editor") body.challenger_text = editorText.value;
      else if (challenger.value) body.challenger_version = Number(challenger.value.slice(1));
      mount(result, h("p", { class: "hint" }, "正在向各数据源查询申请人数据并模拟……"));
      try {
        drawSimulation(result, await api.post(`admin/products/${page.code}/simulations`, body));
      } catch (error) {
        result.replaceChildren();
        throw error;
      }
    });
  return section(
    "冠军 / 挑战者模拟",
    h("p", { class: "hint" }, "冠军为当前发布版本。CSV 列：label,id_number,amount_yuan,term_months,repayment_method,is_bank_customer（最多 2000 行）。"),
    field("申请人 CSV", file),
    field("挑战者", challenger),
    h("div", { class: "toolbar" }, h("button", { class: "primary", testid: "simulate", on: { click: run } }, "运行模拟")),
    status,
    result,
  );
}

const quartiles = (values, render) => values.map(render).join(" / ");

function decisionText(d) {
  const parts = [OUTCOMES[d.outcome] || d.outcome, d.band ? `${d.band} 档` : null];
  if (d.outcome !== "rejected") parts.push(yuan(d.limit_fen), percentFromBps(d.rate_bps));
  return parts.filter(Boolean).join(" · ");
}

function drawSimulation(target, result) {
  const sideName = (s) => (s.side === "champion" ? `冠军 v${s.version}` : s.version ? `挑战者 v${s.version}` : "挑战者（编辑器中的定义）");
  mount(
    target,
    h("p", { class: "hint" }, `${result.applicants} 位申请人；本行数据取自 ${result.data_of_bank}。`),
    h(
      "div",
      { testid: "simulation-sides" },
      table(
        result.sides,
        [
          { label: "方案", value: sideName },
          { label: "自动批准", value: (s) => h("span", { testid: `approval-rate-${s.side}` }, `${percent(s.approval_rate)}（${s.approved}）`) },
          { label: "人工审查", value: (s) => `${percent(s.manual_review / s.applicants)}（${s.manual_review}）` },
          { label: "拒绝", value: (s) => `${percent(s.rejected / s.applicants)}（${s.rejected}）` },
          { label: "额度 P25 / P50 / P75", value: (s) => quartiles(s.limit_quartiles_fen, yuan) },
          { label: "利率 P25 / P50 / P75", value: (s) => quartiles(s.rate_quartiles_bps, percentFromBps) },
        ],
        { rowAttrs: (s) => ({ testid: `side-${s.side}` }) },
      ),
    ),
    result.sides.length > 1
      ? [
          h(
            "h3",
            { testid: "changes-total" },
            `结果、额度或利率变化的申请人：${result.changes_total} 人` + (result.changes.length < result.changes_total ? `（显示前 ${result.changes.length} 人）` : ""),
          ),
          h(
            "div",
            { testid: "changes" },
            table(
              result.changes,
              [
                { label: "申请人", value: (c) => c.label },
                { label: "身份证号", value: (c) => c.id_number },
                { label: "冠军", value: (c) => decisionText(c.champion) },
                { label: "挑战者", value: (c) => decisionText(c.challenger) },
              ],
              { empty: "两个方案对所有申请人的结果相同" },
            ),
          ),
        ]
      : null,
  );
}

try {
  await loadCatalogue();
  if (page.code && page.products.some((p) => p.code === page.code)) await choose(page.code);
  else mount(productBox, h("p", { class: "empty" }, "点击产品查看版本、定义并发起模拟。"));
} catch (error) {
  mount(catalogueBox, errorBox(error));
}
