// The one door to the lending API: no page calls wx.request (tests/no-direct-request.test.js).
//
// - Sessions: the access and refresh tokens live in storage; a 401 is answered by one refresh
//   (shared by every call waiting on it) and one retry of the call, then the customer logs in again.
// - Idempotency: every POST carries an Idempotency-Key. A page asks `actionKey` for the key of a
//   user action (the same key until that action succeeds, so a retry after a lost answer cannot
//   apply for a loan or move money twice); this module reuses the key on its own retries.
// - Errors: every refusal becomes an ApiError whose `userMessage` comes from the code table
//   (utils/error-messages.js), never the server's English text.
// - Money: the lending API (products, quotes, applications) counts whole yuan; contracts, loans,
//   drawdowns and repayments count fen. Pages convert only through `money` below.

const config = require('../config.js')
const {messageFor} = require('./error-messages.js')

const PREFIX = '/api/v1'
const STORAGE = {
  access: 'rcb.access_token',
  refresh: 'rcb.refresh_token',
  bankId: 'rcb.bank_id',
  customer: 'rcb.customer',
  device: 'rcb.device_id',
  scene: 'rcb.scene',
}
const TIMEOUT_MS = 15000

class ApiError extends Error {
  constructor({status = 0, code = 'NETWORK_ERROR', message = '', details = null, retryAfter = null} = {}) {
    const userMessage = messageFor(code, status, details)
    super(userMessage)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    this.serverMessage = message
    this.retryAfter = retryAfter
    this.userMessage = userMessage
  }
}

// ---- storage ----------------------------------------------------------------------------------

function stored(name) {
  const value = wx.getStorageSync(STORAGE[name])
  return value === '' || value === undefined ? null : value
}

function store(name, value) {
  if (value === null || value === undefined) wx.removeStorageSync(STORAGE[name])
  else wx.setStorageSync(STORAGE[name], value)
}

function saveSession(answer) {
  store('access', answer.access_token)
  store('refresh', answer.refresh_token)
  if ('bank_id' in answer) store('bankId', answer.bank_id)
  if (answer.customer) store('customer', answer.customer)
  return answer
}

function clearSession() {
  ;['access', 'refresh', 'bankId', 'customer'].forEach((name) => store(name, null))
}

function session() {
  return {loggedIn: Boolean(stored('access')), bankId: stored('bankId'), customer: stored('customer')}
}

function randomHex(length) {
  let out = ''
  while (out.length < length) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0')
  return out.slice(0, length)
}

// The install id the server uses against referral abuse (same device, many accounts).
function deviceId() {
  let id = stored('device')
  if (!id) {
    id = `dev-${randomHex(24)}`
    store('device', id)
  }
  return id
}

// The invite code the mini-program was opened with (the `scene` of a mini-program code, or the
// `scene` query of a plain QR's page path): kept until login binds the customer to the inviter.
function rememberScene(raw) {
  if (!raw) return null
  let scene = String(raw)
  try {
    scene = decodeURIComponent(scene)
  } catch (e) {
    // already decoded
  }
  scene = scene.trim().slice(0, 32)
  if (scene) store('scene', scene)
  return scene || null
}

function scene() {
  return stored('scene')
}

// ---- idempotency keys -------------------------------------------------------------------------

function newIdempotencyKey() {
  return `mp-${Date.now().toString(36)}-${randomHex(20)}`
}

// The key of one user action on a page: the same while the action is retried with the same
// input, a new one once it succeeded (`actionDone`) or the input changed (the server would
// refuse a key reused with other parameters: IDEMPOTENCY_KEY_REUSED).
function actionKey(page, action, input) {
  page._idempotency = page._idempotency || {}
  const fingerprint = JSON.stringify(input === undefined ? null : input)
  const pending = page._idempotency[action]
  if (pending && pending.fingerprint === fingerprint) return pending.key
  const key = newIdempotencyKey()
  page._idempotency[action] = {key, fingerprint}
  return key
}

function actionDone(page, action) {
  if (page._idempotency) delete page._idempotency[action]
}

// ---- transport --------------------------------------------------------------------------------

