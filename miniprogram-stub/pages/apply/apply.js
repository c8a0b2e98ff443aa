// The application: amount and term (whole yuan), the consents the product needs, and the
// invite code the customer arrived with (sent at login, which binds them to the inviter).
const api = require('../../utils/api.js')
const {showError, clearError, METHOD_TEXT} = require('../../utils/page.js')
const {consentsFor, ticked, grantTicked} = require('../../utils/consents.js')

Component({
  data: {
    code: '',
    productName: '',
    amount: '',
    term: '',
    method: '',
    methodText: '',
    consents: [],
    inviteCode: '',
    needsRealName: false,
    error: '',
    busy: false,
  },
  methods: {
    async onLoad(query) {
      this.setData({
        code: query.code,
        amount: query.amount || '',
        term: query.term || '',
        method: query.method || '',
        methodText: METHOD_TEXT[query.method] || query.method || '',
        inviteCode: api.scene() || '',
      })
      clearError(this)
      try {
        const product = await api.product(query.code)
        this.setData({
          productName: product.name,
          method: this.data.method || product.repayment_methods[0],
          consents: await consentsFor(product),
          busy: false,
        })
      } catch (error) {
        showError(this, error)
      }
    },

    onAmount(event) {
      this.setData({amount: event.detail.value})
    },
    onTerm(event) {
      this.setData({term: event.detail.value})
    },
    onConsents(event) {
      this.setData({consents: ticked(this.data.consents, event.detail.value)})
    },

    async onSubmit() {
      const amountYuan = api.money.yuanFromInput(this.data.amount)
      const termMonths = Number(this.data.term)
      if (!amountYuan || !Number.isInteger(termMonths) || termMonths < 1) {
        this.setData({error: '请填写整数金额（元）和期限（月）'})
        return
      }
      if (this.data.consents.some((c) => !c.checked)) {
        this.setData({error: '请先阅读并同意全部授权书'})
        return
      }
      clearError(this)
      const request = {productCode: this.data.code, amountYuan, termMonths, repaymentMethod: this.data.method}
      try {
        this.setData({consents: await grantTicked(this, this.data.consents)})
        const application = await api.apply(request, {key: api.actionKey(this, 'apply', request)})
        api.actionDone(this, 'apply')
        this.setData({busy: false})
        wx.redirectTo({url: `/pages/status/status?id=${application.id}`})
      } catch (error) {
        showError(this, error)
        if (error.code === 'REAL_NAME_REQUIRED') this.setData({needsRealName: true})
      }
    },

    goRealName() {
      wx.navigateTo({url: '/pages/realname/realname'})
    },
  },
})
