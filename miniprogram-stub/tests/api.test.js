// The API module on its own: sessions and refresh, Idempotency-Key, error words, money.
const api = require('../utils/api.js')
const {refusal} = require('./fake-api.js')
const {SESSION, signedIn} = require('./helpers.js')

const ME = '/api/v1/me'
const REFRESH = '/api/v1/channels/refresh'

describe('token refresh', () => {
  test('a 401 is answered by one refresh and one retry with the new token', async () => {
    signedIn({access: 'old-access', refresh: 'old-refresh'})
    fakeApi.on('GET', ME, (req) => (req.headers.Authorization === 'Bearer new-access' ? [200, {id: 7}] : refusal(401, 'TOKEN_EXPIRED')))
    fakeApi.on('POST', REFRESH, [200, {access_token: 'new-access', refresh_token: 'new-refresh', token_type: 'Bearer', expires_in: 900}])

    await expect(api.me()).resolves.toEqual({id: 7})

    const refreshes = fakeApi.callsTo('POST', REFRESH)
    expect(refreshes.map((c) => c.body)).toEqual([{refresh_token: 'old-refresh'}])
    expect(fakeApi.callsTo('GET', ME).map((c) => c.headers.Authorization)).toEqual(['Bearer old-access', 'Bearer new-access'])
    expect(wx.getStorageSync(SESSION.refresh)).toBe('new-refresh')
  })

  test('a call refused again after the refresh is not retried a second time', async () => {
    signedIn()
    fakeApi.on('GET', ME, refusal(401, 'TOKEN_INVALID'))
    fakeApi.on('POST', REFRESH, [200, {access_token: 'a2', refresh_token: 'r2'}])

    const error = await api.me().catch((e) => e)

    expect(error.code).toBe('TOKEN_INVALID')
    expect(fakeApi.callsTo('GET', ME)).toHaveLength(2)
    expect(fakeApi.callsTo('POST', REFRESH)).toHaveLength(1)
  })

  test('calls refused at the same time share one refresh (a refresh token is spent on use)', async () => {
    signedIn({access: 'old-access'})
    const fresh = (req) => req.headers.Authorization === 'Bearer new-access'
    fakeApi.on('GET', ME, (req) => (fresh(req) ? [200, {id: 1}] : refusal(401, 'TOKEN_EXPIRED')))
    fakeApi.on('GET', '/api/v1/loans', (req) => (fresh(req) ? [200, {items: []}] : refusal(401, 'TOKEN_EXPIRED')))
    fakeApi.on('POST', REFRESH, [200, {access_token: 'new-access', refresh_token: 'new-refresh'}])

    await Promise.all([api.me(), api.loans()])

    expect(fakeApi.callsTo('POST', REFRESH)).toHaveLength(1)
  })

  test('a refused refresh ends the session and asks the customer to log in', async () => {
    signedIn()
    fakeApi.on('GET', ME, refusal(401, 'TOKEN_EXPIRED'))
    fakeApi.on('POST', REFRESH, refusal(401, 'REFRESH_REFUSED'))

    const error = await api.me().catch((e) => e)

    expect(error.code).toBe('LOGIN_REQUIRED')
    expect(error.userMessage).toBe('请先登录')
    expect(wx.getStorageSync(SESSION.access)).toBe('')
    expect(wx.getStorageSync(SESSION.refresh)).toBe('')
  })

  test('login keeps the new session and sends the scene and device id', async () => {
    api.rememberScene('AB3K7Q')
    fakeApi.on('POST', '/api/v1/channels/wechat/login', [
      200,
      {access_token: 'a', refresh_token: 'r', bank_id: 2, customer: {id: 9}, referral: {bound: true, referral_id: 1, stage: 'registered'}},
    ])

    await api.login()

    const [call] = fakeApi.callsTo('POST', '/api/v1/channels/wechat/login')
    expect(call.body).toEqual({code: 'test-user.1', scene: 'AB3K7Q', device_id: api.deviceId()})
    expect(call.headers.Authorization).toBeUndefined()
    expect(api.session()).toEqual({loggedIn: true, bankId: 2, customer: {id: 9}})
    expect(api.scene()).toBeNull() // bound: not sent again
  })
})

