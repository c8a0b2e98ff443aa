// Each page renders, its main actions call the API module with the right arguments, and a
// refusal shows the customer's words. The network is the fake API behind wx.request.
const fs = require('fs')
const path = require('path')
const api = require('../utils/api.js')
const {refusal} = require('./fake-api.js')
const {ROOT, openPage, signedIn, tap, text, type, settle} = require('./helpers.js')

const PRODUCT = {
  code: 'KUAIEDAI',
  name: '快E贷',
  amount_yuan: {min: 5000, max: 200000},
  term_months: {min: 3, max: 12},
  repayment_methods: ['equal_instalment', 'bullet'],
  rate_floor_bps: 385,
  consents_needed: ['personal_information', 'credit_bureau'],
  requirements: ['申请人年龄不符合本产品要求'],
}
const APPLICATION = {id: 41, product_code: 'KUAIEDAI', amount_yuan: 50000, term_months: 12, status: 'approved', limit_yuan: 50000, annual_rate_bps: 435, reasons: []}
const CONTRACT = {
  id: 7, application_id: 41, status: 'awaiting_signatures', limit_fen: 5000000, annual_rate_bps: 435, term_months: 12,
  repayment_method: 'equal_instalment', parties: [{id: 1, role: 'borrower', name: '王*军', signed_at: null}],
  my_role: 'borrower', my_signature: {signed_at: null, method: null}, document_html: '<p>个人借款合同</p>',
}
const LOAN = {
  id: 3, contract_id: 7, capacity: 'borrower', status: 'active', principal_fen: 1000000, annual_rate_bps: 435, term_months: 12,
  drawn_on: '2026-03-01', maturity_date: '2027-03-01', owed: {principal_fen: 1000000},
  schedule: [{number: 1, due_date: '2026-04-01', principal_fen: 81700, interest_fen: 3625, total_fen: 85325, status: 'scheduled'}],
}

function spy(name) {
  return jest.spyOn(api, name)
}

beforeEach(() => {
  jest.restoreAllMocks()
  signedIn()
  fakeApi.on('GET', '/api/v1/products/:code', [200, PRODUCT])
  fakeApi.on('GET', '/api/v1/me/consents', [200, {items: [{purpose: 'personal_information', revoked_at: null}]}])
})

test('app.json lists every page, and every page has its four files', () => {
  const app = JSON.parse(fs.readFileSync(path.join(ROOT, 'app.json'), 'utf8'))
  const onDisk = fs.readdirSync(path.join(ROOT, 'pages')).map((name) => `pages/${name}/${name}`)
  expect([...app.pages].sort()).toEqual(onDisk.sort())
  expect(app.pages[0]).toBe('pages/index/index') // where invite codes lead (marketing.codes.DEFAULT_PAGE)
  for (const page of app.pages) for (const ext of ['js', 'json', 'wxml', 'wxss']) expect(fs.existsSync(path.join(ROOT, `${page}.${ext}`))).toBe(true)
})

