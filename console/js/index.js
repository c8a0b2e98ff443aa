// Sign in, then the pages this member may use.
import * as api from "./api.js";
import { h, mount, field, fields, errorBox } from "./dom.js";
import { allowedPages } from "./shell.js";

const main = document.getElementById("main");

function signInForm() {
  const status = h("div");
  const form = h(
    "form",
    { class: "card narrow", testid: "sign-in" },
    h("h1", {}, "员工登录"),
    field("用户名", h("input", { name: "username", autocomplete: "username", required: true })),
    field("密码", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", class: "primary" }, "登录"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { username, password } = fields(form);
    try {
      await api.signIn(username, password);
      const next = new URLSearchParams(location.search).get("next");
      // Only a page of the console itself: the next= parameter must not send anyone elsewhere.
      location.assign(next && /^[a-z]+\.html$/.test(next) ? next : "index.html");
    } catch (error) {
      mount(status, errorBox(error));
    }
  });
  return form;
}

async function home() {
  let staff;
  try {
    staff = await api.me();
  } catch (error) {
    if (error.status === 401) return mount(main, signInForm());
    return mount(main, errorBox(error));
  }
  const pages = allowedPages(staff);
  mount(
    document.getElementById("shell"),
    h("a", { class: "brand", href: "index.html" }, "农商行线上贷 · 员工工作台"),
    h("span", { class: "who", testid: "who" }, `${staff.name}（${staff.username}）`),
  );
  mount(
    main,
    h("h1", {}, "工作台"),
    h(
      "ul",
      { class: "tiles", testid: "pages" },
      pages.map((p) => h("li", {}, h("a", { href: p.href }, p.title))),
    ),
    h("button", { class: "link", testid: "sign-out", on: { click: async () => { await api.signOut(); location.reload(); } } }, "退出登录"),
  );
}

if (api.signedIn()) home();
else mount(main, signInForm());
