// Building the page. Text always goes in through textContent, never as HTML, so nothing a
// customer or a colleague typed can run in a staff member's browser (the CSP forbids inline
// script as well).

// h("button", {class: "primary", on: {click}, testid: "save"}, "保存")
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (name === "class") node.className = value;
    else if (name === "testid") node.dataset.testid = value;
    else if (name === "value") node.value = value;
    // Styles through the CSSOM: the CSP refuses style="" attributes.
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
  return target;
}

// A table of rows; columns are [{label, value: row => text or node}]. rowAttrs(row) adds
// attributes to each <tr> (a test id, a class).
export function table(rows, columns, { empty = "暂无数据", rowAttrs } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {}, columns.map((c) => h("td", {}, c.value(row) ?? "—"))))),
  );
}

// Label/value pairs as a definition list.
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

// A form's fields as an object of strings (empty fields left out).
export function fields(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) if (value !== "") values[name] = value;
  return values;
}

export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

// The API's error shown where the member acted: the server's message and its stable code.
export function errorBox(error) {
  const code = error.code ? ` (${error.code})` : "";
  return h("p", { class: "error", role: "alert", testid: "error" }, (error.message || "操作失败") + code);
}

export function notice(text) {
  return h("p", { class: "notice", role: "status", testid: "notice" }, text);
}

// Run an action from a button or form: the button is disabled while it runs (no double
// submit), and the outcome is shown in `status` (an element near the control).
export async function act(status, action, { done } = {}) {
  const button = document.activeElement instanceof HTMLButtonElement ? document.activeElement : null;
  if (button) button.disabled = true;
  try {
    const result = await action();
    if (done) mount(status, notice(done));
    else status.replaceChildren();
    return result;
  } catch (error) {
    mount(status, errorBox(error));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// A horizontal bar chart in plain elements (the funnel, counts by category): each bar's width is
// its share of the largest value.
export function bars(items, { testid } = {}) {
  const largest = Math.max(1, ...items.map((i) => i.value));
  return h(
    "div",
    { class: "bars", testid },
    items.map((item) =>
      h(
        "div",
        { class: "bar", "data-key": item.key ?? item.label },
        h("span", { class: "bar-label" }, item.label),
        h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: { width: `${(100 * item.value) / largest}%` } })),
        h("span", { class: "bar-value", testid: item.key ? `bar-${item.key}` : undefined }, String(item.value)),
      ),
    ),
  );
}