describe('index: login, bank choice, phone binding', () => {
  beforeEach(() => wx.removeStorageSync('rcb.access_token'))

  test('opened from an invite: the scene is kept, the scan counted, and sent at login', async () => {
    fakeApi.on('POST', '/api/v1/invite-codes/:code/scans', [201, {code: 'AB3K7Q'}])
    fakeApi.on('POST', '/api/v1/channels/wechat/login', [200, {access_token: 'a', refresh_token: 'r', bank_id: null, customer: {id: 1, phone: null}}])
    fakeApi.on('GET', '/api/v1/banks', [200, {items: [{id: 2, name: '河州农商银行', city: '河州市', county: null}]}])
    fakeApi.on('POST', '/api/v1/me/bank', [200, {access_token: 'a2', refresh_token: 'r2', bank_id: 2, customer: {id: 1, phone: null}}])
    const login = spy('login')
    const chooseBank = spy('chooseBank')

    const page = await openPage('index', {scene: 'AB3K7Q'})
    expect(text(page, '#invite')).toBe('邀请码：AB3K7Q')
    expect(fakeApi.callsTo('POST', '/api/v1/invite-codes/AB3K7Q/scans')[0].body).toEqual({channel: 'wxacode', device_id: api.deviceId()})

    await tap(page, '#login')
    expect(login).toHaveBeenCalledTimes(1)
    expect(fakeApi.callsTo('POST', '/api/v1/channels/wechat/login')[0].body.scene).toBe('AB3K7Q')
    expect(text(page, '#banks')).toContain('河州农商银行')

    await tap(page, '.bank')
    expect(chooseBank).toHaveBeenCalledWith(2)
    expect(page.querySelector('#menu')).toBeTruthy()
  })

  test('binding the phone sends the getPhoneNumber code', async () => {
    signedIn()
    fakeApi.on('POST', '/api/v1/channels/wechat/phone', [200, {id: 1, phone: '138****0001'}])
    const bindPhone = spy('bindPhone')
    const page = await openPage('index')

    page.querySelector('#phone').dispatchEvent('getphonenumber', {detail: {code: '13800000001.x'}})
    await settle()

    expect(bindPhone).toHaveBeenCalledWith('13800000001.x')
    expect(text(page, '#notice')).toBe('已绑定手机号 138****0001')
  })

  test('WeChat refusing the login code shows the words for it', async () => {
    fakeApi.on('POST', '/api/v1/channels/wechat/login', refusal(400, 'WECHAT_REFUSED'))
    const page = await openPage('index')
    await tap(page, '#login')
    expect(text(page, '#error')).toBe('微信登录失败，请重新进入小程序')
  })
})

describe('products and product detail', () => {
  test('the list shows the bank’s products in yuan', async () => {
    fakeApi.on('GET', '/api/v1/products', [200, {items: [PRODUCT]}])
    const page = await openPage('products')
    expect(text(page, '.product')).toContain('快E贷')
    expect(text(page, '.product')).toContain('5,000.00 - 200,000.00 元')
    await tap(page, '.product')
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/product/product?code=KUAIEDAI'})
  })

  test('a bank not chosen yet is told so', async () => {
    fakeApi.on('GET', '/api/v1/products', refusal(409, 'BANK_NOT_CHOSEN'))
    const page = await openPage('products')
    expect(text(page, '#error')).toBe('请先选择办理业务的银行')
  })

  test('a quote grants the ticked consents, then asks in whole yuan', async () => {
    fakeApi.on('POST', '/api/v1/me/consents', [201, {id: 1}])
    fakeApi.on('POST', '/api/v1/products/:code/quote', [200, {outcome: 'approved', limit_yuan: 80000, annual_rate_bps: 435, apr_bps: 440, reasons: []}])
    const quote = spy('quote')
    const grantConsent = spy('grantConsent')
    const page = await openPage('product', {code: 'KUAIEDAI'})
    expect(text(page, '#name')).toBe('快E贷')

    await type(page, '#amount', '60000')
    await tap(page, '#quote')
    expect(text(page, '#error')).toBe('测算需要查询您的信息，请先阅读并同意授权书')
    expect(quote).not.toHaveBeenCalled()

    page.instance.onConsents({detail: {value: ['credit_bureau']}})
    await tap(page, '#quote')
    expect(grantConsent.mock.calls.map((c) => c[0])).toEqual(['credit_bureau'])
    expect(quote).toHaveBeenCalledWith('KUAIEDAI', {amountYuan: 60000, termMonths: 12, repaymentMethod: 'equal_instalment'})
    expect(fakeApi.callsTo('POST', '/api/v1/products/KUAIEDAI/quote')[0].body).toEqual({amount_yuan: 60000, term_months: 12, repayment_method: 'equal_instalment'})
    expect(text(page, '#quote-result')).toContain('80,000.00 元')
  })

  test('an amount out of the product’s bounds shows the words for it', async () => {
    fakeApi.on('POST', '/api/v1/products/:code/quote', refusal(422, 'REQUEST_OUT_OF_BOUNDS'))
    fakeApi.on('GET', '/api/v1/me/consents', [200, {items: PRODUCT.consents_needed.map((purpose) => ({purpose, revoked_at: null}))}])
    const page = await openPage('product', {code: 'KUAIEDAI'})
    await tap(page, '#quote')
    expect(text(page, '#error')).toBe('申请金额或期限不在产品允许的范围内')
  })
})

