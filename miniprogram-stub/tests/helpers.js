const path = require('path')

const ROOT = path.resolve(__dirname, '..')
const SESSION = {access: 'rcb.access_token', refresh: 'rcb.refresh_token', bankId: 'rcb.bank_id'}

// Let the fake API answer and the page's awaits run on.
async function settle(rounds = 12) {
  for (let i = 0; i < rounds; i++) await global.simulate.sleep(0)
}

function signedIn({access = 'access-1', refresh = 'refresh-1', bankId = 1} = {}) {
  wx.setStorageSync(SESSION.access, access)
  wx.setStorageSync(SESSION.refresh, refresh)
  wx.setStorageSync(SESSION.bankId, bankId)
}

// Loaded once per test file: jest keeps a page's module, so a second load would not register it.
const loaded = {}

// A page (built with Component, as WeChat allows) rendered, attached and loaded with `query`.
async function openPage(name, query = {}) {
  loaded[name] = loaded[name] || global.simulate.load(path.join(ROOT, 'pages', name, name), {rootPath: ROOT})
  const page = global.simulate.render(loaded[name])
  page.attach(document.createElement('parent-wrapper'))
  if (page.instance.onLoad) await page.instance.onLoad(query)
  await settle()
  return page
}

function text(page, selector) {
  const found = page.querySelector(selector)
  return found ? found.dom.textContent.trim() : null
}

async function tap(page, selector) {
  const found = page.querySelector(selector)
  if (!found) throw new Error(`nothing matches ${selector}`)
  found.dispatchEvent('tap')
  await settle()
}

async function type(page, selector, value) {
  const found = page.querySelector(selector)
  if (!found) throw new Error(`nothing matches ${selector}`)
  found.dispatchEvent('input', {detail: {value}})
  await settle()
}

module.exports = {ROOT, SESSION, settle, signedIn, openPage, text, tap, type}
