// The only module that talks to the API. The console is one more client of the staff API: it
// holds the member's tokens in sessionStorage (gone when the tab closes), sends the access token
// as a bearer header, refreshes it once on a 401 (concurrent 401s share one refresh), and puts
// an Idempotency-Key on every write so that a retried click can never act twice.

const TOKENS = "console.tokens";
const ME = "console.me";

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "HTTP_" + status;
    this.details = error?.details ?? null;
  }
}

function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS)) || null;
  } catch {
    return null;
  }
}

export function signedIn() {
  return tokens() !== null;
}

export function newKey() {
  return crypto.randomUUID();
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, typeof body === "object" ? body.error : null);
  }
  return body;
}

export async function signIn(username, password) {
  const response = await fetch("/api/v1/staff/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await parse(response);
  sessionStorage.setItem(TOKENS, JSON.stringify({ access: body.access_token, refresh: body.refresh_token }));
  sessionStorage.removeItem(ME);
  return body.staff;
}

export async function signOut() {
  const held = tokens();
  sessionStorage.removeItem(TOKENS);
  sessionStorage.removeItem(ME);
  if (held) {
    // Revoke the refresh token on the server; the page leaves whatever the answer.
    await fetch("/api/v1/staff/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${held.access}` },
      body: JSON.stringify({ refresh_token: held.refresh }),
    }).catch(() => {});
  }
}

let refreshing = null;

function refresh() {
  refreshing ??= (async () => {
    const held = tokens();
    try {
      if (!held) throw new ApiError(401, { code: "UNAUTHENTICATED", message: "请先登录" });
      const response = await fetch("/api/v1/staff/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: held.refresh }),
      });
      const body = await parse(response);
      sessionStorage.setItem(TOKENS, JSON.stringify({ access: body.access_token, refresh: body.refresh_token }));
    } catch (error) {
      sessionStorage.removeItem(TOKENS);
      throw error;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function url(path, query) {
  const target = new URL(path.startsWith("/") ? path : `/api/v1/${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target.pathname + target.search;
}

// One request, with one refresh-and-retry on 401. Returns the raw Response for non-JSON reads.
async function send(method, path, { query, body, raw = false, key } = {}) {
  const headers = {};
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") headers["Content-Type"] = "application/json";
  if (typeof body === "string") headers["Content-Type"] = "text/csv";
  if (method !== "GET") headers["Idempotency-Key"] = key || newKey();
  const payload = body === undefined || typeof body === "string" || body instanceof Blob ? body : JSON.stringify(body);
  for (let attempt = 0; ; attempt++) {
    const held = tokens();
    if (held) headers.Authorization = `Bearer ${held.access}`;
    const response = await fetch(url(path, query), { method, headers, body: payload });
    if (response.status === 401 && attempt === 0 && held) {
      await refresh();
      continue;
    }
    if (raw && response.ok) return response;
    return parse(response);
  }
}

export const get = (path, query) => send("GET", path, { query });
export const post = (path, body = {}, options = {}) => send("POST", path, { body, ...options });
export const put = (path, body = {}, options = {}) => send("PUT", path, { body, ...options });
export const patch = (path, body = {}, options = {}) => send("PATCH", path, { body, ...options });
export const del = (path, options = {}) => send("DELETE", path, options);

// An image or file the API serves only with a token: a blob: URL the page can show or save.
export async function blobUrl(path, query) {
  const response = await send("GET", path, { query, raw: true });
  return URL.createObjectURL(await response.blob());
}

export async function download(path, query, filename) {
  const link = document.createElement("a");
  link.href = await blobUrl(path, query);
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// The signed-in member with their permissions, fetched once per tab session.
export async function me() {
  const cached = sessionStorage.getItem(ME);
  if (cached) return JSON.parse(cached);
  const staff = await get("staff/me");
  sessionStorage.setItem(ME, JSON.stringify(staff));
  return staff;
}

export function can(staff, permission) {
  return staff.permissions.includes(permission);
}