describe('apply', () => {
  const QUERY = {code: 'KUAIEDAI', amount: '50000', term: '12', method: 'equal_instalment'}

  test('shows the invite code, grants consents, applies once per action', async () => {
    api.rememberScene('AB3K7Q')
    fakeApi.on('POST', '/api/v1/me/consents', [201, {id: 2}])
    fakeApi.on('POST', '/api/v1/applications', [201, APPLICATION])
    const apply = spy('apply')
    const page = await openPage('apply', QUERY)
    expect(text(page, '#invite-code')).toBe('AB3K7Q')

    page.instance.onConsents({detail: {value: ['credit_bureau']}})
    await tap(page, '#submit')

    expect(fakeApi.callsTo('POST', '/api/v1/me/consents').map((c) => c.body)).toEqual([{purpose: 'credit_bureau'}])
    expect(apply).toHaveBeenCalledWith(
      {productCode: 'KUAIEDAI', amountYuan: 50000, termMonths: 12, repaymentMethod: 'equal_instalment'},
      {key: expect.stringMatching(/^mp-/)},
    )
    expect(fakeApi.callsTo('POST', '/api/v1/applications')[0].body).toEqual({
      product_code: 'KUAIEDAI', amount_yuan: 50000, term_months: 12, repayment_method: 'equal_instalment',
    })
    expect(wx.redirectTo).toHaveBeenCalledWith({url: '/pages/status/status?id=41'})
  })

  test('tapping again after a failure reuses the Idempotency-Key of the same application', async () => {
    fakeApi.on('GET', '/api/v1/me/consents', [200, {items: PRODUCT.consents_needed.map((purpose) => ({purpose, revoked_at: null}))}])
    fakeApi.on('POST', '/api/v1/applications', refusal(503, 'DEPENDENCY_UNAVAILABLE'))
    const page = await openPage('apply', QUERY)

    await tap(page, '#submit')
    expect(text(page, '#error')).toBe('服务繁忙，请稍后再试')
    fakeApi.on('POST', '/api/v1/applications', [201, APPLICATION])
    await tap(page, '#submit')

    const keys = fakeApi.callsTo('POST', '/api/v1/applications').map((c) => c.headers['Idempotency-Key'])
    expect(keys).toHaveLength(2)
    expect(keys[1]).toBe(keys[0])
  })

  test('without real-name verification the customer is sent to verify', async () => {
    fakeApi.on('GET', '/api/v1/me/consents', [200, {items: PRODUCT.consents_needed.map((purpose) => ({purpose, revoked_at: null}))}])
    fakeApi.on('POST', '/api/v1/applications', refusal(409, 'REAL_NAME_REQUIRED'))
    const page = await openPage('apply', QUERY)
    await tap(page, '#submit')
    expect(text(page, '#error')).toBe('请先完成实名认证')
    await tap(page, '#go-real-name')
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/realname/realname'})
  })
})

describe('real-name verification', () => {
  async function filledIn() {
    const page = await openPage('realname')
    await type(page, '#name', '王建军')
    await type(page, '#id-number', '320102198503121015')
    await type(page, '#phone', '13800000001')
    return page
  }

  test('sends name, ID number and phone; keeps the new session', async () => {
    fakeApi.on('POST', '/api/v1/me/real-name', [200, {access_token: 'merged', refresh_token: 'r', bank_id: 1, customer: {id: 5, name: '王*军', id_number: '3201**********1015'}}])
    const verify = spy('verifyRealName')
    const page = await filledIn()
    await tap(page, '#submit')
    expect(verify).toHaveBeenCalledWith({name: '王建军', idNumber: '320102198503121015', phone: '13800000001'})
    expect(fakeApi.callsTo('POST', '/api/v1/me/real-name')[0].body).toEqual({name: '王建军', id_number: '320102198503121015', phone: '13800000001'})
    expect(wx.getStorageSync('rcb.access_token')).toBe('merged')
    expect(text(page, '#verified')).toContain('实名认证成功')
  })

  test('a mismatch shows the words for it', async () => {
    fakeApi.on('POST', '/api/v1/me/real-name', refusal(422, 'REAL_NAME_MISMATCH'))
    const page = await filledIn()
    await tap(page, '#submit')
    expect(text(page, '#error')).toBe('姓名、身份证号与手机号不匹配，请核对后重试')
  })
})

