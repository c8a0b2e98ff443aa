// Every console page starts here: it makes sure someone is signed in, draws the header with the
// pages this member's permissions open, and hands the page its <main>. The API checks every
// call again; hiding a link is for the member's convenience, not the protection.

import * as api from "./api.js";
import { h, mount, errorBox } from "./dom.js";

export const PAGES = [
  { href: "campaigns.html", title: "营销活动", any: ["campaigns.manage", "marketing.analytics"] },
  { href: "reviews.html", title: "人工审查", any: ["applications.review"] },
  { href: "risk.html", title: "风险预警", any: ["risk.read", "monitoring.read"] },
  { href: "products.html", title: "产品管理", any: ["products.manage"] },
  { href: "me.html", title: "我的营销", any: ["org.read"] },
];

export function allowedPages(staff) {
  return PAGES.filter((p) => p.any.some((permission) => api.can(staff, permission)));
}

function header(staff, current) {
  const signOut = async () => {
    await api.signOut();
    location.assign("index.html");
  };
  return [
    h("a", { class: "brand", href: "index.html" }, "农商行线上贷 · 员工工作台"),
    h(
      "nav",
      {},
      allowedPages(staff).map((p) => h("a", { href: p.href, class: p.href === current ? "current" : null }, p.title)),
    ),
    h(
      "span",
      { class: "who", testid: "who" },
      `${staff.name}（${staff.username}）`,
      h("button", { class: "link", testid: "sign-out", on: { click: signOut } }, "退出"),
    ),
  ];
}

// start("campaigns.html") → {staff, main}, or never returns (sent to sign in, or told no access).
export async function start(current) {
  const main = document.getElementById("main");
  if (!api.signedIn()) {
    location.replace(`index.html?next=${encodeURIComponent(current)}`);
    return new Promise(() => {});
  }
  let staff;
  try {
    staff = await api.me();
  } catch (error) {
    if (error.status === 401) {
      location.replace(`index.html?next=${encodeURIComponent(current)}`);
      return new Promise(() => {});
    }
    mount(main, errorBox(error));
    throw error;
  }
  mount(document.getElementById("shell"), header(staff, current));
  const page = PAGES.find((p) => p.href === current);
  if (page && !allowedPages(staff).includes(page)) {
    mount(main, h("p", { class: "error", testid: "no-access" }, "您的角色无权使用此页面。"));
    return new Promise(() => {});
  }
  return { staff, main };
}