describe('Idempotency-Key', () => {
  test('every POST carries one', async () => {
    signedIn()
    fakeApi.on('POST', '/api/v1/products/:code/quote', [200, {outcome: 'approved'}])
    fakeApi.on('POST', '/api/v1/contracts/:id/signing-code', [202, {sent_to: '138****0001'}])

    await api.quote('KUAIEDAI', {amountYuan: 50000, termMonths: 12, repaymentMethod: 'bullet'})
    await api.sendSigningCode(3)

    const posts = fakeApi.calls.filter((c) => c.method === 'POST')
    expect(posts).toHaveLength(2)
    posts.forEach((c) => expect(c.headers['Idempotency-Key']).toMatch(/^mp-[a-z0-9]+-[0-9a-f]{20}$/))
    expect(new Set(posts.map((c) => c.headers['Idempotency-Key'])).size).toBe(2)
  })

  test('a lost answer is asked again with the same key', async () => {
    signedIn()
    fakeApi.failNetworkOnce('POST', '/api/v1/applications')
    fakeApi.on('POST', '/api/v1/applications', [201, {id: 41, status: 'approved'}])

    const application = await api.apply({productCode: 'KUAIEDAI', amountYuan: 50000, termMonths: 12, repaymentMethod: 'bullet'}, {key: 'key-1'})

    expect(application.id).toBe(41)
    expect(fakeApi.callsTo('POST', '/api/v1/applications').map((c) => c.headers['Idempotency-Key'])).toEqual(['key-1', 'key-1'])
  })

  test('the retry after a refresh keeps the key', async () => {
    signedIn({access: 'old'})
    fakeApi.on('POST', '/api/v1/loans/:id/repayments', (req) => (req.headers.Authorization === 'Bearer new' ? [201, {id: 1}] : refusal(401, 'TOKEN_EXPIRED')))
    fakeApi.on('POST', REFRESH, [200, {access_token: 'new', refresh_token: 'r2'}])

    await api.repay(5, 10000)

    const keys = fakeApi.callsTo('POST', '/api/v1/loans/5/repayments').map((c) => c.headers['Idempotency-Key'])
    expect(keys).toHaveLength(2)
    expect(keys[0]).toBe(keys[1])
  })

  test('a POST that is not run once per key is not retried after a lost answer', async () => {
    signedIn()
    fakeApi.failNetworkOnce('POST', '/api/v1/contracts/3/sign')
    fakeApi.on('POST', '/api/v1/contracts/:id/sign', [200, {status: 'effective'}])

    const error = await api.signWithSmsCode(3, '123456').catch((e) => e)

    expect(error.code).toBe('NETWORK_ERROR')
    expect(error.userMessage).toBe('网络不给力，请检查网络后重试')
    expect(fakeApi.callsTo('POST', '/api/v1/contracts/3/sign')).toHaveLength(1)
  })

  test('one user action keeps its key until it succeeds or its input changes', () => {
    const page = {}
    const first = api.actionKey(page, 'drawdown', 100000)
    expect(api.actionKey(page, 'drawdown', 100000)).toBe(first)
    const changed = api.actionKey(page, 'drawdown', 200000)
    expect(changed).not.toBe(first)
    api.actionDone(page, 'drawdown')
    expect(api.actionKey(page, 'drawdown', 200000)).not.toBe(changed)
  })
})

describe('errors', () => {
  test('a refusal carries the code, the details and the customer words', async () => {
    signedIn()
    fakeApi.on('POST', '/api/v1/contracts/:id/sign', refusal(422, 'SIGNING_CODE_WRONG', {attempts_left: 2}))

    const error = await api.signWithSmsCode(8, '111111').catch((e) => e)

    expect(error).toBeInstanceOf(api.ApiError)
    expect([error.status, error.code, error.details]).toEqual([422, 'SIGNING_CODE_WRONG', {attempts_left: 2}])
    expect(error.userMessage).toBe('验证码错误，还可尝试2次')
  })

  test('an unknown code falls back on its status, and Retry-After is kept', async () => {
    signedIn()
    fakeApi.on('GET', '/api/v1/loans', [503, {error: {code: 'SOMETHING_NEW', message: 'x', details: null}}, {'Retry-After': '7'}])

    const error = await api.loans().catch((e) => e)

    expect(error.userMessage).toBe('服务繁忙，请稍后再试')
    expect(error.retryAfter).toBe(7)
  })

  test('no session: the call is not sent', async () => {
    const error = await api.products().catch((e) => e)
    expect(error.code).toBe('LOGIN_REQUIRED')
    expect(fakeApi.calls).toHaveLength(0)
  })
})

describe('money: whole yuan for lending, fen for contracts and loans', () => {
  test('typed yuan become fen without floating point', () => {
    expect(api.money.fenFromYuanInput('1,234.5')).toBe(123450)
    expect(api.money.fenFromYuanInput('0.07')).toBe(7)
    expect(api.money.fenFromYuanInput('10000')).toBe(1000000)
    expect(api.money.fenFromYuanInput('1.234')).toBeNull()
    expect(api.money.fenFromYuanInput('-5')).toBeNull()
  })

  test('applications take whole yuan only', () => {
    expect(api.money.yuanFromInput('50000')).toBe(50000)
    expect(api.money.yuanFromInput('50000.5')).toBeNull()
  })

  test('amounts are shown with thousands and two decimals', () => {
    expect(api.money.fenText(123456789)).toBe('1,234,567.89')
    expect(api.money.fenText(5)).toBe('0.05')
    expect(api.money.yuanText(50000)).toBe('50,000.00')
    expect(api.money.rateText(435)).toBe('4.35%')
  })
})

test('with a demo WeChat user configured, login sends that user’s code instead of wx.login’s', async () => {
  const config = require('../config.js')
  config.devWechatUser = 'demo-wang'
  try {
    fakeApi.on('POST', '/api/v1/channels/wechat/login', [200, {access_token: 'a', refresh_token: 'r', bank_id: 1, customer: {id: 1}}])
    await api.login()
    expect(wx.login).not.toHaveBeenCalled()
    expect(fakeApi.callsTo('POST', '/api/v1/channels/wechat/login')[0].body.code).toMatch(/^demo-wang\.[A-Za-z0-9_-]{1,64}$/)
  } finally {
    config.devWechatUser = ''
  }
})