describe('application status', () => {
  test('a rejection shows the customer-facing reasons', async () => {
    fakeApi.on('GET', '/api/v1/applications/:id', [200, {...APPLICATION, status: 'rejected', reasons: ['您的征信记录存在逾期']}])
    const page = await openPage('status', {id: '41'})
    expect(text(page, '#status')).toBe('未通过')
    expect(text(page, '.reason')).toBe('您的征信记录存在逾期')
    expect(page.querySelector('#contract')).toBeFalsy()
  })

  test('an approved application asks for its contract', async () => {
    fakeApi.on('GET', '/api/v1/applications/:id', [200, APPLICATION])
    fakeApi.on('POST', '/api/v1/applications/:id/contract', [201, CONTRACT])
    const requestContract = spy('requestContract')
    const page = await openPage('status', {id: '41'})
    expect(text(page, '#limit')).toBe('50,000.00 元')
    await tap(page, '#contract')
    expect(requestContract).toHaveBeenCalledWith(41, [], {key: expect.any(String)})
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/contract/contract?id=7'})
  })

  test('a product needing a guarantor shows the words for it', async () => {
    fakeApi.on('GET', '/api/v1/applications/:id', [200, APPLICATION])
    fakeApi.on('POST', '/api/v1/applications/:id/contract', refusal(422, 'SIGNATORY_MISSING'))
    const page = await openPage('status', {id: '41'})
    await tap(page, '#contract')
    expect(text(page, '#error')).toBe('该产品需要担保人或共同借款人一起签署')
  })
})

describe('contract reading and signing', () => {
  test('shows the document, sends the code and signs with it', async () => {
    fakeApi.on('GET', '/api/v1/contracts/:id', [200, CONTRACT])
    fakeApi.on('POST', '/api/v1/contracts/:id/signing-code', [202, {sent_to: '138****0001', resend_after_seconds: 60}])
    fakeApi.on('POST', '/api/v1/contracts/:id/sign', [200, {...CONTRACT, status: 'effective', my_signature: {signed_at: '2026-03-01T00:00:00+00:00', method: 'sms_code'}}])
    const send = spy('sendSigningCode')
    const sign = spy('signWithSmsCode')
    const page = await openPage('contract', {id: '7'})
    expect(text(page, '#limit')).toBe('50,000.00 元')
    expect(page.querySelector('#document')).toBeTruthy()

    await tap(page, '#send-code')
    expect(send).toHaveBeenCalledWith(7)
    expect(text(page, '#sent')).toBe('验证码已发送至 138****0001')

    page.instance.onAgree({detail: {value: ['agree']}})
    await type(page, '#code', '482913')
    await tap(page, '#sign')
    expect(sign).toHaveBeenCalledWith(7, '482913')
    expect(fakeApi.callsTo('POST', '/api/v1/contracts/7/sign')[0].body).toEqual({method: 'sms_code', code: '482913'})
    expect(text(page, '#signed')).toBe('您已签署本合同')
    await tap(page, '#drawdown')
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/drawdown/drawdown?contract=7'})
  })

  test('a wrong code shows how many tries are left', async () => {
    fakeApi.on('GET', '/api/v1/contracts/:id', [200, CONTRACT])
    fakeApi.on('POST', '/api/v1/contracts/:id/sign', refusal(422, 'SIGNING_CODE_WRONG', {attempts_left: 3}))
    const page = await openPage('contract', {id: '7'})
    page.instance.onAgree({detail: {value: ['agree']}})
    await type(page, '#code', '000000')
    await tap(page, '#sign')
    expect(text(page, '#error')).toBe('验证码错误，还可尝试3次')
  })
})