function url(path, query) {
  const base = (config.apiBaseUrl || '').replace(/\/+$/, '')
  const params = Object.keys(query || {})
    .filter((k) => query[k] !== undefined && query[k] !== null && query[k] !== '')
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k])}`)
  return `${base}${PREFIX}${path}${params.length ? `?${params.join('&')}` : ''}`
}

function wxRequest(options) {
  return new Promise((resolve, reject) => {
    wx.request({...options, timeout: TIMEOUT_MS, success: resolve, fail: reject})
  })
}

function headerValue(headers, name) {
  if (!headers) return null
  const found = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return found ? headers[found] : null
}

function errorFrom(res) {
  const body = res.data && typeof res.data === 'object' ? res.data : {}
  const error = body.error || {}
  const retryAfter = Number(headerValue(res.header, 'retry-after')) || null
  return new ApiError({
    status: res.statusCode,
    code: error.code || `HTTP_${res.statusCode}`,
    message: error.message || '',
    details: error.details === undefined ? null : error.details,
    retryAfter,
  })
}

let refreshing = null

// One refresh for everyone: calls failing with 401 at the same time wait on the same exchange
// (a refresh token is spent on use, so a second exchange would end the whole sign-in).
function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const refreshToken = stored('refresh')
      if (!refreshToken) throw new ApiError({status: 401, code: 'LOGIN_REQUIRED'})
      let res
      try {
        res = await wxRequest({
          url: url('/channels/refresh'),
          method: 'POST',
          data: {refresh_token: refreshToken},
          header: {'content-type': 'application/json', 'Idempotency-Key': newIdempotencyKey()},
        })
      } catch (failure) {
        throw new ApiError({code: 'NETWORK_ERROR', message: failure && failure.errMsg})
      }
      if (res.statusCode !== 200) {
        clearSession()
        throw new ApiError({status: 401, code: 'LOGIN_REQUIRED'})
      }
      saveSession(res.data)
    })().finally(() => {
      refreshing = null
    })
  }
  return refreshing
}

/**
 * One API call. `retryable` says a lost answer may be asked again: GETs, and POSTs that the
 * server runs once per Idempotency-Key.
 */
async function call(method, path, {body, query, auth = true, key, retryable = method === 'GET', headers = {}} = {}) {
  const idempotencyKey = method === 'POST' ? key || newIdempotencyKey() : null
  let refreshed = false
  let networkRetried = false
  for (;;) {
    const header = {...headers}
    if (method !== 'GET') header['content-type'] = 'application/json'
    if (idempotencyKey) header['Idempotency-Key'] = idempotencyKey
    if (auth) {
      const token = stored('access')
      if (!token) throw new ApiError({status: 401, code: 'LOGIN_REQUIRED'})
      header.Authorization = `Bearer ${token}`
    }
    let res
    try {
      res = await wxRequest({url: url(path, query), method, data: method === 'GET' ? undefined : body || {}, header})
    } catch (failure) {
      if (retryable && !networkRetried) {
        networkRetried = true
        continue
      }
      throw new ApiError({code: 'NETWORK_ERROR', message: failure && failure.errMsg})
    }
    if (res.statusCode === 401 && auth && !refreshed) {
      refreshed = true
      await refreshSession()
      continue
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res.data === '' ? null : res.data
    throw errorFrom(res)
  }
}

function get(path, query) {
  return call('GET', path, {query})
}

function post(path, body, options = {}) {
  return call('POST', path, {body, ...options})
}

// Images behind the customer's session (QR, poster): downloaded with the bearer token, since an
// <image src> cannot send one. Resolves to a temporary file path.
async function downloadImage(path, query) {
  let refreshed = false
  for (;;) {
    const token = stored('access')
    if (!token) throw new ApiError({status: 401, code: 'LOGIN_REQUIRED'})
    let res
    try {
      res = await new Promise((resolve, reject) => {
        wx.downloadFile({url: url(path, query), header: {Authorization: `Bearer ${token}`}, success: resolve, fail: reject})
      })
    } catch (failure) {
      throw new ApiError({code: 'NETWORK_ERROR', message: failure && failure.errMsg})
    }
    if (res.statusCode === 401 && !refreshed) {
      refreshed = true
      await refreshSession()
      continue
    }
    if (res.statusCode !== 200) throw new ApiError({status: res.statusCode, code: `HTTP_${res.statusCode}`})
    return res.tempFilePath
  }
}

function compact(object) {
  const out = {}
  Object.keys(object).forEach((k) => {
    if (object[k] !== undefined && object[k] !== null && object[k] !== '') out[k] = object[k]
  })
  return out
}

// ---- money: whole yuan (lending API) and fen (contracts, loans) -------------------------------

const money = {
  // "1234.5" or "1,234.50" typed by the customer -> 123450 fen, without floating point.
  fenFromYuanInput(text) {
    const clean = String(text === undefined || text === null ? '' : text).replace(/[,，\s]/g, '')
    const match = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(clean)
    if (!match) return null
    return Number(match[1]) * 100 + Number((match[2] || '').padEnd(2, '0'))
  },
  // "50000" typed for an application -> 50000 (whole yuan; the lending API takes no fen).
  yuanFromInput(text) {
    const clean = String(text === undefined || text === null ? '' : text).replace(/[,，\s]/g, '')
    return /^\d{1,9}$/.test(clean) ? Number(clean) : null
  },
  fenText(fen) {
    if (typeof fen !== 'number' || !Number.isFinite(fen)) return '--'
    const sign = fen < 0 ? '-' : ''
    const abs = Math.abs(Math.round(fen))
    return `${sign}${groupThousands(String(Math.floor(abs / 100)))}.${String(abs % 100).padStart(2, '0')}`
  },
  yuanText(yuan) {
    if (typeof yuan !== 'number' || !Number.isFinite(yuan)) return '--'
    return `${groupThousands(String(Math.trunc(yuan)))}.00`
  },
  rateText(bps) {
    if (typeof bps !== 'number') return '--'
    return `${Math.floor(bps / 100)}.${String(bps % 100).padStart(2, '0')}%`
  },
}

function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

// ---- the API ----------------------------------------------------------------------------------

function wxLoginCode() {
  if (config.devWechatUser) return Promise.resolve(`${config.devWechatUser}.${Date.now().toString(36)}${randomHex(4)}`)
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new ApiError({code: 'WECHAT_REFUSED'}))),
      fail: () => reject(new ApiError({code: 'WECHAT_UNAVAILABLE'})),
    })
  })
}

const api = {
  ApiError,
  money,
  session,
  clearSession,
  deviceId,
  rememberScene,
  scene,
  newIdempotencyKey,
  actionKey,
  actionDone,

  // Sessions and identity
  async login({bankId} = {}) {
    const code = await wxLoginCode()
    const answer = await call('POST', '/channels/wechat/login', {
      auth: false,
      body: compact({code, bank_id: bankId || stored('bankId'), scene: scene(), device_id: deviceId()}),
    })
    saveSession(answer)
    if (answer.referral && answer.referral.bound) store('scene', null) // bound once: not sent again
    return answer
  },
  bindPhone(code) {
    return post('/channels/wechat/phone', {code})
  },
  async logout() {
    const refreshToken = stored('refresh')
    clearSession()
    if (refreshToken) await call('POST', '/channels/logout', {auth: false, body: {refresh_token: refreshToken}})
  },
  me() {
    return get('/me')
  },
  banks({city, county} = {}) {
    return call('GET', '/banks', {auth: false, query: {city, county}})
  },
  async chooseBank(bankId) {
    return saveSession(await post('/me/bank', {bank_id: bankId}))
  },
  async verifyRealName({name, idNumber, phone}) {
    return saveSession(await post('/me/real-name', {name, id_number: idNumber, phone}))
  },
  grantConsent(purpose, {key} = {}) {
    return post('/me/consents', {purpose}, {key, retryable: true})
  },
  consents() {
    return get('/me/consents')
  },

  // Products, quotes, applications (whole yuan)
  products() {
    return get('/products')
  },
  product(code) {
    return get(`/products/${encodeURIComponent(code)}`)
  },
  quote(code, {amountYuan, termMonths, repaymentMethod}) {
    return post(`/products/${encodeURIComponent(code)}/quote`, {
      amount_yuan: amountYuan,
      term_months: termMonths,
      repayment_method: repaymentMethod,
    })
  },
  apply({productCode, amountYuan, termMonths, repaymentMethod}, {key} = {}) {
    return post(
      '/applications',
      {product_code: productCode, amount_yuan: amountYuan, term_months: termMonths, repayment_method: repaymentMethod},
      {key, retryable: true},
    )
  },
  applications() {
    return get('/applications')
  },
  application(id) {
    return get(`/applications/${id}`)
  },

  // Contracts and signing
  requestContract(applicationId, parties = [], {key} = {}) {
    return post(`/applications/${applicationId}/contract`, {parties}, {key, retryable: true})
  },
  contracts() {
    return get('/contracts')
  },
  contract(id) {
    return get(`/contracts/${id}`)
  },
  sendSigningCode(contractId) {
    return post(`/contracts/${contractId}/signing-code`, {})
  },
  signWithSmsCode(contractId, code) {
    return post(`/contracts/${contractId}/sign`, {method: 'sms_code', code})
  },

  // Drawdowns, loans, repayments (fen)
  previewDrawdown(contractId, amountFen) {
    return post(`/contracts/${contractId}/drawdowns/preview`, {amount_fen: amountFen})
  },
  drawdown(contractId, amountFen, {key} = {}) {
    return post(`/contracts/${contractId}/drawdowns`, {amount_fen: amountFen}, {key, retryable: true})
  },
  loans() {
    return get('/loans')
  },
  loan(id) {
    return get(`/loans/${id}`)
  },
  payoffQuote(loanId) {
    return get(`/loans/${loanId}/payoff-quote`)
  },
  repay(loanId, amountFen, {key} = {}) {
    return post(`/loans/${loanId}/repayments`, {amount_fen: amountFen}, {key, retryable: true})
  },

  // Invite codes and referrals
  inviteCode() {
    return call('GET', '/invite-code', {headers: {'x-device-id': deviceId()}})
  },
  inviteImage(name, query) {
    return downloadImage(`/invite-code/${name}`, query)
  },
  recordScan(code, channel) {
    return call('POST', `/invite-codes/${encodeURIComponent(code)}/scans`, {auth: false, body: {channel, device_id: deviceId()}})
  },
  referrals() {
    return get('/referrals')
  },

  // Campaigns, red packets and rewards
  campaigns() {
    return get('/campaigns')
  },
  // Not retried on a lost answer: the server bounds grabs by the per-person limit (a repeat is
  // ALREADY_GRABBED), and a win whose answer was lost shows in rewards().
  grabRedPacket(campaignId) {
    return post(`/campaigns/${campaignId}/red-packets/grab`, {}, {headers: {'x-device-id': deviceId()}})
  },
  rewards() {
    return get('/me/rewards')
  },
}

module.exports = api