describe('drawdown', () => {
  test('yuan typed become fen: previewed, then drawn', async () => {
    fakeApi.on('POST', '/api/v1/contracts/:id/drawdowns/preview', [200, {principal_fen: 1000050, total_interest_fen: 23000, apr_bps: 440, schedule: LOAN.schedule}])
    fakeApi.on('POST', '/api/v1/contracts/:id/drawdowns', [201, LOAN])
    const preview = spy('previewDrawdown')
    const draw = spy('drawdown')
    const page = await openPage('drawdown', {contract: '7'})
    await type(page, '#amount', '10000.5')
    await tap(page, '#preview')
    expect(preview).toHaveBeenCalledWith(7, 1000050)
    expect(text(page, '#preview-result')).toContain('10,000.50 元')
    await tap(page, '#confirm')
    expect(draw).toHaveBeenCalledWith(7, 1000050, {key: expect.any(String)})
    expect(fakeApi.callsTo('POST', '/api/v1/contracts/7/drawdowns')[0].body).toEqual({amount_fen: 1000050})
    expect(wx.redirectTo).toHaveBeenCalledWith({url: '/pages/loan/loan?id=3'})
  })

  test('above the line shows the words for it', async () => {
    fakeApi.on('POST', '/api/v1/contracts/:id/drawdowns/preview', refusal(422, 'CREDIT_LIMIT_EXCEEDED'))
    const page = await openPage('drawdown', {contract: '7'})
    await type(page, '#amount', '999999')
    await tap(page, '#preview')
    expect(text(page, '#error')).toBe('超过可用额度')
  })
})

describe('my loans, a loan and its schedule', () => {
  test('the list shows amounts from fen', async () => {
    fakeApi.on('GET', '/api/v1/loans', [200, {items: [LOAN]}])
    const page = await openPage('loans')
    expect(text(page, '.loan')).toContain('10,000.00 元')
    expect(text(page, '.loan')).toContain('借款人')
    await tap(page, '.loan')
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/loan/loan?id=3'})
  })

  test('a loan shows its schedule', async () => {
    fakeApi.on('GET', '/api/v1/loans/:id', [200, LOAN])
    const loan = spy('loan')
    const page = await openPage('loan', {id: '3'})
    expect(loan).toHaveBeenCalledWith(3)
    expect(text(page, '.instalment')).toContain('853.25 元')
    await tap(page, '#repay')
    expect(wx.navigateTo).toHaveBeenCalledWith({url: '/pages/repay/repay?loan=3'})
  })

  test('a session that cannot be refreshed sends the customer to log in', async () => {
    fakeApi.on('GET', '/api/v1/loans', refusal(401, 'TOKEN_EXPIRED'))
    fakeApi.on('POST', '/api/v1/channels/refresh', refusal(401, 'REFRESH_REFUSED'))
    const page = await openPage('loans')
    expect(text(page, '#error')).toBe('请先登录')
    expect(wx.reLaunch).toHaveBeenCalledWith({url: '/pages/index/index'})
  })
})

describe('repay', () => {
  const PAYOFF = {loan_id: 3, due: {total_fen: 0}, total_fen: 1000123}

  test('the payoff amount, typed in yuan, is repaid in fen', async () => {
    fakeApi.on('GET', '/api/v1/loans/:id/payoff-quote', [200, PAYOFF])
    fakeApi.on('POST', '/api/v1/loans/:id/repayments', [201, {id: 1, amount_fen: 1000123, closed_loan: true}])
    const repay = spy('repay')
    const page = await openPage('repay', {loan: '3'})
    expect(text(page, '#payoff')).toBe('10,001.23 元')
    await tap(page, '#pay-all')
    await tap(page, '#repay')
    expect(repay).toHaveBeenCalledWith(3, 1000123, {key: expect.any(String)})
    expect(fakeApi.callsTo('POST', '/api/v1/loans/3/repayments')[0].body).toEqual({amount_fen: 1000123})
    expect(text(page, '#repaid')).toBe('已还款 10,001.23 元，贷款已结清')
  })

  test('not enough money in the account shows the words for it', async () => {
    fakeApi.on('GET', '/api/v1/loans/:id/payoff-quote', [200, PAYOFF])
    fakeApi.on('POST', '/api/v1/loans/:id/repayments', refusal(409, 'INSUFFICIENT_FUNDS'))
    const page = await openPage('repay', {loan: '3'})
    await type(page, '#amount', '100')
    await tap(page, '#repay')
    expect(text(page, '#error')).toBe('还款账户余额不足')
  })
})

describe('my invite code', () => {
  test('shows the code, its mini-program code, the people invited and the poster', async () => {
    fakeApi.on('GET', '/api/v1/invite-code', [200, {code: 'AB3K7Q', page_path: 'pages/index/index?scene=AB3K7Q'}])
    fakeApi.on('GET', '/api/v1/referrals', [200, {items: [{id: 1, name: '李*英', stage: 'applied'}]}])
    const page = await openPage('invite')
    expect(text(page, '#code')).toBe('AB3K7Q')
    expect(fakeApi.callsTo('GET', '/api/v1/invite-code')[0].headers['x-device-id']).toBe(api.deviceId())
    expect(wx.downloadFile.mock.calls[0][0].url).toMatch(/\/api\/v1\/invite-code\/wxacode\.png\?width=430$/)
    expect(wx.downloadFile.mock.calls[0][0].header.Authorization).toBe('Bearer access-1')
    expect(text(page, '.referral')).toContain('已申请')

    await tap(page, '#poster')
    expect(wx.previewImage).toHaveBeenCalledWith({urls: ['wxfile://tmp/poster.png'], current: 'wxfile://tmp/poster.png'})
    expect(page.instance.onShareAppMessage().path).toBe('/pages/index/index?scene=AB3K7Q')
  })

  test('no invite code shows the words for it', async () => {
    fakeApi.on('GET', '/api/v1/invite-code', refusal(403, 'NO_INVITE_CODE'))
    fakeApi.on('GET', '/api/v1/referrals', [200, {items: []}])
    const page = await openPage('invite')
    expect(text(page, '#error')).toBe('暂无邀请码')
  })
})

describe('red packets and rewards', () => {
  const CAMPAIGN = {id: 12, kind: 'red_packet', name: '新春红包', status: 'live', packets_left: 8}

  test('grab a packet from a live campaign', async () => {
    fakeApi.on('GET', '/api/v1/campaigns', [200, {items: [CAMPAIGN, {id: 13, kind: 'qr_share', name: '分享'}]}])
    fakeApi.on('POST', '/api/v1/campaigns/:id/red-packets/grab', [201, {reward_id: 5, campaign_id: 12, amount_fen: 888, status: 'due'}])
    const grab = spy('grabRedPacket')
    const page = await openPage('redpacket')
    expect(page.querySelectorAll('.campaign')).toHaveLength(1)
    await tap(page, '.grab')
    expect(grab).toHaveBeenCalledWith(12)
    expect(fakeApi.callsTo('POST', '/api/v1/campaigns/12/red-packets/grab')[0].headers['x-device-id']).toBe(api.deviceId())
    expect(text(page, '#won')).toBe('恭喜您抢到 8.88 元红包，将发放至您的微信')
  })

  test('a second grab shows the words for it', async () => {
    fakeApi.on('GET', '/api/v1/campaigns', [200, {items: [CAMPAIGN]}])
    fakeApi.on('POST', '/api/v1/campaigns/:id/red-packets/grab', refusal(409, 'ALREADY_GRABBED'))
    const page = await openPage('redpacket')
    await tap(page, '.grab')
    expect(text(page, '#error')).toBe('您已经抢过这个红包了')
  })

  test('my rewards with where each payout is', async () => {
    fakeApi.on('GET', '/api/v1/me/rewards', [200, {items: [{id: 5, campaign_id: 12, kind: 'red_packet', amount_fen: 888, status: 'paid', created_at: '2026-03-01'}]}])
    const rewards = spy('rewards')
    const page = await openPage('rewards')
    expect(rewards).toHaveBeenCalledTimes(1)
    expect(text(page, '.reward')).toContain('8.88 元')
    expect(text(page, '.reward')).toContain('已发放')
  })

  test('campaigns unavailable shows the words for it', async () => {
    fakeApi.on('GET', '/api/v1/campaigns', refusal(503, 'CAMPAIGNS_UNAVAILABLE'))
    const page = await openPage('redpacket')
    expect(text(page, '#error')).toBe('活动太火爆了，请稍后再试')
  })
})
